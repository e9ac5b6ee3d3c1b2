"""The bundled guided model: what its file says, what it takes, and that hints make it better than the automatic
model on real photos it never saw."""

from pathlib import Path

import numpy as np
import pytest

import polychrome
from polychrome.evaluate import HintProtocol, TruthCache, evaluate
from polychrome.models import load_model
from polychrome.models.weights import bundled_weights, read_metadata
from tests.conftest import shared


def test_the_bundled_guided_model_loads_offline_and_takes_hints_and_a_reference():
    path = bundled_weights("guided")
    assert path.stat().st_size <= 25 * 2**20
    metadata = read_metadata(path)
    assert "polychrome train" in metadata["commands"] and "intel-scenes-train" in metadata["config"]
    pipeline = polychrome.load_colorizer("guided")
    assert pipeline.card.inputs == ("L", "ab_hints", "hint_mask", "global_hints")
    assert pipeline.input_size == int(metadata["input_size"]) == 128
    photo = np.full((40, 60, 3), 128, np.uint8)
    plain = pipeline.colorize(photo)
    red = pipeline.colorize(photo, hints=[(30, 20, (220, 40, 40))])
    assert red[20, 30, 0] > plain[20, 30, 0] + 20  # a red click on gray turns that spot red


def test_the_reference_saturation_reaches_it_at_the_scale_it_was_trained_with():
    """The global vector carries a reference's mean chroma / 100 (polychrome.hints.global_hint_vector); the weights
    learned that scale, so another (/ 110, / 50) changes its colours. Measured when this test was written: with a
    blue reference (chroma 83.9) the coffee photo at 128 px gets a mean chroma of 22.57 (8.13 without; / 110 gives
    21.65, / 50 gives 29.3)."""
    import torch
    from torch.nn import functional as F

    from polychrome.color import uint8_to_lab
    from polychrome.data import load_rgb
    from polychrome.hints import GlobalHint, global_hint_vector
    from polychrome.models import load_weights

    model = load_weights(bundled_weights("guided"))
    rgb = torch.from_numpy(load_rgb(Path(__file__).parents[1] / "examples" / "photos" / "coffee-gray.jpg"))
    lightness = uint8_to_lab(rgb.permute(2, 0, 1)[None])[:, :1]
    lightness = F.interpolate(lightness, size=(128, 128), mode="bilinear", align_corners=False)
    blue = GlobalHint.from_rgb(torch.tensor([40, 80, 220], dtype=torch.uint8).view(3, 1, 1).expand(3, 4, 4))
    with torch.no_grad():
        ab = model(lightness, None, None, global_hint_vector([blue]))
    assert blue.saturation == pytest.approx(83.89, abs=0.01)
    assert float(ab.norm(dim=1).mean()) == pytest.approx(22.57, abs=0.25)


def test_ten_hints_lift_it_well_above_the_automatic_model_on_bsds500_photos():
    """The issue's bar is +3 dB PSNR over the bundled automatic model at 10 hints on all of BSDS500 test
    (docs/guided.md); on 16 photos the test asks for +2 dB, a margin one sample cannot miss by chance."""
    photos = f"folder:{shared('bsds500', 'images', 'test')}"
    cache = TruthCache()
    guided = polychrome.load_colorizer("guided").model
    automatic = polychrome.load_colorizer("default").model
    hinted = evaluate(guided, photos, limit=16, workers=0, cache=cache, hints=HintProtocol(10, 0))
    alone = evaluate(automatic, photos, limit=16, workers=0, cache=cache, temperature=automatic.card.temperature)
    assert hinted["psnr"] > alone["psnr"] + 2.0
    assert hinted["mean_ab_error"] < alone["mean_ab_error"]


def test_with_ten_random_hints_the_correction_keeps_zhangs_curve():
    """Issue 32's bar for Zhang et al. 2017's random hints: the bundled correction, chosen with a simulated person
    so a click stays in its region, stays within 0.5 dB of the correction first shipped (decay 0, which spreads
    every click over the photo, as random hints reward) on all 200 test photos (docs/guided.md "Keeping a click in
    its region": 26.70 against 26.73, the network alone 25.92; ten hints pull at 1e-3 / 10^2). Here 16 of them with
    the same seeded hints and the same bar, and the correction must still add to the network alone."""
    photos = f"folder:{shared('bsds500', 'images', 'test')}"
    cache = TruthCache()
    guided = polychrome.load_colorizer("guided").model
    assert guided.card.hint_propagation == "levin" and guided.card.hint_decay > 0

    def psnr(model) -> float:
        return evaluate(model, photos, limit=16, workers=0, cache=cache, hints=HintProtocol(10, 0))["psnr"]

    bundled = psnr(guided)
    assert bundled >= psnr(guided.with_card(hint_decay=0.0)) - 0.5
    assert bundled > psnr(guided.with_card(hint_propagation="none")) + 0.1


def test_one_click_stays_in_its_region_with_the_bundled_correction():
    """Issue 32: the bundled card's decay (docs/guided.md "Keeping a click in its region") keeps a click on the dark
    half of a two-region photo off the light half, about as the network alone does; with decay 0, as first shipped,
    the click's colour filled the light half too."""
    import torch

    from polychrome.color import uint8_to_lab
    from polychrome.levin import PRIOR_WEIGHT, RESIDUAL_DECAY
    from polychrome.pipeline import ColorizationPipeline

    image = np.full((96, 128, 3), 60, np.uint8)
    image[:, 64:] = 190
    model = load_model("guided")
    assert (model.card.hint_decay, model.card.hint_prior_weight) == (RESIDUAL_DECAY, PRIOR_WEIGHT)

    def change_on_the_light_half(card_changes: dict) -> float:
        pipeline = ColorizationPipeline(model.with_card(**card_changes), name="guided")
        plain, clicked = (
            uint8_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 1:]
            for rgb in (pipeline.colorize(image), pipeline.colorize(image, hints=[(20, 48, (200, 30, 30))]))
        )
        return float((clicked - plain).norm(dim=0)[:, 70:].mean())  # ab units, beyond the edge

    bundled, network = change_on_the_light_half({}), change_on_the_light_half({"hint_propagation": "none"})
    assert bundled < network + 2.0 and bundled < change_on_the_light_half({"hint_decay": 0.0}) / 3
