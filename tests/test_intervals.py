"""Test-set intervals (polychrome.metrics.intervals): a bootstrap over blocks of test images that changes no
reported number, agrees with the textbook interval where there is one, and is the same on a rerun."""

import math
import statistics

import pytest
import torch
from PIL import Image

from polychrome.cli import main
from polychrome.color import ab_gamut
from polychrome.evaluate import evaluate
from polychrome.metrics import MEASURES, compute_all, metrics_for, psnr
from polychrome.metrics.intervals import BlockSums, images_per_block, summed
from polychrome.models import load_model
from tests.conftest import measurement_stack


def test_feeding_by_blocks_gives_every_measure_a_plain_update_gives():
    plain, blocked = (metrics_for(list(MEASURES), bins=ab_gamut(), classes=[]) for _ in range(2))
    blocks = BlockSums(blocked, per_block=2)
    for seed in range(4):
        plain.update(**measurement_stack(seed, images=3, varied=True))
        blocks.update(**measurement_stack(seed, images=3, varied=True))
    assert blocks.count == 8  # stacks of 3 in blocks of at most 2
    expected, got = compute_all(plain), compute_all(blocked)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, float):  # a few metrics sum a stack in float32 first: chunks round differently
            assert got[name] == pytest.approx(value, rel=1e-6), name
        else:
            assert got[name] == value, name
    assert not summed(blocked["PredictionSpread"]) and summed(blocked["AccuracyCurves"])


def test_the_interval_of_a_mean_over_photos_is_the_textbook_one():
    """PSNR is a mean over images: with one image per block, the bootstrap's 95% interval is close to the
    mean +- 1.96 standard errors, and it leaves the metric's own result as it was."""
    metrics = metrics_for(["psnr"])
    blocks = BlockSums(metrics, per_block=1)
    values = []
    for seed in range(100):
        stack = measurement_stack(seed, varied=True)
        blocks.update(**stack)
        values += psnr(stack["predicted_rgb"], stack["truth_rgb"]).tolist()
    before = compute_all(metrics)["psnr"]
    low, high = blocks.intervals(replicates=2000)["psnr"]
    mean, error = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    assert before == pytest.approx(mean)
    assert low == pytest.approx(mean - 1.96 * error, abs=0.25 * error)
    assert high == pytest.approx(mean + 1.96 * error, abs=0.25 * error)
    assert compute_all(metrics)["psnr"] == before  # the replicates restored the states
    assert blocks.intervals(replicates=2000) == blocks.intervals(replicates=2000)  # seeded


def test_a_set_is_split_into_about_two_hundred_blocks():
    assert [images_per_block(n) for n in (1, 200, 201, 10_000)] == [1, 1, 2, 50]


@pytest.fixture
def varied_photos(tmp_path):
    generator = torch.Generator().manual_seed(0)
    for i in range(12):
        colour = torch.randint(0, 256, (3,), generator=generator).tolist()
        pixels = (torch.rand(16, 16, 3, generator=generator) * 60 + torch.tensor(colour) * 0.7).clamp(0, 255)
        Image.fromarray(pixels.to(torch.uint8).numpy()).save(tmp_path / f"{i:02d}.png")
    return tmp_path


def test_evaluate_gives_intervals_around_its_numbers_and_records_how(varied_photos):
    data = f"folder:{varied_photos}"
    plain = evaluate(load_model("gray"), data, size=16, workers=0)
    result = evaluate(load_model("gray"), data, size=16, workers=0, intervals=300)
    again = evaluate(load_model("gray"), data, size=16, workers=0, intervals=300)
    assert result["intervals"] == again["intervals"]
    assert result["protocol"]["intervals"] | {"method": ""} == {
        "replicates": 300,
        "level": 0.95,
        "blocks": 12,
        "images_per_block": 1,
        "method": "",
    }
    for name in ("auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness_gap"):
        low, high = result["intervals"][name]
        assert low < high, name
        assert result[name] == pytest.approx(plain[name], rel=1e-6), name
    for name in ("auc_raw", "psnr", "mean_ab_error"):  # means over photos or pixels: the estimate lies inside
        low, high = result["intervals"][name]
        assert low <= result[name] <= high, name
    assert result["intervals"]["false_color"] == [0.0, 0.0]  # gray is never further from the truth than gray
    assert "intervals" not in plain and "intervals" not in plain["protocol"]


def test_the_evaluate_command_prints_the_intervals_in_brackets(varied_photos, capsys):
    assert (
        main(
            [
                "evaluate",
                "--model",
                "gray",
                "--data",
                f"folder:{varied_photos}",
                "--size",
                "16",
                "--workers",
                "0",
                "--intervals",
                "200",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("| gray"))
    assert row.count("[") >= 10 and "] |" in row
