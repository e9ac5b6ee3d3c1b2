"""The lent-GPU recipe for the bundled model: packing photos to travel, and the budgeted run itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXPERIMENTS = Path(__file__).parents[1] / "experiments"


def script(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packing_shrinks_keeps_paths_skips_the_unreadable_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "data" / "photos" / "train"
    (source / "cls").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (300, 200, 4), dtype=np.uint8), "RGBA").save(source / "cls" / "big.png")
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(source / "small.jpg")
    (source / "notes.jpg").write_text("not a photo")
    pack = script("pack_data").pack

    written, failed = pack(["photos/train"], tmp_path / "out", size=72, root=tmp_path / "data")
    assert written == 2 and len(failed) == 1 and "notes.jpg" in failed[0]
    with Image.open(tmp_path / "out" / "photos" / "train" / "cls" / "big.jpg") as big:
        assert (big.size, big.mode) == ((72, 108), "RGB")  # short side 72, aspect kept
    with Image.open(tmp_path / "out" / "photos" / "train" / "small.jpg") as small:
        assert small.size == (50, 40)  # never enlarged
    assert pack(["photos/train"], tmp_path / "out", size=72, root=tmp_path / "data")[0] == 0  # kept copies resume
    with pytest.raises(SystemExit, match="no folder"):
        pack(["photos/missing"], tmp_path / "out", size=72, root=tmp_path / "data")


def test_the_budgeted_run_probes_trains_and_sends_back_loadable_weights(tmp_path, monkeypatch):
    """The device script on a CPU, small: probe, a run sized to the budget, float16 weights that load."""
    from polychrome.models import load_model

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:24, 0:24] / 23
    for split, count in (("train", 16), ("val", 4)):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(count):
            colour = rng.random((2, 3)) * 255
            image = colour[0] * x[..., None] + colour[1] * (1 - y[..., None])
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(tmp_path / "data" / split / f"{i}.png")
    monkeypatch.setenv("POLYCHROME_DATA", str(tmp_path / "data"))  # the script sets it; restored after the test
    sets = [
        "data.train=[folder:train]",
        "data.val=folder:val",
        "data.size=16",
        "data.cache_size=16",
        "data.batch_size=4",
        "data.workers=0",
        "model.width=0.125",
        "trainer.val_every=5",
    ]
    weights = script("gpu_default_model").main(
        [
            # a budget no machine runs out of (the probe's time is taken from it), the steps capped to keep it short
            "--out",
            str(tmp_path / "out"),
            "--minutes",
            "5",
            "--max-steps",
            "10",
            "--probe-steps",
            "5",
            "--data",
            str(tmp_path / "data"),
            "--run-dir",
            str(tmp_path / "run"),
            *[f"--set={s}" for s in sets],
        ]
    )
    model = load_model(str(weights))
    assert model.card.input_size == 16 and model.card.options["width"] == 0.125
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "config.yaml",
        "gpu-default.safetensors",
        "metrics.csv",
        "run.json",
    ]
    assert not (tmp_path / "run-probe").exists()


def test_a_budget_the_probe_uses_up_is_refused_with_the_fix(tmp_path, monkeypatch):
    """Too few minutes for anything after the probe: a message naming the budget, not a run that never starts."""
    monkeypatch.setenv("POLYCHROME_DATA", str(tmp_path / "data"))  # the script sets it; restored after the test
    with pytest.raises(SystemExit, match=r"budget of 0.01 min leaves no time to train .*give more --minutes"):
        script("gpu_default_model").main(
            [
                "--out",
                str(tmp_path / "out"),
                "--minutes",
                "0.01",
                "--data",
                str(tmp_path / "data"),
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
