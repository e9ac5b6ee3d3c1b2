"""Seconds for one Levin et al. 2004 colourisation (affinity, system and solve for a and b) by photo size and hints.

A real photo (L from a BSDS500 test image, resized to each size with its aspect kept) gets N seeded random hints
with the photo's true ab at those pixels; scipy's sparse LU (``solver="splu"``) and, when pyamg is installed,
algebraic multigrid (``solver="pyamg"``) solve the same problem one after the other in this run, so the ratio
is what to quote. Each cell is the best of ``--repeats`` runs.

    python benchmarks/levin.py --megapixels 0.25 0.5 1 2 --hints 10 100
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from polychrome.color import rgb_to_lab
from polychrome.levin import levin_colorize, pyamg_available
from polychrome.settings import data_root


def photo_lab(path: Path, megapixels: float) -> torch.Tensor:
    """The photo resized to about ``megapixels`` (aspect kept), as Lab (3, H, W)."""
    image = Image.open(path).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    rgb = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
    return rgb_to_lab(rgb[None])[0]


def seconds(lab: torch.Tensor, hints: int, solver: str, seed: int, repeats: int) -> float:
    height, width = lab.shape[1:]
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[torch.randperm(height * width, generator=generator)[:hints]] = True
    mask = mask.reshape(height, width)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        levin_colorize(lab[0], lab[1:], mask, solver=solver, max_pixels=None)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--hints", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--photo", type=Path, default=None, help="default: BSDS500 test 346016.jpg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    photo = args.photo or data_root() / "bsds500" / "images" / "test" / "346016.jpg"
    solvers = ["splu", "pyamg"] if pyamg_available() else ["splu"]

    print(f"$ python {shlex.join(sys.argv)}  ({torch.get_num_threads()} threads, photo {photo.name})")
    header = "| megapixels | size | hints | " + " | ".join(f"{s} (s)" for s in solvers)
    print(header + (" | pyamg / splu |" if len(solvers) == 2 else " |"))
    print("|---" * (header.count("|") + (len(solvers) == 2)) + "|")
    for megapixels in args.megapixels:
        lab = photo_lab(photo, megapixels)
        for hints in args.hints:
            times = [seconds(lab, hints, solver, args.seed, args.repeats) for solver in solvers]
            row = f"| {megapixels:g} | {lab.shape[2]}x{lab.shape[1]} | {hints} | " + " | ".join(
                f"{t:.2f}" for t in times
            )
            print(row + (f" | {times[1] / times[0]:.2f}x |" if len(times) == 2 else " |"), flush=True)


if __name__ == "__main__":
    main()
