import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import spsolve

from polychrome.levin import (
    MAX_PIXELS,
    LevinTooLarge,
    levin_affinity,
    levin_colorize,
    propagate_residual,
    pyamg_available,
)

HEIGHT, WIDTH = 24, 48
RED, BLUE = (60.0, 40.0), (10.0, -50.0)


def point_hints(*hints: tuple[int, int, tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, x, (a, b)) points -> hint_ab (2, H, W) and hint_mask (H, W)."""
    ab = torch.zeros(2, HEIGHT, WIDTH)
    mask = torch.zeros(HEIGHT, WIDTH, dtype=torch.bool)
    for y, x, colour in hints:
        ab[:, y, x] = torch.tensor(colour)
        mask[y, x] = True
    return ab, mask


def two_halves(left: float, right: float) -> torch.Tensor:
    """L (H, W): ``left`` on the left half, ``right`` on the right, plus seeded noise of 1 L unit (a photo is never flat)."""
    lightness = torch.full((HEIGHT, WIDTH), left)
    lightness[:, WIDTH // 2 :] = right
    return lightness + torch.rand(HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))


def colour_per_half(lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ab of the left and right halves with a red hint in the left one and a blue hint in the right."""
    ab, mask = point_hints((HEIGHT // 2, WIDTH // 4, RED), (HEIGHT // 2, 3 * WIDTH // 4, BLUE))
    out = levin_colorize(lightness, ab, mask)
    return out[:, :, : WIDTH // 2].mean(dim=(1, 2)), out[:, :, WIDTH // 2 :].mean(dim=(1, 2))


def test_affinity_rows_are_normalised_neighbour_weights():
    luminance = np.random.default_rng(0).uniform(0, 100, size=(5, 7))
    affinity = levin_affinity(luminance, window=1)
    assert np.allclose(affinity.sum(axis=1), 1.0)
    assert affinity.diagonal().max() == 0  # a pixel is not its own neighbour
    neighbours = np.diff(affinity.indptr)
    assert neighbours[0] == 3 and neighbours[7 + 1] == 8  # a corner, an inner pixel
    assert np.diff(levin_affinity(luminance, window=2).indptr)[2 * 7 + 3] == 24


def test_affinity_prefers_the_neighbour_of_similar_lightness():
    luminance = np.array([[50.0, 52.0, 90.0]])
    weights = levin_affinity(luminance).toarray()
    assert weights[1, 0] > 10 * weights[1, 2]


def test_the_solution_is_that_of_the_full_system_with_hinted_rows_fixed():
    """What the authors' code solves, built naively: (I - W) U = 0 on unhinted rows, U = hint on hinted rows."""
    lightness = torch.rand(HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2)) * 100
    ab, mask = point_hints((3, 4, RED), (20, 40, BLUE))
    hinted = mask.numpy().reshape(-1)
    rows = sp.diags_array(np.where(hinted, 0.0, 1.0))
    system = sp.eye_array(hinted.size) - rows @ levin_affinity(lightness.double().numpy())
    expected = spsolve(sp.csc_array(system), ab.double().numpy().reshape(2, -1).T * hinted[:, None])
    out = levin_colorize(lightness, ab, mask)
    torch.testing.assert_close(out, torch.from_numpy(expected.T.reshape(2, HEIGHT, WIDTH)).float())


def test_hinted_pixels_keep_their_hint_exactly():
    lightness = torch.rand(HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1)) * 100
    ab, mask = point_hints((3, 4, (12.345678, -98.7654)), (20, 40, (-33.3, 77.7)), (0, 0, RED))
    out = levin_colorize(lightness[None], ab, mask)
    assert out.shape == (2, HEIGHT, WIDTH) and out.dtype == torch.float32
    assert torch.equal(out[:, mask], ab[:, mask])


@pytest.mark.parametrize("solver", ["splu", "pyamg"])
def test_one_hint_in_a_flat_image_colours_all_of_it(solver):
    if solver == "pyamg" and not pyamg_available():
        pytest.skip("pyamg is optional (pip install pyamg)")
    ab, mask = point_hints((5, 30, RED))
    out = levin_colorize(torch.full((HEIGHT, WIDTH), 50.0, dtype=torch.float64), ab, mask, solver=solver)
    # The constant is the exact solution; a float64 LU solve of this small, well-conditioned system is off by ~1e-12,
    # pyamg by its relative residual 1e-8 times |ab| ~ 1e-6, so what remains is float32 rounding of the result:
    # assert_close's float32 defaults (rtol 1.3e-6, atol 1e-5) are that precision.
    torch.testing.assert_close(out, torch.tensor(RED).reshape(2, 1, 1).expand(2, HEIGHT, WIDTH))


def test_a_luminance_edge_keeps_two_hints_apart():
    left, right = colour_per_half(two_halves(20.0, 80.0))
    assert torch.allclose(left, torch.tensor(RED), atol=4.0), left
    assert torch.allclose(right, torch.tensor(BLUE), atol=4.0), right


def test_without_an_edge_the_two_hints_blend():
    left, right = colour_per_half(two_halves(50.0, 50.0))
    # Both halves drift towards the mean of the two hints: each is further than 10 units from its own hint.
    assert (left - torch.tensor(RED)).norm() > 10 and (right - torch.tensor(BLUE)).norm() > 10
    assert (left - right).norm() < 0.5 * (torch.tensor(RED) - torch.tensor(BLUE)).norm()


def test_no_hints_gives_the_gray_image():
    lightness = torch.rand(HEIGHT, WIDTH) * 100
    ab, mask = point_hints()
    out = levin_colorize(lightness, ab + 5, mask)
    assert torch.equal(out, torch.zeros(2, HEIGHT, WIDTH))


def test_every_pixel_hinted_returns_the_hints():
    ab = torch.randn(2, 4, 5) * 20
    out = levin_colorize(torch.rand(4, 5) * 100, ab, torch.ones(4, 5, dtype=torch.bool))
    assert torch.equal(out, ab)


@pytest.mark.parametrize(
    ("ab_shape", "mask_shape", "mask_dtype", "message"),
    [
        ((3, HEIGHT, WIDTH), (HEIGHT, WIDTH), torch.bool, r"hint_ab must be \(2, H, W\).*got shape \(3, 24, 48\)"),
        ((2, HEIGHT, WIDTH), (HEIGHT, WIDTH + 1), torch.bool, r"hint_mask must be \(H, W\).*got shape \(24, 49\)"),
        ((2, HEIGHT, WIDTH), (HEIGHT, WIDTH), torch.uint8, r"hint_mask must be a bool tensor, got torch.uint8"),
    ],
)
def test_bad_hint_shapes_name_the_shape_and_the_fix(ab_shape, mask_shape, mask_dtype, message):
    with pytest.raises((ValueError, TypeError), match=message):
        levin_colorize(torch.zeros(HEIGHT, WIDTH), torch.zeros(ab_shape), torch.zeros(mask_shape, dtype=mask_dtype))


@pytest.mark.parametrize(
    ("lightness_shape", "window", "solver", "message"),
    [
        ((3, HEIGHT, WIDTH), 1, "splu", r"lightness must be \(H, W\) or \(1, H, W\).*got shape \(3, 24, 48\)"),
        ((HEIGHT, WIDTH), 0, "splu", r"window must be an integer >= 1.*got 0"),
        ((HEIGHT, WIDTH), 1, "cholesky", r"solver must be one of splu, pyamg, got 'cholesky'"),
    ],
)
def test_bad_arguments_are_named(lightness_shape, window, solver, message):
    ab, mask = point_hints((0, 0, RED))
    with pytest.raises(ValueError, match=message):
        levin_colorize(torch.zeros(lightness_shape), ab, mask, window=window, solver=solver)


def test_a_photo_and_clicked_hints_give_its_own_lightness_with_their_colours():
    """Two halves of a photo, dark and light, one red click in each half's far corner of the other colour."""
    from polychrome.color import uint8_to_lab
    from polychrome.hints import parse_hints
    from polychrome.levin import levin_colorize_photo

    image = torch.full((3, 24, 32), 110, dtype=torch.uint8)
    image[:, :, 16:] = 170
    hints = parse_hints([(2, 2, (160, 90, 90)), (30, 20, (110, 140, 190))], (24, 32))  # colours inside sRGB at these L
    result = levin_colorize_photo(image, hints)
    lab, source = uint8_to_lab(result[None])[0], uint8_to_lab(image[None])[0]
    assert result.shape == image.shape and result.dtype == torch.uint8
    assert (lab[0] - source[0]).abs().max() < 1.0  # the photo's own L (up to uint8 rounding)
    left, right = lab[1:, :, :16].mean(dim=(1, 2)), lab[1:, :, 16:].mean(dim=(1, 2))
    assert left[0] > 10 and right[1] < -10  # reddish (a > 0) on the left, bluish (b < 0) on the right
    gray = levin_colorize_photo(image, [])
    assert uint8_to_lab(gray[None])[0, 1:].abs().max() < 1.0


def test_a_photo_that_is_not_uint8_rgb_is_refused():
    from polychrome.levin import levin_colorize_photo

    with pytest.raises(ValueError, match=r"uint8 RGB \(3, H, W\)"):
        levin_colorize_photo(torch.zeros(3, 8, 8), [])


def test_a_propagated_residual_keeps_every_hint_and_stops_at_an_edge():
    lightness = two_halves(20.0, 80.0)[None, None]
    prediction = torch.zeros(1, 2, HEIGHT, WIDTH)
    prediction[:, 0] = 15.0  # a little red everywhere: right on the right half, wrong on the left
    ab, mask = point_hints((HEIGHT // 2, WIDTH // 4, RED), (HEIGHT // 2, 3 * WIDTH // 4, (15.0, 0.0)))
    out = propagate_residual(lightness, prediction, ab[None], mask[None, None].float(), decay=0.0)  # Levin's own
    assert torch.equal(out[0][:, mask], ab[:, mask])  # the hints, exactly
    left, right = out[0, :, :, : WIDTH // 2].mean(dim=(1, 2)), out[0, :, :, WIDTH // 2 :].mean(dim=(1, 2))
    assert torch.allclose(left, torch.tensor(RED), atol=4.0), left  # the hint's region takes its colour
    assert torch.allclose(right, torch.tensor([15.0, 0.0]), atol=4.0), right  # across the edge the prediction holds


def test_with_a_decay_a_colour_fades_with_distance_from_its_hint():
    ab, mask = point_hints((HEIGHT // 2, 2, RED))
    flat = torch.full((HEIGHT, WIDTH), 50.0)
    near, far = levin_colorize(flat, ab, mask, decay=0.01)[0, HEIGHT // 2, [4, WIDTH - 1]]
    assert 0 < far < near / 4 < RED[0] / 4  # about 1 / sqrt(0.01) = 10 pixels; the far side is 45 away
    assert torch.allclose(levin_colorize(flat, ab, mask)[0], torch.full((HEIGHT, WIDTH), RED[0]))  # none: all of it
    with pytest.raises(ValueError, match="decay must be >= 0, got -1"):
        levin_colorize(flat, ab, mask, decay=-1)


def test_a_photo_without_hints_keeps_its_prediction_and_bad_shapes_are_named():
    lightness, prediction = torch.rand(2, 1, HEIGHT, WIDTH) * 100, torch.randn(2, 2, HEIGHT, WIDTH) * 20
    ab, mask = point_hints((3, 3, RED))
    hint_ab, hint_mask = torch.stack([ab, torch.zeros_like(ab)]), torch.stack([mask, torch.zeros_like(mask)])[:, None]
    out = propagate_residual(lightness, prediction, hint_ab, hint_mask.float())
    assert torch.equal(out[1], prediction[1]) and not torch.equal(out[0], prediction[0])
    with pytest.raises(
        ValueError, match=r"hint_mask \(N, 1, H, W\) alike, got \(2, 2, 24, 48\), \(2, 2, 24, 48\) and \(2, 24, 48\)"
    ):
        propagate_residual(lightness, prediction, hint_ab, hint_mask[:, 0].float())


def test_the_prior_weight_mixes_the_corrected_prediction_with_levins_colours():
    lightness = torch.rand(1, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2)) * 100
    prediction = torch.randn(1, 2, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3)) * 20
    ab, mask = point_hints((3, 4, RED), (20, 40, BLUE))
    hints = (ab[None], mask[None, None].float())
    full, none = (propagate_residual(lightness, prediction, *hints, decay=0.0, prior_weight=w) for w in (1.0, 0.0))
    torch.testing.assert_close(none[0], levin_colorize(lightness[0], ab, mask))  # weight 0: Levin's method
    mixed = propagate_residual(lightness, prediction, *hints, decay=0.0, prior_weight=0.375)
    torch.testing.assert_close(mixed, 0.375 * full + 0.625 * none, atol=1e-4, rtol=0)  # linear in the hints
    assert torch.equal(mixed[0][:, mask], ab[:, mask])


def test_a_photo_above_the_pixel_limit_is_refused_naming_the_limit_its_pixels_and_the_fix():
    lightness, (ab, mask) = two_halves(40, 70), point_hints((3, 4, RED))
    with pytest.raises(LevinTooLarge) as refused:
        levin_colorize(lightness, ab, mask, max_pixels=HEIGHT * WIDTH - 1)
    message = str(refused.value)
    assert message.startswith("Levin's optimisation is limited to 1,151 pixels (0.001151 megapixels, about 0.0 GB")
    assert "this photo is 48x24 = 1,152 pixels" in message
    assert message.endswith(
        "resize it to at most 0.001151 megapixels (e.g. 47x23), or use a network that takes hints "
        "at any size (the guided model)"
    )
    at_the_limit = levin_colorize(lightness, ab, mask, max_pixels=HEIGHT * WIDTH)  # solved
    assert at_the_limit[:, 3, 4].tolist() == list(RED)
    assert not levin_colorize(lightness, ab, torch.zeros_like(mask), max_pixels=1).any()  # no hints: no solve to refuse


def test_the_levin_model_refuses_a_photo_above_the_default_limit_whoever_calls_it():
    import polychrome

    photo = np.full((MAX_PIXELS // 1500 + 1, 1500, 3), 128, np.uint8)  # just above: refused before any solve
    with pytest.raises(LevinTooLarge, match=f"limited to {MAX_PIXELS:,} pixels"):
        polychrome.load_colorizer("levin").colorize(photo, hints=[(3, 4, (200, 30, 40))])


def test_a_decay_keeps_one_clicks_correction_in_its_region_and_returns_to_the_prediction_beyond():
    """Issue 32: with decay 0 Levin's solution from one click is its colour everywhere, so a person's first click
    tinted the whole photo; the decay pulls the colours back to the prediction itself (not w x it) away from it."""
    lightness = two_halves(20.0, 80.0)[None, None]
    prediction = torch.zeros(1, 2, HEIGHT, WIDTH)
    prediction[:, 0] = 15.0
    ab, mask = point_hints((HEIGHT // 2, WIDTH // 4, RED))
    hints = (ab[None], mask[None, None].float())
    right = slice(WIDTH // 2 + 2, WIDTH)  # the other region, beyond the edge's own pixels

    def halves(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return out[0, :, :, : WIDTH // 2].mean(dim=(1, 2)), out[0, :, :, right].mean(dim=(1, 2))

    tinted = propagate_residual(lightness, prediction, *hints, decay=0.0, prior_weight=0.375)
    assert torch.allclose(halves(tinted)[1], torch.tensor(RED), atol=4.0)  # the click's colour everywhere
    for weight in (0.375, 1.0):
        kept = propagate_residual(lightness, prediction, *hints, decay=1e-4, prior_weight=weight)
        assert torch.equal(kept[0][:, mask], ab[:, mask])  # the click, exactly
        left = halves(kept)[0]
        assert (left - torch.tensor(RED)).norm() < (prediction[0, :, 0, 0] - torch.tensor(RED)).norm() / 2, left
        assert (kept[0, :, :, right] - prediction[0, :, :, right]).abs().max() < 3.0  # within 3 ab units
    with pytest.raises(ValueError, match=r"toward must be \(2, H, W\) like hint_ab"):
        levin_colorize(lightness[0, 0], ab, mask, decay=0.1, toward=torch.zeros(2, 3, 3))


def test_the_falloff_weakens_the_pull_as_hinted_regions_accumulate():
    """decay / regions ** falloff: a lone click gets the whole decay; three clicks (a stroke counts once, however
    many pixels it covers) get decay / 3 ** falloff, exactly as if that decay were given."""
    from polychrome.levin import hinted_regions

    lightness = torch.rand(1, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(4)) * 100
    prediction = torch.randn(1, 2, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(5)) * 20
    one = point_hints((3, 4, RED))
    three = point_hints((3, 4, RED), (20, 40, BLUE), (12, 24, RED))
    three[1][5, 10:30], three[0][:, 5, 10:30] = True, torch.tensor(BLUE, dtype=torch.float32)[:, None]  # a stroke
    assert hinted_regions(one[1]) == 1 and hinted_regions(three[1]) == 4 and hinted_regions(one[1] & False) == 1

    def corrected(hints, **constants) -> torch.Tensor:
        ab, mask = hints
        return propagate_residual(lightness, prediction, ab[None], mask[None, None].float(), **constants)

    torch.testing.assert_close(corrected(one, decay=1e-2, falloff=2.0), corrected(one, decay=1e-2, falloff=0.0))
    torch.testing.assert_close(
        corrected(three, decay=1e-2, falloff=2.0), corrected(three, decay=1e-2 / 16, falloff=0.0)
    )
    assert not torch.allclose(corrected(three, decay=1e-2, falloff=2.0), corrected(three, decay=1e-2, falloff=0.0))


def test_systems_made_beforehand_give_the_same_correction_as_made_in_place():
    """The pipeline factorises while its network runs (levin_systems) and solves once the prediction is known:
    the same numbers as propagate_residual making them itself, a photo without hints kept as it is."""
    from polychrome.levin import levin_systems

    lightness = torch.rand(2, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(6)) * 100
    prediction = torch.randn(2, 2, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(7)) * 20
    ab, mask = point_hints((3, 4, RED), (20, 40, BLUE))
    hint_ab, hint_mask = torch.stack([ab, ab]), torch.stack([mask, torch.zeros_like(mask)])[:, None].float()
    constants = {"decay": 1e-3, "falloff": 2.0}
    systems = levin_systems(lightness, hint_mask, **constants)
    assert systems[1] is None
    made = propagate_residual(lightness, prediction, hint_ab, hint_mask, systems=systems, **constants)
    assert torch.equal(made, propagate_residual(lightness, prediction, hint_ab, hint_mask, **constants))
    assert torch.equal(made[1], prediction[1])
    with pytest.raises(ValueError, match="solver must be one of splu, pyamg, got 'lu'"):
        levin_systems(lightness, hint_mask, solver="lu")  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [1, 2])
def test_the_system_is_factorised_in_nested_dissection_order_and_solves_as_a_direct_solve(window):
    """``dissection_order`` lists every pixel once, the middle separator (``window`` rows of a tall grid) last, and
    the LU made in that order (twice as fast as SuperLU's minimum degree: benchmarks/levin_order.py) solves the
    system as scipy's direct solver does in the pixels' own order."""
    from polychrome.levin import dissection_order, levin_affinity, levin_system

    height, width = 41, 30
    order = dissection_order(height, width, window)
    assert sorted(order.tolist()) == list(range(height * width))
    middle = (height - window) // 2
    assert sorted(order[-window * width :].tolist()) == list(range(middle * width, (middle + window) * width))
    luminance = np.random.default_rng(0).uniform(0, 100, (height, width)).cumsum(axis=1) % 100
    hinted = np.zeros(height * width, dtype=bool)
    hinted[[7, 400, 1000]] = True
    hint_ab = torch.zeros(2, height, width)
    hint_ab.view(2, -1)[:, hinted] = torch.tensor([[40.0, -20.0, 5.0], [-30.0, 10.0, 60.0]])
    toward = torch.randn(2, height, width, generator=torch.Generator().manual_seed(1)) * 20
    system = levin_system(luminance, hinted, decay=1e-3, window=window)
    solved = system.solve(hint_ab, toward)
    free, fixed = np.flatnonzero(~hinted), np.flatnonzero(hinted)
    full = 1.001 * sp.eye_array(height * width, format="csr") - levin_affinity(luminance, window)
    hints = hint_ab.double().numpy().reshape(2, -1)
    rhs = -full[free][:, fixed] @ hints[:, fixed].T + 1e-3 * toward.double().numpy().reshape(2, -1)[:, free].T
    direct = spsolve(sp.csc_matrix(full[free][:, free]), rhs)
    assert np.abs(solved.double().numpy().reshape(2, -1)[:, free] - direct.T).max() < 1e-4
    assert torch.equal(solved.view(2, -1)[:, hinted], hint_ab.view(2, -1)[:, hinted])


def test_a_few_hinted_pixels_are_solved_through_the_whole_grid_as_their_own_lu_solves_them(monkeypatch):
    """Up to CAPACITANCE_PIXELS hinted pixels, the grid's factorisation (made before the hints are known: the guided
    page makes it while the person chooses a click) and a capacitance system give the unhinted pixels' own LU's
    solution; the columns a grid keeps (made ahead for the clicks so far) give the same bits as a fresh grid's."""
    from polychrome import levin

    height, width = 30, 40
    luminance = np.random.default_rng(2).uniform(0, 100, (height, width)).cumsum(axis=0) % 100
    hinted = np.zeros(height * width, dtype=bool)
    hinted[[5, 333, 610, 1111]] = True
    hint_ab = torch.randn(2, height, width, generator=torch.Generator().manual_seed(3)) * 30
    toward = torch.randn(2, height, width, generator=torch.Generator().manual_seed(4)) * 20
    assert levin.through_the_grid(hinted, 1e-4)
    through = levin.levin_system(luminance, hinted, decay=1e-4).solve(hint_ab, toward)
    grid = levin.levin_grid(luminance, 1e-4)
    grid.spread(np.array([1111, 7, 333]))  # ahead, in another order and with a pixel since deleted
    assert torch.equal(levin.levin_system(luminance, hinted, decay=1e-4, grid=grid).solve(hint_ab, toward), through)
    assert set(grid.columns) == {5, 333, 610, 1111}  # the deleted pixel's column is not kept
    monkeypatch.setattr(levin, "CAPACITANCE_PIXELS", 0)
    assert not levin.through_the_grid(hinted, 1e-4)
    own = levin.levin_system(luminance, hinted, decay=1e-4).solve(hint_ab, toward)
    assert (through - own).abs().max() < 1e-4  # float32 results of float64 solves that agree to ~1e-11


def test_which_solve_runs_depends_on_the_hints_alone():
    from polychrome import levin

    few, many = np.zeros(100, dtype=bool), np.zeros(100 * 100, dtype=bool)
    few[:3] = True
    many[: levin.CAPACITANCE_PIXELS + 1] = True
    assert levin.through_the_grid(few, 1e-3)
    assert not levin.through_the_grid(many, 1e-3)  # a long stroke: the unhinted pixels' own LU
    assert not levin.through_the_grid(few, 0.0)  # Levin's own method: I - W is singular on the whole grid
    assert not levin.through_the_grid(few, 1e-3, solver="pyamg")
    with pytest.raises(ValueError, match="needs decay > 0"):
        levin.levin_grid(np.zeros((4, 4)), 0.0)
