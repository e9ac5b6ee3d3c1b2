"""Evaluation with simulated hints: ``evaluate`` / ``compare --hints N``, and experiments/guided_curves.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polychrome.cli import main
from polychrome.color import uint8_to_lab
from polychrome.evaluate import HintProtocol, evaluate
from polychrome.hints import GlobalHint, evaluation_hints
from polychrome.models import build_model, load_model, save_weights
from polychrome.pipeline import ColorizationPipeline
from tests.conftest import shared

CURVES_SCRIPT = Path(__file__).parents[1] / "experiments" / "guided_curves.py"
SIZES = [(40, 30), (36, 36), (28, 44), (40, 30), (32, 24)]  # (width, height); two of one size share a batch group


def quadrants(width: int, height: int, seed: int) -> np.ndarray:
    """A photo of four flat regions, each its own colour and lightness, so colour edges follow L's edges."""
    colours = np.random.default_rng(seed).integers(30, 226, size=(4, 3))
    image = np.empty((height, width, 3), np.uint8)
    top, bottom, left, right = (
        slice(None, height // 2),
        slice(height // 2, None),
        slice(None, width // 2),
        slice(width // 2, None),
    )
    for colour, (rows, columns) in zip(
        colours, [(top, left), (top, right), (bottom, left), (bottom, right)], strict=True
    ):
        image[rows, columns] = colour
    return image


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, size in enumerate(SIZES):
        Image.fromarray(quadrants(*size, seed=k)).save(folder / f"p{k}.png")
    return folder


def truth_lab(folder: Path, k: int) -> torch.Tensor:
    image = torch.from_numpy(np.array(Image.open(folder / f"p{k}.png").convert("RGB"))).permute(2, 0, 1)
    return uint8_to_lab(image[None])[0]


def tiny_guided():
    torch.manual_seed(0)
    return build_model("unet_guided", channels=(4, 8, 16), head="regression").with_card(input_size=32).eval()


@pytest.fixture
def seen(monkeypatch) -> list:
    """Every call of the pipeline's predict, as (model name, local hints, global hints) per image."""
    calls: list = []
    original = ColorizationPipeline.predict

    def spy(self, photos, hints=None, references=None, temperature=None):
        for k in range(len(photos)):
            local = None if hints is None else tuple(hints[k])
            calls.append((self.card.name, local, None if references is None else references[k]))
        return original(self, photos, hints, references, temperature)

    monkeypatch.setattr(ColorizationPipeline, "predict", spy)
    return calls


def test_every_model_gets_the_same_hints_whatever_the_batch_size_or_the_sample(photos, seen):
    protocol = HintProtocol(7, seed=3)
    evaluate(tiny_guided(), f"folder:{photos}", hints=protocol, batch_size=1, workers=0)
    evaluate(build_model("levin"), f"folder:{photos}", hints=protocol, batch_size=4, workers=0)
    guided = [local for name, local, _ in seen if name == "unet_guided"]
    levin = [local for name, local, _ in seen if name == "levin"]
    expected = [evaluation_hints(truth_lab(photos, k), 3, k, 7) for k in range(len(SIZES))]
    assert guided == levin == expected and all(len(hints) == 7 for hints in expected)

    seen.clear()  # a sample of the set: each image keeps the hints of its index in the whole set
    evaluate(build_model("levin"), f"folder:{photos}", hints=protocol, limit=2, workers=0)
    sampled = [local for _, local, _ in seen]
    assert len(sampled) == 2 and all(hints in expected for hints in sampled)
    assert evaluation_hints(truth_lab(photos, 0), 4, 0, 7) != expected[0]  # another seed, other hints


def test_levin_with_50_hints_beats_gray_on_ab_error(photos):
    levin = evaluate(build_model("levin"), f"folder:{photos}", hints=HintProtocol(50), workers=0)
    gray = evaluate(load_model("gray"), f"folder:{photos}", workers=0)
    assert levin["mean_ab_error"] < 0.25 * gray["mean_ab_error"] and levin["psnr"] > gray["psnr"] + 5


def test_levin_with_50_hints_beats_gray_on_bsds500_photos():
    shared("bsds500", "images", "test")
    data, protocol = "folder:bsds500/images/test", HintProtocol(50)
    levin = evaluate(build_model("levin"), data, limit=2, hints=protocol, workers=0)
    gray = evaluate(load_model("gray"), data, limit=2, workers=0)
    assert levin["images"] == gray["images"] == 2
    assert levin["mean_ab_error"] < gray["mean_ab_error"] and levin["psnr"] > gray["psnr"]
    assert levin["protocol"]["model_input"].startswith("the image's own L")  # Levin at the photo's resolution


def test_evaluate_refuses_hints_for_a_model_that_takes_none_in_one_line(photos, capsys):
    for model, hints, problem in [
        ("gray", ["--hints", "3"], "gray takes no colour hints; models that do: guided, levin"),
        ("levin", ["--global-hints", "truth"], "levin takes no reference photo; models that do: guided"),
        ("levin", ["--global-hints", "sky"], "--global-hints 'sky': give truth or reference:DIR"),
    ]:
        assert main(["evaluate", "--model", model, "--data", f"folder:{photos}", "--workers", "0", *hints]) == 2
        error = capsys.readouterr().err
        assert problem in error and error.count("\n") == 1


def test_the_printed_protocol_says_levin_sees_each_photo_at_its_own_resolution(photos, capsys):
    args = ["--data", f"folder:{photos}", "--workers", "0", "--hints", "3"]
    assert main(["compare", "--models", "gray,levin", *args]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("protocol:"))
    assert line.startswith(
        "protocol: the model sees L resized to its input size (gray (no hints) 256) "
        "or L at each photo's own resolution (levin); "
    )
    assert main(["evaluate", "--model", "levin", *args]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("protocol:"))
    assert line.startswith("protocol: the model sees L at each photo's own resolution (levin); ") and "256" not in line


def test_the_protocol_records_the_hint_settings(photos):
    plain = evaluate(tiny_guided(), f"folder:{photos}", workers=0)
    hinted = evaluate(tiny_guided(), f"folder:{photos}", hints=HintProtocol(5, 3, global_hints="truth"), workers=0)
    assert plain["protocol"]["hints"] is None
    recorded = hinted["protocol"]["hints"]
    assert {key: recorded[key] for key in ("count", "seed", "placement", "global")} == {
        "count": 5,
        "seed": 3,
        "placement": "gaussian",
        "global": "truth",
    }
    assert HintProtocol.from_record(recorded) == HintProtocol(5, 3, global_hints="truth")
    assert hinted["per_image_error"] != plain["per_image_error"]  # the hints reached the network


def test_compare_measures_models_without_hints_as_the_no_hint_baselines(photos, tmp_path, capsys):
    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny_guided(), weights)
    out = tmp_path / "compare.json"
    models = f"gray,levin,{weights}"
    args = ["compare", "--models", models, "--data", f"folder:{photos}", "--workers", "0", "--json", str(out)]
    assert main([*args, "--hints", "4", "--global-hints", "truth", "--out", str(tmp_path / "report")]) == 0
    rows = {row["model"]: row["protocol"]["hints"] for row in json.loads(out.read_text())}
    assert list(rows) == ["gray (no hints)", "levin (no global hints)", str(weights)]
    assert (
        rows["gray (no hints)"]["count"] == 0
        and "gray takes no local or global hints" in rows["gray (no hints)"]["withheld"]
    )
    assert rows["levin (no global hints)"]["count"] == 4 and rows["levin (no global hints)"]["global"] is None
    assert rows[str(weights)]["count"] == 4 and rows[str(weights)]["global"] == "truth"
    assert "4 simulated hints per image (seed 0, gaussian), global hints from the truth" in capsys.readouterr().out
    assert (tmp_path / "report" / "examples.png").is_file()


def test_reference_global_hints_come_from_the_photo_of_the_same_name(photos, tmp_path, seen, capsys):
    references = tmp_path / "references"
    references.mkdir()
    for k in range(len(SIZES) - 1):
        Image.fromarray(quadrants(20, 20, seed=100 + k)).save(references / f"p{k}.jpg")
    protocol = HintProtocol(2, global_hints=f"reference:{references}")
    with pytest.raises(ValueError, match=r"no reference photo .*p4\.\* for the test image p4\.png") as error:
        evaluate(tiny_guided(), f"folder:{photos}", hints=protocol, workers=0)
    assert "\n" not in str(error.value) and not seen  # refused before any image was coloured

    args = ["evaluate", "--model", "levin", "--data", f"folder:{photos}", "--hints", "2", "--workers", "0"]
    assert main([*args, "--global-hints", f"reference:{tmp_path / 'nowhere'}"]) == 2
    assert "nowhere is not a folder of reference photos" in capsys.readouterr().err

    Image.fromarray(quadrants(20, 20, seed=104)).save(references / "p4.jpg")
    evaluate(tiny_guided(), f"folder:{photos}", hints=protocol, workers=0)
    for k, (_, _, global_hint) in enumerate(seen):
        assert torch.equal(global_hint.distribution, GlobalHint.from_file(references / f"p{k}.jpg").distribution)


def _curves_script():
    spec = importlib.util.spec_from_file_location("guided_curves", CURVES_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_curve_script_writes_its_curves_and_resumes_without_measuring_again(photos, tmp_path, monkeypatch):
    curves = _curves_script()
    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny_guided(), weights, hint_propagation="levin")
    out = tmp_path / "curves"
    argv = ["--model", str(weights), "--out", str(out), "--data", f"folder:{photos}", "--limit", "2"]
    argv += ["--counts", "0,20", "--workers", "0"]
    curves.main(argv)
    (name,) = json.loads((out / "curves.json").read_text())
    written = json.loads((out / "curves.json").read_text())[name]
    assert {label: sorted(curve["points"], key=int) for label, curve in written.items()} == {
        "gray": ["0"],
        "default": ["0"],
        "levin": ["0", "20"],
        "guided": ["0", "20"],
        "guided-network": ["0", "20"],  # the same weights without the hint propagation their card names
    }
    assert written["levin"]["points"]["20"]["psnr"] > written["levin"]["points"]["0"]["psnr"]
    guided, network = written["guided"]["points"]["20"], written["guided-network"]["points"]["20"]
    assert guided["psnr"] > network["psnr"] + 1  # an untrained network ignores hints that the propagation keeps
    assert (guided["protocol"]["hint_propagation"], network["protocol"]["hint_propagation"]) == ("levin", "none")
    assert written["levin"]["points"]["20"]["images"] == 2 and (out / "curves.png").stat().st_size > 10_000
    table = (out / "psnr.md").read_text().splitlines()
    levin_row = next(line for line in table if line.startswith("| levin |"))
    assert levin_row.split("|")[3].strip().strip("*") == f"{written['levin']['points']['20']['psnr']:.2f}"

    measured = []
    real_evaluate = curves.evaluate
    monkeypatch.setattr(curves, "evaluate", lambda *a, **k: measured.append(k["name"]) or real_evaluate(*a, **k))
    (out / "points" / name / "levin-20.json").unlink()  # as if the run was killed before this point
    curves.main(argv)
    assert measured == ["levin"]
    again = json.loads((out / "curves.json").read_text())[name]
    assert again["guided"] == written["guided"]  # read back as written
    assert _without_time(again["levin"]) == _without_time(written["levin"])  # measured again, the same

    save_weights(build_model("unet_guided", channels=(4, 8, 8), head="regression").with_card(input_size=32), weights)
    with pytest.raises(SystemExit, match=r"guided-0\.json was measured with"):
        curves.main(argv)  # other weights under the same label: not read back as if they were the same


def _without_time(curve: dict) -> dict:
    return {count: {k: v for k, v in point.items() if k != "seconds"} for count, point in curve["points"].items()}


def test_the_figure_script_draws_a_row_per_photo_and_refuses_a_model_without_hints(photos, tmp_path):
    spec = importlib.util.spec_from_file_location("guided_figure", CURVES_SCRIPT.with_name("guided_figure.py"))
    figure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figure)
    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny_guided(), weights)
    out = tmp_path / "figure" / "guided.png"
    figure.main(["--model", str(weights), "--data", f"folder:{photos}", "--indices", "0,3", "--out", str(out)])
    width, height = Image.open(out).size
    assert width > 1000 and 300 < height < width  # five columns, two rows
    with pytest.raises(ValueError, match="gray takes no colour hints"):
        figure.main(["--model", "gray", "--label", "gray", "--data", f"folder:{photos}", "--out", str(out)])
