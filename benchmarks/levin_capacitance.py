"""A click's correction solved through the whole grid's factorisation (``levin.LevinGrid`` and the capacitance
system of ``levin.through_grid``) against the unhinted pixels' own LU, side by side in one run, at the guided
model's 128 x 128.

A real photo's L (a BSDS500 test image at 128 x 128) gets ``--hints`` seeded random hinted pixels for each count
and the bundled correction's decay for that many regions (``levin.falling_decay``); for each: the unhinted pixels'
LU (what a click cost before), the whole grid's LU (made ahead on the guided page, while the person chooses the
next click), one solve per hinted pixel (``LevinGrid.spread``: all of them alone, or only the newest when the
others were solved ahead), and the solve of both colour planes. Best of ``--repeats``. Also the memory the
grid's factors hold (nonzeros of L + U at 12 bytes each: a float64 and an int32 index).

    python benchmarks/levin_capacitance.py --hints 1 3 10 20 40 64
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
from levin_order import lightness  # benchmarks/ is the script's folder
from scipy.sparse.linalg import splu

from polychrome import levin
from polychrome.settings import data_root

T = TypeVar("T")


def best(work: Callable[[], T], repeats: int) -> tuple[float, T]:
    """The fastest of ``repeats`` runs of ``work()`` in milliseconds, and its last result."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return 1000 * min(times), result


def system_of(luminance: np.ndarray, decay: float) -> sp.csr_array:
    return levin.screened_system(levin.levin_affinity(luminance), decay)


def factor_bytes(luminance: np.ndarray, decay: float) -> int:
    """What the whole grid's LU factors hold, as ``levin.factorised`` makes them: nonzeros x 12 bytes."""
    order = levin.dissection_order(*luminance.shape)
    system = system_of(luminance, decay)[order][:, order]
    factors = splu(
        sp.csc_matrix(system.T), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    return 12 * int(factors.L.nnz + factors.U.nnz)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hints", type=int, nargs="+", default=[1, 3, 10, 20, 40, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("$ python benchmarks/levin_capacitance.py " + shlex.join(sys.argv[1:]))
    photo = next(iter(sorted((data_root() / "bsds500" / "images" / "test").glob("*.jpg"))))
    luminance = lightness(photo, "128")
    rng = np.random.default_rng(0)
    right_hand = rng.normal(0, 20, (luminance.size, 2))
    print(
        f"{photo.name} at 128 x 128; decay {levin.RESIDUAL_DECAY:g} / regions^{levin.RESIDUAL_DECAY_FALLOFF:g}; "
        f"the grid's factors hold {factor_bytes(luminance, levin.RESIDUAL_DECAY) / 1e6:.1f} MB"
    )
    for count in args.hints:
        print(f"{count:3d} hinted pixels: " + measure(luminance, count, rng, right_hand, args.repeats))


def measure(luminance: np.ndarray, count: int, rng: np.random.Generator, right_hand: np.ndarray, repeats: int) -> str:
    """The table's row for ``count`` seeded random hinted pixels."""
    hinted = np.zeros(luminance.size, dtype=bool)
    hinted[rng.choice(luminance.size, count, replace=False)] = True
    decay = levin.falling_decay(levin.RESIDUAL_DECAY, levin.RESIDUAL_DECAY_FALLOFF, count)
    order = levin.dissection_order(*luminance.shape)
    free, fixed = order[~hinted[order]], np.flatnonzero(hinted)
    system = system_of(luminance, decay)
    own, _ = best(lambda: levin.factorised(system[free][:, free]), repeats)
    whole, grid = best(lambda: levin.levin_grid(luminance, decay), repeats)
    every, _ = best(lambda: levin.LevinGrid(grid.affinity, decay, grid.solve).spread(fixed), repeats)
    made = levin.LevinGrid(grid.affinity, decay, grid.solve)
    made.spread(fixed[:-1])  # the clicks before this one, solved while the person chose it

    def newest_click() -> Callable[[np.ndarray], np.ndarray]:
        ahead = levin.LevinGrid(grid.affinity, decay, grid.solve, columns=dict(made.columns))
        return levin.through_grid(ahead, fixed, free)

    newest, solve_free = best(newest_click, repeats)
    planes, _ = best(lambda: solve_free(right_hand[free]), repeats)
    return (
        f"their own LU {own:5.1f} ms | the grid's LU {whole:5.1f} ms (made ahead), a solve for every hinted pixel "
        f"{every:5.1f} ms, with the others made ahead {newest:4.1f} ms, both planes {planes:4.1f} ms"
    )


if __name__ == "__main__":
    main()
