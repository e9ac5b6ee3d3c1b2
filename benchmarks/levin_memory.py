"""Peak memory of one Levin et al. 2004 colourisation (``levin_colorize``, the default sparse LU) by photo size.

Each size runs in a fresh Python process, so one size's peak cannot hide another's: the child loads the photo's L at
that size (BSDS500 test 346016 resized, its aspect kept), puts N seeded random hints of its true ab, reads its peak
resident set (``resource.getrusage``), solves, and reads it again. The difference is what the solve itself needed
(the affinity, the system, the LU factors and their workspace); divided by the pixel count it is the figure
``polychrome.levin.BYTES_PER_PIXEL`` and docs/levin.md quote. The LU's fill-in depends on the sparsity pattern and
the ordering, not on the pixel values, so another photo of the same size needs about the same.

    python benchmarks/levin_memory.py --megapixels 0.25 0.5 1 --hints 10
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from polychrome.color import rgb_to_lab
from polychrome.levin import BYTES_PER_PIXEL, levin_colorize
from polychrome.settings import data_root


def peak_bytes() -> int:
    """This process's peak resident set so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(photo: Path, megapixels: float, hints: int, seed: int) -> dict:
    """One solve in this process: its size, seconds and the peak resident set before and after."""
    image = Image.open(photo).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    rgb = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
    lab = rgb_to_lab(rgb[None])[0]
    height, width = lab.shape[1:]
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[torch.randperm(height * width, generator=torch.Generator().manual_seed(seed))[:hints]] = True
    before = peak_bytes()
    start = time.perf_counter()
    levin_colorize(lab[0], lab[1:], mask.reshape(height, width), max_pixels=None)
    seconds = time.perf_counter() - start
    return {"width": width, "height": height, "seconds": seconds, "before": before, "after": peak_bytes()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--photo", type=Path, default=None, help="default: BSDS500 test 346016.jpg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)  # one size, in a fresh process
    args = parser.parse_args()
    photo = args.photo or data_root() / "bsds500" / "images" / "test" / "346016.jpg"
    if args.child is not None:
        print(json.dumps(measure(photo, args.child, args.hints, args.seed)))
        return

    print(
        f"$ python {shlex.join(sys.argv)}  (photo {photo.name}, {args.hints} hints, levin.BYTES_PER_PIXEL {BYTES_PER_PIXEL})"
    )
    print("| megapixels | size | seconds | peak RSS before (MB) | peak RSS after (MB) | solve (MB) | bytes per pixel |")
    print("|---|---|---|---|---|---|---|")
    for megapixels in args.megapixels:
        child = [sys.executable, __file__, "--child", str(megapixels), "--hints", str(args.hints)]
        child += ["--photo", str(photo), "--seed", str(args.seed)]
        row = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        pixels, solve = row["width"] * row["height"], row["after"] - row["before"]
        print(
            f"| {megapixels:g} | {row['width']}x{row['height']} | {row['seconds']:.1f} | {row['before'] / 1e6:.0f} | "
            f"{row['after'] / 1e6:.0f} | {solve / 1e6:.0f} | {solve / pixels:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
