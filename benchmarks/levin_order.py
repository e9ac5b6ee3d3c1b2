"""The LU of Levin's system in nested-dissection order (``polychrome.levin.dissection_order``, what ``levin_system``
uses) against SuperLU's own minimum-degree order on A^T + A (what it used before), side by side in one run.

A real photo's L (a BSDS500 test image, resized with its aspect kept to each size; 128 x 128 is the guided
model's input, where every click of the guided page factorises) gets ``--hints`` seeded random hinted pixels and
the bundled correction's decay (1e-3); the same reduced system is factorised both ways, alternately, ``--repeats``
times: the best time of each, the ratio, and the fill-in (nonzeros of L + U). The order's own cost (cached by
shape) is left out.

    python benchmarks/levin_order.py --sizes 128 0.25 1 --hints 10
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from levin import photo_lab  # benchmarks/ is the script's folder
from PIL import Image
from scipy.sparse.linalg import splu

from polychrome.color import rgb_to_lab
from polychrome.levin import dissection_order, levin_affinity
from polychrome.settings import data_root


def lightness(photo: Path, size: str) -> np.ndarray:
    """The photo's L (H, W) float64: at 128 x 128 (the guided model's input) for "128", else at about ``size``
    megapixels with its aspect kept."""
    if size != "128":
        return photo_lab(photo, float(size))[0].double().numpy()
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((128, 128), Image.Resampling.BICUBIC))
    return rgb_to_lab(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255)[0, 0].double().numpy()


def factorise(system: sp.csr_array, order: str) -> tuple[float, int]:
    """Seconds and fill-in of the LU of ``system``'s transpose with diagonal pivots, as ``levin.factorised``."""
    started = time.perf_counter()
    factors = splu(sp.csc_matrix(system.T), permc_spec=order, diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return time.perf_counter() - started, int(factors.L.nnz + factors.U.nnz)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["128", "0.25", "1"], help="128: 128 x 128; else megapixels")
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("$ python benchmarks/levin_order.py " + shlex.join(sys.argv[1:]))
    photo = next(iter(sorted((data_root() / "bsds500" / "images" / "test").glob("*.jpg"))))
    for size in args.sizes:
        luminance = lightness(photo, size)
        height, width = luminance.shape
        hinted = np.zeros(height * width, dtype=bool)
        hinted[np.random.default_rng(0).choice(height * width, args.hints, replace=False)] = True
        system = 1.001 * sp.eye_array(height * width, format="csr") - levin_affinity(luminance)
        ascending, order = np.flatnonzero(~hinted), dissection_order(height, width)
        dissected = order[~hinted[order]]
        times: dict[str, list[float]] = {"MMD_AT_PLUS_A": [], "NATURAL": []}
        fill = {}
        for _ in range(args.repeats):
            for spec, free in (("MMD_AT_PLUS_A", ascending), ("NATURAL", dissected)):
                seconds, fill[spec] = factorise(system[free][:, free], spec)
                times[spec].append(seconds)
        mmd, nd = min(times["MMD_AT_PLUS_A"]), min(times["NATURAL"])
        print(
            f"{width}x{height} ({height * width:,} px), {args.hints} hints: minimum degree {1000 * mmd:.0f} ms "
            f"(fill {fill['MMD_AT_PLUS_A']:,}), nested dissection {1000 * nd:.0f} ms (fill {fill['NATURAL']:,}): "
            f"{mmd / nd:.2f}x faster"
        )


if __name__ == "__main__":
    main()
