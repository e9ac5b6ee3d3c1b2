"""Hint inputs as a config option of the registered models, and what the model card says about them."""

import pytest
import torch

from polychrome.hints import GlobalHint, global_hint_vector
from polychrome.models import build_model, create_model, load_official
from polychrome.models.base import GLOBAL_HINT_WIDTH
from polychrome.models.official import SIGGRAPH17Net

LOCAL = ("L", "ab_hints", "hint_mask")


def planes(n=2, side=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    lightness = torch.rand(n, 1, side, side, generator=generator) * 100
    ab = torch.zeros(n, 2, side, side)
    mask = torch.zeros(n, 1, side, side)
    ab[:, :, 10:14, 10:14] = torch.tensor([60.0, -40.0])[:, None, None]
    mask[:, :, 10:14, 10:14] = 1
    return lightness, ab, mask


@pytest.mark.parametrize(
    "name, options",
    [("eccv16", {"width": 0.125}), ("unet", {"channels": (4, 8, 16)}), ("eccv16_regress", {"width": 0.125})],
)
def test_any_registered_variant_takes_local_and_global_hints_when_built_with_them(name, options):
    torch.manual_seed(0)
    model = build_model(name, local_hints=True, global_hints=True, **options).eval()
    assert model.card.inputs == (*LOCAL, "global_hints") and model.takes_hints
    lightness, ab, mask = planes()
    with torch.no_grad():
        plain = model(lightness)
        assert torch.equal(model(lightness, torch.zeros_like(ab), torch.zeros_like(mask)), plain)  # zeros = none
        hinted = model(lightness, ab, mask)
        reference = global_hint_vector([GlobalHint(torch.full((313,), 1 / 313), 30.0)] * 2)
        assert reference.shape == (2, GLOBAL_HINT_WIDTH)
        guided = model(lightness, ab, mask, reference)
        not_given = model(lightness, ab, mask, global_hint_vector([None, None]))
    assert not torch.equal(hinted, plain) and not torch.equal(guided, hinted)  # both reach the output
    assert torch.equal(not_given, hinted)  # a row flagged 'not given' adds nothing


def test_a_model_built_without_hints_refuses_them_and_its_card_says_L_only():
    model = build_model("eccv16", width=0.125)
    assert model.card.inputs == ("L",) and not model.takes_hints
    lightness, ab, mask = planes()
    with pytest.raises(ValueError, match="without local_hints"):
        model(lightness, ab, mask)


def test_hint_planes_of_the_wrong_shape_are_refused():
    model = create_model("unet", channels=(4, 8), local_hints=True)
    lightness, ab, mask = planes()
    with pytest.raises(ValueError, match=r"hint planes must be \(N, 2, H, W\)"):
        model(lightness, ab[:, :, :16], mask)


def test_the_unet_predicts_at_every_input_pixel_and_names_the_sides_it_needs():
    model = create_model("unet", channels=(4, 8, 16), head="regression")
    assert model(torch.rand(1, 1, 24, 40) * 100).shape == (1, 2, 24, 40)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.rand(1, 1, 30, 40))


def test_siggraph17_feeds_hints_to_its_first_layer_as_the_released_code_does(tmp_path):
    """The official layout: cat(normalize_l(L), normalize_ab(ab) = ab / 110, mask) into model1; loaded from a
    state dict with the released key names."""
    state = {k: v for k, v in SIGGRAPH17Net().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "siggraph17.pth")
    model = load_official("siggraph17", tmp_path / "siggraph17.pth")
    assert model.card.inputs == LOCAL
    seen = []
    model.network.model1[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    lightness, ab, mask = planes(1, 32)
    with torch.no_grad():
        hinted, plain = model(lightness, ab, mask), model(lightness)
    expected = torch.cat([(lightness - 50) / 100, ab / 110, mask], dim=1)
    assert torch.allclose(seen[0], expected) and torch.equal(seen[1][:, 1:], torch.zeros_like(seen[1][:, 1:]))
    assert not torch.allclose(hinted, plain)


def test_levin_is_a_full_resolution_model_that_keeps_its_hints_exactly():
    model = build_model("levin")
    assert model.card.full_resolution and model.card.inputs == LOCAL
    lightness, ab, mask = planes(1, 20)
    out = model(lightness, ab, mask)
    assert torch.allclose(out[0, :, 10:14, 10:14], ab[0, :, 10:14, 10:14])
    assert torch.equal(model(lightness), torch.zeros(1, 2, 20, 20))  # no hints: the gray photo


def test_a_network_built_without_global_hints_refuses_a_reference():
    lightness = planes()[0]
    for model in (create_model("unet", channels=(4, 8), local_hints=True), create_model("eccv16", width=0.125)):
        with pytest.raises(ValueError, match="without global_hints and takes no reference"):
            model(lightness, None, None, global_hint_vector([None, None]))
