"""Which rule over the sRGB gamut gives Zhang et al.'s 313 ab bins? (None does; README, "The ab gamut".)

Prints, for each candidate rule, how many grid-10 bins it selects, how many of Zhang's 313 it misses and
how many it adds. Runs in about a minute on 2 CPU cores:

    python experiments/gamut_rules.py
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.path import Path
from scipy.spatial import ConvexHull
from skimage import color as skcolor

from polychrome.color import ab_gamut, encode_soft, rgb_to_lab

GRID = 10


def all_srgb_ab() -> torch.Tensor:
    levels = torch.arange(256, dtype=torch.float64) / 255
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    lab = rgb_to_lab(torch.stack([r, g, b]).reshape(1, 3, 4096, 4096))
    ab = lab[0, 1:].reshape(2, -1).T
    return torch.unique(torch.round(ab * 10) / 10, dim=0)  # 0.1-unit resolution is plenty for cell tests


def report(name: str, cells: set, zhang: set) -> None:
    print(f"{name:<72} {len(cells):>4} bins   missing {len(zhang - cells):>3}   extra {len(cells - zhang):>3}")


def main() -> None:
    zhang = {tuple(b) for b in ab_gamut("zhang").int().tolist()}
    ab = all_srgb_ab()
    nearest = {tuple(c) for c in (torch.round(ab / GRID) * GRID).int().unique(dim=0).tolist()}
    report("cells 8-bit sRGB colours round into (nearest node)", nearest, zhang)

    grid = torch.stack(torch.meshgrid(*[torch.arange(-130, 131, GRID)] * 2, indexing="ij"), -1).reshape(-1, 2)
    reach = encode_soft(ab.float().T.reshape(1, 2, -1, 1), grid.float(), k=5).index.unique()
    report(
        "cells among the 5 nearest of some colour (soft-encoding reach)",
        {tuple(grid[i].tolist()) for i in reach},
        zhang,
    )

    hull = Path(ab.numpy()[ConvexHull(ab.numpy()).vertices])
    offsets = np.stack(np.meshgrid(*[np.linspace(-5, 5, 41)] * 2, indexing="ij"), -1).reshape(-1, 2)
    meeting = {tuple(c) for c in grid.tolist() if hull.contains_points(np.array(c) + offsets).any()}
    report("cells meeting the convex hull of the colours' ab", meeting, zhang)

    levels = np.arange(0, 256, 3) / 255
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 3)
    for illuminant in ("D50", "D55", "D65", "D75", "E", "A"):
        for observer in ("2", "10"):
            lab = skcolor.rgb2lab(rgb, illuminant=illuminant, observer=observer).reshape(-1, 3)
            cells = {tuple(c) for c in (np.round(lab[:, 1:] / GRID).astype(int) * GRID).tolist()}
            report(
                f"nearest node, white point {illuminant}, {observer} degree observer (every 3rd level)", cells, zhang
            )


if __name__ == "__main__":
    main()
