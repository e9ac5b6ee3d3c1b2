"""The simulated person of ``--clicks N`` (``polychrome.person``): where it clicks, what it measures, and the
``evaluate`` / ``compare`` flags end to end."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from polychrome.cli import main
from polychrome.color import lab_to_uint8
from polychrome.models import build_model, save_weights
from polychrome.person import (
    ClickProtocol,
    PersonRun,
    click_table,
    deepest_point,
    harm,
    next_click,
    run_person,
    segment_clicks,
    summarize_runs,
)


def truth(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo's true Lab (3, H, W) (L 50, ab varying) and its uint8 RGB."""
    generator = torch.Generator().manual_seed(seed)
    ab = (torch.rand(2, height, width, generator=generator) - 0.5) * 40
    lab = torch.cat([torch.full((1, height, width), 50.0), ab])
    rgb = lab_to_uint8(lab[None])[0]
    return lab, rgb


def where(click) -> tuple[int, int]:
    return click.x, click.y


# ---------------------------------------------------------------------------------------------- where it clicks


def test_the_click_goes_to_the_deepest_point_of_the_largest_wrong_region():
    error = np.zeros((20, 30))
    error[2:5, 2:5] = 40  # a small, very wrong region: size counts, not how wrong
    error[10:17, 12:19] = 20  # the largest: 7 x 7, centre row 13, column 15
    error[0, 29] = 100
    lab, rgb = truth(20, 30)
    click = next_click(torch.from_numpy(error), lab, rgb)
    assert click is not None
    assert where(click) == (15, 13) and click.patch == 1
    # one pixel with the truth's colour there
    assert click.ab == (float(lab[1, 13, 15]), float(lab[2, 13, 15]))
    assert click.rgb == tuple(int(v) for v in rgb[:, 13, 15])


def test_only_errors_above_the_threshold_are_wrong_and_none_means_nothing_to_fix():
    lab, _ = truth(6, 6)
    error = np.full((6, 6), 15.0)  # exactly at the threshold: not wrong
    assert next_click(error, lab) is None
    error[4, 1] = 15.01
    assert where(next_click(error, lab)) == (1, 4)


def test_the_photo_border_is_an_edge_of_a_wrong_region():
    error = np.zeros((20, 12))
    error[:5] = 30  # a band along the top border: its deepest row is the middle one, not the border row
    assert where(next_click(error, truth(20, 12)[0])) == (2, 2)


def test_regions_are_4_connected():
    error = np.zeros((12, 12))
    error[0:3, 0:3] = 30  # two 3 x 3 blocks touching at a corner only: two regions of 9 pixels under
    error[3:6, 3:6] = 30  # 4-connectivity (one of 18 under 8-connectivity)
    error[8:11, 7:11] = 30  # 3 x 4 = 12 pixels: the largest under 4-connectivity
    assert where(next_click(error, truth(12, 12)[0])) == (8, 9)


def test_ties_go_to_the_first_in_row_major_order():
    error = np.zeros((10, 10))
    error[6:9, 1:4] = 30  # two equal 3 x 3 regions: the one whose first pixel comes first (row 2)
    error[2:5, 6:9] = 30
    assert where(next_click(error, truth(10, 10)[0])) == (7, 3)
    flat = np.ones((2, 6), bool)  # every pixel is 1 from the border: the first pixel
    assert deepest_point(flat) == (0, 0)
    assert deepest_point(np.ones((4, 6), bool)) == (1, 1)  # rows 1-2, columns 1-4 tie at 2
    first = [where(next_click(error, truth(10, 10)[0])) for _ in range(3)]
    assert first == [(7, 3)] * 3


def test_the_segments_person_clicks_each_segment_largest_first_at_its_deepest_point():
    segments = np.zeros((10, 10), np.int64)  # label 0: the background, 64 pixels
    segments[0:4, 0:5] = 3  # 20 pixels
    segments[6:10, 5:10] = 1  # 20 pixels: ties with label 3, smaller label first
    segments[7:9, 0:3] = 2  # 6 pixels
    lab, rgb = truth(10, 10)
    clicks = segment_clicks(torch.from_numpy(segments), lab, rgb)
    assert [segments[c.y, c.x] for c in clicks] == [0, 1, 3, 2]
    assert [where(c) for c in clicks[1:]] == [(6, 7), (1, 1), (0, 7)]
    assert all(c.ab == (float(lab[1, c.y, c.x]), float(lab[2, c.y, c.x])) for c in clicks)


# ---------------------------------------------------------------------------------------------- what it measures


def test_harm_is_the_share_of_pixels_whose_error_grows_by_more_than_10():
    before = torch.zeros(4, 5)
    after = before.clone()
    after[0, 0] = 10.0  # grows by exactly 10: not harmed
    after[0, 1], after[1, 2], after[3, 4] = 10.5, 30.0, 11.0  # harmed
    after[2, 2] = -5.0  # better
    assert harm(before, after) == pytest.approx(3 / 20)
    assert harm(before + 50, after) == 0.0  # the same errors from higher up: all better


@dataclass
class _Prediction:
    ab: torch.Tensor


@dataclass
class _Photo:
    size: tuple[int, int]


class ScriptedPipeline:
    """A pipeline whose colours after k clicks are scripted: ``colours[k]`` (2, H, W)."""

    def __init__(self, colours: list[torch.Tensor]):
        self.colours = colours
        self.calls: list[list] = []

    def predict(self, photos, hints, references, temperature):
        self.calls.append(list(hints[0]))
        return [_Prediction(self.colours[len(hints[0])])]


def test_a_run_measures_each_click_and_the_person_follows_the_models_own_errors():
    lab, rgb = truth(8, 8, seed=1)
    ab = lab[1:]
    before = ab.clone()
    before[0] += 30  # every pixel 30 wrong: the first click at the centre
    once = ab.clone()
    once[0, :, 4:] += 30  # the left half fixed, the right still 30 wrong
    once[0, :2, 4:] += 15  # and 8 of its pixels now 45 wrong: harmed
    pipeline = ScriptedPipeline([before, once, ab])  # two clicks make it exact: then nothing is left
    run = run_person(cast(Any, pipeline), cast(Any, _Photo((8, 8))), rgb, lab, clicks=4)
    assert [where(c) for c in run.clicks] == [(3, 3), (5, 1)]  # the second: the right half's deepest point
    assert [len(call) for call in pipeline.calls] == [0, 1, 2]  # all clicks so far, no prediction once done
    assert run.harm == pytest.approx((8 / 64, 0.0, 0.0, 0.0))
    assert len(run.psnr) == 5 and run.psnr[0] < run.psnr[1] < run.psnr[2] == run.psnr[4] == math.inf
    assert run.mean_ab_error[0] == pytest.approx(30) and run.mean_ab_error[1] == pytest.approx((24 * 30 + 8 * 45) / 64)
    assert run.mean_ab_error[2:] == (0.0, 0.0, 0.0)


def run_of(psnr: list[float], harm: list[float], pixels: int = 100) -> PersonRun:
    return PersonRun((), tuple(psnr), tuple(50.0 - p for p in psnr), tuple(harm), pixels)


def test_the_summary_averages_over_photos_and_counts_the_clicks_to_each_target():
    runs = {
        3: run_of([24, 23, 28.5, 29], [0.3, 0.0, 0.1]),  # worse after 1; 25 and 28 dB after 2
        7: run_of([26, 26, 27.5, 27.9], [0.0, 0.0, 0.2], pixels=300),  # not worse; 25 dB at 0 clicks, 28 never
    }
    summary = summarize_runs(runs, ClickProtocol(3))
    assert [point["psnr"] for point in summary["curve"]] == [25, 24.5, 28, 28.45]
    assert summary["curve"][1]["mean_ab_error"] == pytest.approx((100 * 27 + 300 * 24) / 400)  # over pixels
    assert summary["curve"][0]["harm"] is None and summary["curve"][3]["harm"] == pytest.approx(0.15)
    assert summary["harm_first"] == pytest.approx(0.15) and summary["harm_first_three"] == pytest.approx(0.1)
    assert summary["noc"] == {
        "25": {"mean_clicks": 1.0, "not_reached": 0},
        "28": {"mean_clicks": 2.5, "not_reached": 1},  # a photo that never reaches it counts N
    }
    assert summary["worse_after_first_click"] == 1 and summary["photos"] == 2
    assert summary["per_image"][3]["psnr"] == [24, 23, 28.5, 29]
    table = click_table([{"model": "m", "clicks": summary}, {"model": "gray"}])
    assert "| m | 25.00 | 24.50 | 28.00 | 28.45 |" in table and "gray" not in table


# ---------------------------------------------------------------------------------------------- the CLI


def textured(width: int, height: int, seed: int) -> np.ndarray:
    """Four flat-coloured quadrants with a little noise, so no colouring is exact."""
    generator = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.int64)
    colours = generator.integers(40, 216, size=(4, 3))
    for k, (rows, columns) in enumerate(
        (top, left)
        for top in (slice(None, height // 2), slice(height // 2, None))
        for left in (slice(None, width // 2), slice(width // 2, None))
    ):
        image[rows, columns] = colours[k]
    return np.clip(image + generator.integers(-6, 7, size=image.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def bsds(tmp_path) -> Path:
    """Two tiny photos laid out as BSDS500 is, each with a human segmentation (its quadrants)."""
    images, truths = tmp_path / "bsds" / "images" / "val", tmp_path / "bsds" / "groundTruth" / "val"
    images.mkdir(parents=True)
    truths.mkdir(parents=True)
    for k, (width, height) in enumerate([(24, 18), (20, 20)]):
        Image.fromarray(textured(width, height, k)).save(images / f"{k}.png")
        segments = np.ones((height, width), np.uint16)
        segments[height // 2 :] += 1
        segments[:, width // 2 :] += 2
        cell = np.empty((1, 1), dtype=object)
        cell[0, 0] = {"Segmentation": segments, "Boundaries": np.zeros((height, width), bool)}
        savemat(truths / f"{k}.mat", {"groundTruth": cell})
    return images


def tiny_guided(path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("unet_guided", channels=(4, 8, 16), head="regression").with_card(input_size=32).eval()
    save_weights(model, path)
    return path


def without_time(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} | {"clicks": r["clicks"] | {"seconds": 0}} for r in results]


def test_compare_clicks_runs_end_to_end_and_twice_the_same(bsds, tmp_path, capsys):
    weights = tiny_guided(tmp_path / "tiny.safetensors")
    args = ["compare", "--models", f"gray,levin,{weights}", "--data", f"folder:{bsds}", "--workers", "0"]
    args += ["--clicks", "3", "--examples", "0"]
    assert main([*args, "--json", str(tmp_path / "a.json"), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    first = json.loads((tmp_path / "a.json").read_text())
    assert "clicks" not in first[0]  # gray takes no hints: its row is the no-click baseline
    levin = first[1]["clicks"]
    assert levin["protocol"]["person"] == "errors" and levin["photos"] == 2 and len(levin["curve"]) == 4
    assert levin["curve"][3]["psnr"] > levin["curve"][0]["psnr"]  # Levin with 3 clicks beats gray
    assert all(len(image["clicks"]) == 3 for image in levin["per_image"].values())
    assert f"| {weights} | " in printed and "| levin | " in printed and "NoC@25 dB" in printed
    report = tmp_path / "report"
    assert "| levin |" in (report / "clicks.md").read_text() and (report / "clicks.png").stat().st_size > 10_000
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    assert without_time(json.loads((tmp_path / "b.json").read_text())[1:]) == without_time(first[1:])


def test_evaluate_with_the_segments_person_clicks_each_segment(bsds):
    from polychrome.evaluate import evaluate
    from polychrome.models import load_model

    results = evaluate(load_model("levin"), f"folder:{bsds}", workers=0, clicks=ClickProtocol(5, "segments"))
    clicks = results["clicks"]
    assert clicks["protocol"]["person"] == "segments"
    # four equal quadrants: four clicks, labels 1 (top left), 2 (bottom left), 3, 4 in order; none for the fifth
    assert clicks["per_image"][0]["clicks"] == [[4, 4], [4, 13], [16, 4], [16, 13]]
    assert clicks["per_image"][0]["psnr"][4] == clicks["per_image"][0]["psnr"][5]
    assert clicks["per_image"][0]["harm"][4] == 0.0


def test_click_flags_refuse_what_cannot_run_in_one_line(bsds, tmp_path, capsys):
    data = ["--data", f"folder:{bsds}", "--workers", "0"]
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.fromarray(textured(16, 16, 5)).save(plain / "a.png")
    for argv, problem in [
        (["--model", "levin", *data, "--person", "segments"], "--person segments is the simulated person of --clicks"),
        (["--model", "gray", *data, "--clicks", "2"], "gray takes no colour hints"),
        (["--model", "levin", *data, "--clicks", "2", "--person", "segments", "--eval-size", "16"], "drop --eval-size"),
        (["--model", "levin", "--data", f"folder:{plain}", "--clicks", "2", "--person", "segments"], "a.png"),
    ]:
        assert main(["evaluate", *argv]) == 2
        error = capsys.readouterr().err
        assert problem in error and error.count("\n") == 1, error
