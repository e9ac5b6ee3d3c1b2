"""Hints as data: parsing and its errors, network planes, global hints and the seeded simulator."""

import json
import math
import re

import pytest
import torch

from polychrome.color import ab_gamut, encode_hard, rgb_to_lab, uint8_to_lab
from polychrome.hints import (
    GEOMETRIC_P,
    GlobalHint,
    LocalHint,
    batch_hint_planes,
    evaluation_hints,
    global_hint_tensors,
    global_hint_vector,
    hint_planes,
    load_hint_file,
    parse_hints,
    simulate_hints,
    simulate_image_hints,
)

RED_AB = tuple(float(v) for v in rgb_to_lab(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1))[1:, 0, 0])


def random_lab(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) Lab of random photos' colours (through uint8 RGB, so every ab is an sRGB colour's)."""
    rgb = torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return uint8_to_lab(rgb)


# ---------------------------------------------------------------------------------------------- parsing


def test_tuples_dicts_and_hints_parse_to_the_same_local_hints():
    expected = LocalHint(3, 4, RED_AB, 1, (255, 0, 0))
    parsed = parse_hints([(3, 4, (255, 0, 0)), {"x": 3, "y": 4, "rgb": [255, 0, 0]}, expected], (10, 20))
    assert parsed == [expected, expected, expected]
    assert parsed[0].ab == pytest.approx((80.09, 67.20), abs=0.01)  # sRGB red in Lab


def test_patch_is_optional_and_fractional_coordinates_are_the_pixel_they_fall_in():
    tuple_hint, dict_hint = parse_hints(
        [(3.7, 4.2, (0, 0, 255), 5), {"x": 0, "y": 9.99, "rgb": [0, 0, 255], "patch": 3}], (10, 20)
    )
    assert (tuple_hint.x, tuple_hint.y, tuple_hint.patch) == (3, 4, 5)
    assert (dict_hint.x, dict_hint.y, dict_hint.patch) == (0, 9, 3)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ((20, 4, (1, 2, 3)), "hints[1]: x=20 is outside the image (0 to 19)"),
        ({"x": 3, "y": -1, "rgb": [1, 2, 3]}, "hints[1]: y=-1 is outside the image (0 to 9)"),
        ({"x": 3, "y": 10, "rgb": [1, 2, 3]}, "hints[1]: y=10 is outside the image (0 to 9)"),
        ({"x": "3", "y": 1, "rgb": [1, 2, 3]}, "hints[1]: x='3' is not a number"),
        (
            {"x": 3, "y": 1, "rgb": [1, 2, 256]},
            "hints[1]: rgb=[1, 2, 256] is out of range; give each of r, g, b as an integer 0-255",
        ),
        ({"x": 3, "y": 1, "rgb": [-1, 2, 3]}, "hints[1]: rgb=[-1, 2, 3] is out of range"),
        ({"x": 3, "y": 1, "rgb": [0.5, 2, 3]}, "hints[1]: rgb=[0.5, 2, 3] is out of range"),
        ({"x": 3, "y": 1, "rgb": [1, 2]}, "hints[1]: rgb=[1, 2] is not three values"),
        ({"x": 3, "y": 1, "rgb": [1, 2, 3, 4]}, "hints[1]: rgb=[1, 2, 3, 4] is not three values"),
        ({"x": 3, "y": 1, "rgb": [1, 2, 3], "patch": 0}, "hints[1]: patch=0 is not a whole number of pixels"),
        ({"x": 3, "y": 1, "colour": [1, 2, 3]}, "hints[1]: unknown keys ['colour']"),
        ({"x": 3, "rgb": [1, 2, 3]}, "hints[1]: missing ['y']"),
        ((3, 4), "hints[1]: (3, 4) is not a hint; give (x, y, (r, g, b))"),
    ],
)
def test_a_bad_entry_is_one_line_naming_the_source_the_entry_the_problem_and_the_fix(entry, message):
    with pytest.raises(ValueError, match=re.escape(f"hints.json: {message}")) as caught:
        parse_hints([(0, 0, (0, 0, 0)), entry], (10, 20), source="hints.json")
    assert "\n" not in str(caught.value)
    assert "; " in str(caught.value)  # the fix follows the problem


def test_without_a_file_the_error_starts_with_the_entry():
    with pytest.raises(ValueError, match=r"^hints\[0\]: x=99 is outside"):
        parse_hints([(99, 0, (0, 0, 0))], (10, 20))


def test_hints_that_are_not_a_list_are_refused():
    with pytest.raises(ValueError, match="hints must be a list of hints, got dict"):
        parse_hints({"x": 1}, (10, 20))  # type: ignore[arg-type]


def test_a_stroke_is_a_patch_of_its_width_at_each_pixel_along_its_polyline_in_order():
    stroke = {"stroke": [[0, 0], [5, 2.7], [5, 2], [5, 6]], "width": 3, "rgb": [255, 0, 0]}
    hints = parse_hints([(9, 9, (0, 0, 255)), stroke], (10, 20))
    assert hints[0] == LocalHint.from_rgb(9, 9, (0, 0, 255))
    assert [(h.x, h.y) for h in hints[1:]] == [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 5),
        (5, 6),
    ]
    assert all(h.patch == 3 and h.rgb == (255, 0, 0) and h.ab == RED_AB for h in hints[1:])
    # A two-point stroke on one pixel is a click with a patch of its width.
    assert parse_hints([{"stroke": [[4, 4], [4, 4]], "width": 5, "rgb": [255, 0, 0]}], (10, 20)) == [
        LocalHint(4, 4, RED_AB, 5, (255, 0, 0))
    ]


def stroke(points, width=3, rgb=(1, 2, 3)) -> dict:
    return {"stroke": points, "width": width, "rgb": list(rgb)}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (stroke([[0, 0]]), "hints[1]: the stroke has 1 point; give 2 to 1,000 points"),
        (stroke([[0, 0]] * 1001), "hints[1]: the stroke has 1,001 points; give 2 to 1,000 points"),
        (stroke("0,0 1,1"), "hints[1]: stroke='0,0 1,1' is not a list of points; give the polyline as [[x0, y0]"),
        (stroke([[0, 0], [1]]), "hints[1]: stroke[1]=[1] is not a point; give each point as [x, y]"),
        (stroke([[0, 0], [20, 3]]), "hints[1]: stroke[1] x=20 is outside the image (0 to 19); give a pixel inside"),
        (stroke([[0, -1], [2, 3]]), "hints[1]: stroke[0] y=-1 is outside the image (0 to 9)"),
        (stroke([[0, 0], [1, 1]], width=0), "hints[1]: width=0 is not a whole number of pixels from 1 to 64"),
        (stroke([[0, 0], [1, 1]], width=65), "hints[1]: width=65 is not a whole number of pixels from 1 to 64"),
        (stroke([[0, 0], [1, 1]], width=2.5), "hints[1]: width=2.5 is not a whole number of pixels"),
        (stroke([[0, 0], [1, 1]], rgb=(1, 2)), "hints[1]: rgb=[1, 2] is not three values"),
        ({"stroke": [[0, 0], [1, 1]], "rgb": [1, 2, 3]}, "hints[1]: missing ['width']; a stroke is {'stroke'"),
        ({**stroke([[0, 0], [1, 1]]), "patch": 3}, "hints[1]: unknown keys ['patch']; a stroke is"),
    ],
)
def test_a_bad_stroke_is_one_line_naming_the_entry_the_problem_and_the_fix(entry, message):
    with pytest.raises(ValueError, match=re.escape(f"hints.json: {message}")) as caught:
        parse_hints([(0, 0, (0, 0, 0)), entry], (10, 20), source="hints.json")
    assert "\n" not in str(caught.value) and "; " in str(caught.value)


def test_strokes_are_bounded_in_length_over_the_whole_list_before_any_pixel_is_listed():
    across = stroke([[0, 0], [2999, 0], [0, 0], [2999, 0]], width=64)  # 8,998 pixels long, retraced
    assert len(parse_hints([across, across], (10, 3000))) == 2 * 3000
    with pytest.raises(ValueError, match=re.escape("hints[2]: the strokes are 26,994 pixels long in all, above the")):
        parse_hints([across, across, across], (10, 3000))


def test_a_strokes_planes_are_its_patches_drawn_one_by_one_later_hints_winning():
    entries = [
        {"x": 30, "y": 20, "rgb": [0, 0, 255], "patch": 9},
        stroke([[2, 3], [60, 40], [10, 38]], width=5, rgb=(255, 0, 0)),
        {"x": 12, "y": 38, "rgb": [0, 255, 0], "patch": 3},  # over the stroke's end: wins there
    ]
    hints = parse_hints(entries, (48, 64))
    for size in [(48, 64), (16, 16), (96, 128)]:
        ab, mask = hint_planes(hints, (48, 64), size)
        expected_ab, expected_mask = torch.zeros_like(ab), torch.zeros_like(mask)
        for hint in hints:  # the definition: each patch in turn
            one_ab, one_mask = hint_planes([hint], (48, 64), size)
            expected_ab = torch.where(one_mask.bool(), one_ab, expected_ab)
            expected_mask = torch.maximum(expected_mask, one_mask)
        assert torch.equal(ab, expected_ab) and torch.equal(mask, expected_mask), size


def test_a_hint_file_is_a_list_or_a_dict_with_a_reference_beside_it(tmp_path):
    (tmp_path / "plain.json").write_text(json.dumps([{"x": 1, "y": 2, "rgb": [255, 0, 0]}]))
    (tmp_path / "full.json").write_text(
        json.dumps({"hints": [{"x": 1, "y": 2, "rgb": [255, 0, 0], "patch": 3}], "reference": "ref.jpg"})
    )
    plain, full = load_hint_file(tmp_path / "plain.json", (10, 20)), load_hint_file(tmp_path / "full.json", (10, 20))
    assert plain.local == (LocalHint(1, 2, RED_AB, 1, (255, 0, 0)),) and plain.reference is None
    assert full.local == (LocalHint(1, 2, RED_AB, 3, (255, 0, 0)),) and full.reference == tmp_path / "ref.jpg"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[{"x": 1, "y": 2, "rgb": [1, 2, 3]',
            "not valid JSON (Expecting ',' delimiter at line 1 column 35); fix the file",
        ),
        ('{"points": []}', "unknown keys ['points']"),
        ('{"reference": "a.jpg"}', "no 'hints' key"),
        ('{"hints": [], "reference": 3}', "reference=3 must be a path to a photo"),
        ('"hello"', "hints must be a list of hints, got str"),
        ('[{"x": 1, "y": 200, "rgb": [1, 2, 3]}]', "hints[0]: y=200 is outside the image (0 to 9)"),
        (
            '{"hints": [{"x": 1, "y": 2, "rgb": [1, 2, 3]}, {"x": 1, "y": 2, "rgb": [1, 2, 999]}]}',
            "hints[1]: rgb=[1, 2, 999] is out of range",
        ),
        ('[{"x": 1, "y": 2, "rgb": [1, 2]}]', "hints[0]: rgb=[1, 2] is not three values"),
    ],
)
def test_a_bad_hint_file_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "photo.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {message}")) as caught:
        load_hint_file(path, (10, 20))
    assert "\n" not in str(caught.value)


def test_a_hint_checks_its_own_fields():
    with pytest.raises(ValueError, match="patch 0 must be at least 1"):
        LocalHint(1, 1, (0.0, 0.0), 0)
    with pytest.raises(ValueError, match="negative coordinate"):
        LocalHint(-1, 1, (0.0, 0.0))
    with pytest.raises(ValueError, match=re.escape("rgb [1, 2, 300] must be three integers in 0-255")):
        LocalHint.from_rgb(1, 1, [1, 2, 300])


# ---------------------------------------------------------------------------------------------- planes


def test_planes_place_each_hint_at_its_scaled_position_with_its_ab_and_mask():
    hint = LocalHint(x=100, y=50, ab=(10.0, -20.0))
    ab, mask = hint_planes([hint], image_size=(200, 400), size=(50, 100))  # a quarter of the photo's resolution
    assert ab.shape == (2, 50, 100) and mask.shape == (1, 50, 100)
    assert mask.sum() == 1 and mask[0, 12, 25] == 1  # (50, 100) // 4
    assert ab[:, 12, 25].tolist() == [10.0, -20.0]
    assert ab.abs().sum() == 30.0  # nothing elsewhere


def test_a_patch_covers_its_side_centred_and_clipped_at_the_border():
    ab, mask = hint_planes([LocalHint(5, 5, (1.0, 2.0), patch=3), LocalHint(0, 9, (3.0, 4.0), patch=5)], (10, 10))
    assert torch.equal(mask[0, 4:7, 4:7], torch.ones(3, 3)) and mask[0, 4:7, 4:7].sum() == 9
    assert torch.equal(mask[0, 7:10, 0:3], torch.ones(3, 3))  # rows 7-11 and columns -2-2 clipped to the photo
    assert mask.sum() == 18
    assert torch.equal(ab[:, 5, 5], torch.tensor([1.0, 2.0])) and torch.equal(ab[:, 9, 0], torch.tensor([3.0, 4.0]))


def test_a_hint_covers_at_least_one_cell_and_scales_up_with_the_planes():
    _, small = hint_planes([LocalHint(255, 255, (1.0, 1.0))], (256, 256), (8, 8))
    _, large = hint_planes([LocalHint(3, 1, (1.0, 1.0))], (8, 8), (32, 32))
    assert small.sum() == 1 and small[0, 7, 7] == 1
    assert large.sum() == 16 and torch.equal(large[0, 4:8, 12:16], torch.ones(4, 4))


def test_the_later_hint_wins_where_hints_overlap():
    ab, mask = hint_planes([LocalHint(2, 2, (1.0, 1.0), patch=3), LocalHint(3, 2, (-5.0, 5.0))], (6, 6))
    assert ab[:, 2, 3].tolist() == [-5.0, 5.0] and ab[:, 2, 2].tolist() == [1.0, 1.0]
    assert mask.sum() == 9


def test_a_hint_outside_the_photo_is_refused_by_the_planes():
    with pytest.raises(ValueError, match="outside the 6x4 image"):
        hint_planes([LocalHint(6, 0, (0.0, 0.0))], (4, 6))


def test_batched_planes_stack_each_photo():
    ab, mask = batch_hint_planes([[LocalHint(0, 0, (1.0, 2.0))], []], (4, 4), (2, 2))
    assert ab.shape == (2, 2, 2, 2) and mask.shape == (2, 1, 2, 2)
    assert mask[0].sum() == 1 and mask[1].sum() == 0 and ab[0, :, 0, 0].tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------- global hints


def test_a_global_hint_is_a_distribution_over_the_gamut_and_the_mean_chroma():
    lab = random_lab(1, 16)[0]
    hint = GlobalHint.from_lab(lab)
    assert hint.distribution.shape == (313,) and hint.distribution.sum().item() == pytest.approx(1.0, abs=1e-6)
    counts = torch.bincount(encode_hard(lab[None, 1:], ab_gamut()).flatten(), minlength=313)
    assert torch.allclose(hint.distribution, counts / 256)
    assert hint.saturation == pytest.approx(float(lab[1:].norm(dim=0).mean()), rel=1e-6)


def test_a_red_photo_puts_all_its_mass_in_reds_bin_and_has_reds_chroma():
    hint = GlobalHint.from_rgb(torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1).expand(3, 5, 7))
    red_bin = int(encode_hard(torch.tensor(RED_AB).view(1, 2, 1, 1), ab_gamut()).item())
    assert hint.distribution[red_bin] == 1.0 and hint.distribution.sum() == 1.0
    assert hint.saturation == pytest.approx(math.hypot(*RED_AB), rel=1e-4)


def test_a_gray_photo_has_zero_saturation():
    gray = torch.arange(0, 256, 4, dtype=torch.uint8).view(1, 8, 8).expand(3, 8, 8)
    # kornia's D65 constants leave neutral grays at |ab| below 0.005 Lab units, not exactly 0.
    assert GlobalHint.from_rgb(gray).saturation == pytest.approx(0.0, abs=0.01)


def test_a_reference_photo_file_gives_its_global_hint(tmp_path):
    from PIL import Image

    Image.new("RGB", (6, 4), (255, 0, 0)).save(tmp_path / "red.png")
    assert GlobalHint.from_file(tmp_path / "red.png").saturation == pytest.approx(math.hypot(*RED_AB), rel=1e-4)


def test_global_hint_tensors_mark_which_samples_have_one():
    hint = GlobalHint(torch.full((313,), 1 / 313), 12.5)
    distribution, saturation, given = global_hint_tensors([None, hint])
    assert (
        distribution.shape == (2, 313)
        and distribution[0].sum() == 0
        and torch.equal(distribution[1], hint.distribution)
    )
    assert saturation.flatten().tolist() == [0.0, 12.5] and given.flatten().tolist() == [0.0, 1.0]


def test_the_global_vector_is_the_distribution_the_saturation_over_100_and_the_flag():
    """What a network sees of a reference: the 313 shares, the mean chroma / 100 (the scale the bundled guided
    model was trained with: tests/test_guided_model.py pins what its colours do with it), then 1 for given; a row
    without a reference is all 0."""
    red = GlobalHint.from_rgb(torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1).expand(3, 5, 7))
    vector = global_hint_vector([red, None, GlobalHint(torch.full((313,), 1 / 313), 42.0)])
    assert vector.shape == (3, 315)
    assert torch.equal(vector[0, :313], red.distribution) and vector[0, 314] == 1.0
    assert vector[0, 313].item() == pytest.approx(math.hypot(*RED_AB) / 100, rel=1e-4)  # sRGB red: chroma 104.6
    assert torch.equal(vector[1], torch.zeros(315))
    assert vector[2, 313].item() == pytest.approx(0.42) and vector[2, 314] == 1.0


# ---------------------------------------------------------------------------------------------- simulation


def test_the_number_of_points_is_geometric_with_mean_seven_and_zero_one_time_in_eight():
    draws = 3000
    lab = torch.zeros(3, 4, 4)
    generator = torch.Generator().manual_seed(1)
    counts = torch.tensor([len(simulate_image_hints(lab, generator, global_probability=0).local) for _ in range(draws)])
    mean, variance = (1 - GEOMETRIC_P) / GEOMETRIC_P, (1 - GEOMETRIC_P) / GEOMETRIC_P**2
    # Four standard errors of the sample mean (about 0.55): a correct sampler fails this once in ~16,000 runs.
    assert abs(counts.float().mean().item() - mean) < 4 * math.sqrt(variance / draws)
    zero = (counts == 0).float().mean().item()
    assert abs(zero - GEOMETRIC_P) < 4 * math.sqrt(GEOMETRIC_P * (1 - GEOMETRIC_P) / draws)


def test_the_number_of_points_can_be_capped_or_exact():
    lab = torch.zeros(3, 8, 8)
    capped = [len(simulate_image_hints(lab, seed, max_points=2).local) for seed in range(60)]
    assert max(capped) == 2 and min(capped) == 0
    assert all(len(simulate_image_hints(lab, seed, count=5).local) == 5 for seed in range(5))


def test_the_same_seed_gives_the_same_hints_and_another_seed_others():
    lab = random_lab(4, 32)
    first, again = (
        simulate_hints(lab, 7, global_probability=0.5),
        simulate_hints(lab, torch.Generator().manual_seed(7), global_probability=0.5),
    )
    assert [s.local for s in first] == [s.local for s in again]
    assert [s.global_hint is None for s in first] == [s.global_hint is None for s in again]
    for one, two in zip(first, again, strict=True):
        if one.global_hint is not None and two.global_hint is not None:
            assert torch.equal(one.global_hint.distribution, two.global_hint.distribution)
    assert [s.local for s in simulate_hints(lab, 8)] != [s.local for s in first]


def test_a_simulated_hints_colour_is_exactly_the_mean_true_ab_of_its_patch():
    lab = random_lab(2, 256)
    hints = [hint for image in simulate_hints(lab, 3, count=20) for hint in image.local]
    assert {hint.patch for hint in hints} > {1}  # patches of several sides were drawn
    for image, simulated in zip(lab, simulate_hints(lab, 3, count=20), strict=True):
        for hint in simulated.local:
            top, bottom, left, right = hint.box((256, 256))
            assert bottom - top == right - left == hint.patch  # drawn to fit inside the photo
            mean = image[1:, top:bottom, left:right].mean(dim=(1, 2))
            assert hint.ab == (float(mean[0]), float(mean[1]))


def test_patch_sides_are_1_to_9_at_256_and_scaled_to_the_image():
    big = {
        h.patch
        for s in simulate_hints(torch.zeros(20, 3, 256, 256), 0, count=10, global_probability=0)
        for h in s.local
    }
    small = {
        h.patch for s in simulate_hints(torch.zeros(20, 3, 64, 64), 0, count=10, global_probability=0) for h in s.local
    }
    assert big == set(range(1, 10)) and small == {1, 2}


def spread(hints: tuple[LocalHint, ...]) -> float:
    return torch.tensor([float(h.x) for h in hints]).std().item()


def test_gaussian_points_gather_around_the_centre_and_uniform_ones_spread():
    lab = torch.zeros(3, 256, 256)
    gaussian = evaluation_hints(lab, seed=0, index=0, count=400)
    uniform = evaluation_hints(lab, seed=0, index=0, count=400, placement="uniform")
    assert spread(gaussian) == pytest.approx(256 / 4, rel=0.15)  # std W/4, a little less after clamping
    assert spread(uniform) == pytest.approx(256 / math.sqrt(12), rel=0.15)


def test_evaluation_hints_depend_on_the_seed_and_the_image_index_alone():
    lab = random_lab(3, 32)
    alone = evaluation_hints(lab[2], seed=5, index=2, count=10)
    assert len(alone) == 10
    assert evaluation_hints(lab[2], seed=5, index=2, count=10) == alone
    assert evaluation_hints(lab[2], seed=5, index=1, count=10) != alone
    assert evaluation_hints(lab[2], seed=6, index=2, count=10) != alone
    assert evaluation_hints(lab[2], seed=5, index=2, count=4) == alone[:4]  # fewer hints are the first of more


def test_evaluation_hints_are_the_same_on_every_machine():
    # Uniform placement uses integer draws only (torch's CPU Mersenne Twister), so these are exact everywhere.
    hints = evaluation_hints(torch.zeros(3, 256, 256), seed=0, index=0, count=3, placement="uniform")
    assert [(h.x, h.y, h.patch) for h in hints] == [(99, 80, 5), (189, 192, 4), (181, 109, 6)]


def test_bad_simulator_arguments_name_the_choices():
    with pytest.raises(ValueError, match="unknown placement 'edge'; choose one of gaussian, uniform"):
        simulate_image_hints(torch.zeros(3, 4, 4), 0, placement="edge")
    with pytest.raises(ValueError, match=re.escape("expected Lab of shape (N, 3, H, W), got (3, 4, 4)")):
        simulate_hints(torch.zeros(3, 4, 4), 0)


def test_a_colours_ab_is_that_of_its_lab_conversion_and_is_kept_once_computed():
    """The page sends every hint again with each change and a stroke gives each point its colour: the conversion
    (0.35 ms through torch for one colour) is kept per colour, with the value it had."""
    from polychrome.color import rgb_to_lab
    from polychrome.hints import ab_of_rgb

    ab_of_rgb.cache_clear()
    lab = rgb_to_lab(torch.tensor([200.0, 120.0, 30.0], dtype=torch.float64).view(3, 1, 1) / 255)
    hint = LocalHint.from_rgb(4, 5, (200, 120, 30))
    assert hint.ab == (float(lab[1]), float(lab[2]))
    assert LocalHint.from_rgb(7, 8, [200, 120, 30]).ab == hint.ab
    assert ab_of_rgb.cache_info().hits == 1 and ab_of_rgb.cache_info().misses == 1
