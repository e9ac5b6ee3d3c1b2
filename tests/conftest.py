"""Shared fixtures. Tests that need the real data in POLYCHROME_DATA skip without it, unless
POLYCHROME_REQUIRE_DATA=1 (set by .ci/run), which turns the skip into a failure so CI never skips them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polychrome.settings import data_root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session caches into its own folder, so tests never read a stale user cache."""
    monkeypatch.setenv("POLYCHROME_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _torch_state_restored():
    """Tests call entry points in-process (``main(["colorize", ...])``), which may set up the process for
    speed (threads, subnormals: ``polychrome.cli.inference_threads``); each test gets torch as it was, so
    trainings that compare weights bit for bit run with the same threads whatever ran before them."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    blas = threadpool_limits(limits=None, user_api="blas")  # changes nothing; remembers the BLAS threads
    yield
    torch.set_num_threads(threads)
    blas.restore_original_limits()
    torch.set_flush_denormal(False)  # a new process's setting, which every test starts from


def shared(*parts: str) -> Path:
    """A path inside the shared data root, or a skip (a failure under POLYCHROME_REQUIRE_DATA=1)."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        reason = f"needs {path} (set POLYCHROME_DATA to the folder holding the shared data)"
        if os.environ.get("POLYCHROME_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def measurement_stack(seed: int, images: int = 2, side: int = 12, varied: bool = False) -> dict:
    """A stack of images' worth of every metric's update arguments, predictions a noisy copy of the truth (noise
    15 ab units, or with ``varied`` up to 40, drawn per image so the measures vary over photos); image 1 of
    seed 0 counts as hand-segmented."""
    import torch

    from polychrome.color import lab_to_uint8, uint8_to_lab

    generator = torch.Generator().manual_seed(seed)
    truth_rgb = torch.randint(0, 256, (images, 3, side, side), dtype=torch.uint8, generator=generator)
    truth_lab = uint8_to_lab(truth_rgb)
    noise = torch.rand(images, 1, 1, 1, generator=generator) * 40 if varied else 15
    predicted_ab = truth_lab[:, 1:] + torch.randn(images, 2, side, side, generator=generator) * noise
    return {
        "predicted_ab": predicted_ab,
        "truth_ab": truth_lab[:, 1:],
        "truth_lab": truth_lab,
        "truth_rgb": truth_rgb,
        "predicted_rgb": lab_to_uint8(torch.cat([truth_lab[:, :1], predicted_ab], dim=1)),
        "labels": torch.arange(images) * seed % 2,
        "indices": torch.arange(images) + images * seed,
        "segments": [torch.arange(side * side).view(side, side) // 30] * images,
        "hand_segmented": torch.tensor([i == 1 and seed == 0 for i in range(images)]),
    }
