"""Levin, Lischinski & Weiss 2004, "Colorization using Optimization": the baseline every guided method is measured against.

The paper's premise: neighbouring pixels with similar intensity should have similar colour. For each pixel r and its
neighbours s in a (2 * window + 1)^2 window it defines an affinity (its equation 2)

    w_rs ∝ exp(-(Y(r) - Y(s))^2 / (2 sigma_r^2)),   sum_s w_rs = 1,

with sigma_r^2 the variance of Y in the window around r (times 0.3, as in the authors' code: see VARIANCE_SCALE),
floored at VARIANCE_FLOOR, and asks each chroma plane U (here a and b of CIE Lab, Y is
L) to be the weighted average of its neighbours (equation 1):

    J(U) = sum_r (U(r) - sum_s w_rs U(s))^2,   U(r) = hint(r) where the user scribbled.

As in the authors' released code (getColorExact.m), that is the square sparse system (I - W) U = 0 on the unhinted
rows and U = hint on the hinted ones; substituting the hints leaves A_ff U_f = W_fh U_h on the unhinted pixels f,
one matrix for both a and b. A_ff is an irreducibly diagonally dominant M-matrix (every weight is positive and the
grid is connected), so the solve is well posed as soon as one pixel is hinted.

Everything here is numpy/scipy on the CPU in float64; the tensors that come in may live on any device and the
result goes back to the input's device as float32.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import splu
from torch import Tensor

if TYPE_CHECKING:
    from polychrome.hints import LocalHint

# The public names, as the README's "What works today" table lists them.
__all__ = ["levin_colorize", "levin_colorize_photo", "propagate_residual"]

Solver = Literal["splu", "pyamg"]
SOLVERS: tuple[str, ...] = ("splu", "pyamg")

# sigma_r^2 = VARIANCE_SCALE * (variance of L in the window). The paper's text reads as 1; the authors' released
# getColorExact.m divides by csig = 0.6 * variance = 2 sigma^2, i.e. 0.3. Measured (tests/test_levin.py): with 1, two
# flat regions 60 L apart, one hint each, end up 15-20 ab units from their hints (at the edge sigma_r is large, since
# the edge itself is in the window, so a cross-edge weight is still exp(-2.25) = 0.1); with 0.3 within 4.
VARIANCE_SCALE = 0.3
# Lower bound of sigma_r^2 in L units squared, so a flat window (variance 0) gives equal weights instead of 0/0.
# 0.01 L^2 is 1e-6 for Y in [0, 1], the floor of the authors' getColorExact.m (csig >= 2e-6 = 2 sigma^2).
VARIANCE_FLOOR = 0.01
# Relative residual at which pyamg's iterations stop. Measured on a 0.25-megapixel photo with 100 hints: ab within
# 7e-6 of the LU solution, the float32 rounding of ab near 100 (7.6e-6).
PYAMG_TOLERANCE = 1e-8
# How strongly propagate_residual pulls the colours back to the prediction away from the hints (a screening term:
# a correction fades over about 1 / sqrt(RESIDUAL_DECAY) pixels in a flat region, and stops at edges of L, where
# Levin's affinity is weak and the pull wins); the default of ModelCard.hint_decay. 0 is Levin's method: one hint's
# colour everywhere until other hints anchor other regions. 0 was first chosen by PSNR under Zhang 2017's random
# hints, which fall all over the photo (15 BSDS500 val photos, prior weight 1, `python
# experiments/guided_residual_levin.py --limit 15 --counts 1,2,5,10,20 --decays 0,0.0003,0.001,0.003,0.01`: 10
# hints +0.66 dB over the network with 0, +0.34 with 3e-4). But a person clicks where the colour is most wrong, and
# with 0 a first click tinted the whole photo. Chosen with RESIDUAL_DECAY_FALLOFF by the simulated person on the first
# 40 BSDS500 val photos (`python experiments/guided_correction.py --limit 40 --clicks 10 --candidates ...`, the 17
# candidates and the rule in docs/guided.md "Keeping a click in its region"): the highest mean PSNR over clicks 1-5
# among those whose harm over clicks 1-3 is at most 0.9 x the network alone's, whose PSNR with 10 random hints is
# within 0.5 dB of decay 0's, and whose PSNR after 1, 3 and 10 clicks is 0.1 dB above both the network alone's and
# decay 0's.
RESIDUAL_DECAY = 1e-3
# How the decay falls as hints accumulate: propagate_residual divides it by (the number of hinted regions) **
# RESIDUAL_DECAY_FALLOFF; the default of ModelCard.hint_decay_falloff. A first click alone must stay in its region (a
# strong pull: 1e-3, about 30 pixels of the network's 128), but once clicks anchor the photo's regions Levin's
# interpolation between them is the better guess and the pull only holds it back (with ten clicks, a constant 3e-4
# was 0.10 dB behind decay 0 on BSDS500 test); with 2, three clicks are pulled at 1e-4 and ten at 1e-5. 0: the same
# decay at any number of hints.
RESIDUAL_DECAY_FALLOFF = 2.0
# How much of a network's prediction propagate_residual keeps near the hints: the result is PRIOR_WEIGHT x (the
# network + its propagated residual) + (1 - PRIOR_WEIGHT) x Levin's colours from the hints alone (pulled back to the
# network's by RESIDUAL_DECAY away from them); the default of ModelCard.hint_prior_weight. Measured at decay 0 on 40
# BSDS500 val photos with the bundled guided model at 128 px under random hints (`python
# experiments/guided_residual_levin.py --limit 40 --counts 1,5,10,20 --decays "" --prior-weights
# 0,0.25,0.375,0.5,0.75,1`): PSNR at 1/5/10/20 hints is highest between 0.25 and 0.5 and flat there (0.375:
# 25.31/27.13/27.89/28.46 dB; 1: -/26.42/27.06/27.49; 0, Levin's optimisation at the same size:
# 24.72/26.74/27.59/28.36; the network alone 24.46/26.19/26.61/26.90). The network's colours between the hints are a
# prior worth keeping, but not at full weight: Levin's interpolation of true hints beats them as hints grow dense.
# With the simulated person at decay 1e-3 (the run above), 0.5 did no better than 0.375 over clicks 1-5.
PRIOR_WEIGHT = 0.375
# Peak memory of one solve (the affinity, the system, the sparse LU factors and their workspace) per pixel, measured
# with `python benchmarks/levin_memory.py --megapixels 0.25 0.5 1 2 --hints 10` (each size in a fresh process: the rise
# of its peak resident set over the solve): 2,036 / 2,182 / 2,149 / 2,212 bytes at 0.25 / 0.5 / 1 / 2 MP with 10
# hints, 2,403 and 2,416 at 0.5 MP with 100 and 1,000 (more hints, more fill-in). Rounded up to cover them all.
BYTES_PER_PIXEL = 2500
# The largest photo levin_colorize solves unless told otherwise (max_pixels=): about 2.1 MP x BYTES_PER_PIXEL = 5 GB
# and half a minute or more on one core. Levin's method is defined at the photo's own resolution (a solve at a
# smaller working size would blur the edges the hints stop at), so a larger photo is refused, naming this limit,
# rather than shrunk in silence. 2.1 MP admits a 1920x1080 frame and every display render of the guided page (at
# most 1024 px on a side, 1.05 MP).
MAX_PIXELS = 2_100_000
# The most hinted pixels whose system ``levin_system`` solves through the whole grid's factorisation (``LevinGrid``,
# made before the hints are known) and a capacitance system of this many unknowns, instead of factorising the
# unhinted pixels' own system. Each hinted pixel costs one solve with the grid's factors (about 1.7 ms at 128 x
# 128, the guided model's size, against 54-84 ms for the unhinted pixels' LU on a loaded 2-core machine;
# `python benchmarks/levin_capacitance.py`), which the guided page makes ahead for the pixels already hinted
# (``LevinGrid.spread``), so a click costs one solve at any count up to this. A click is one pixel at the
# network's size: 64 covers a person's clicks; a long stroke takes the LU. Alone (the command line, evaluation)
# 64 pixels cost about 110 ms of solves against the LU's 70. Both give the same solution to float64 rounding
# (tests/test_levin.py), but not the same bits, so which one is used depends on the hints alone, never on who asks.
CAPACITANCE_PIXELS = 64


class LevinTooLarge(ValueError):
    """A photo above ``levin_colorize``'s ``max_pixels``: its sparse solve would need about ``BYTES_PER_PIXEL`` per
    pixel. The message names the photo's pixels, the limit and what to do."""

    def __init__(self, height: int, width: int, limit: int):
        self.height, self.width, self.limit = height, width, limit
        pixels = height * width
        scale = (limit / pixels) ** 0.5
        super().__init__(
            f"Levin's optimisation is limited to {limit:,} pixels ({limit / 1e6:g} megapixels, about "
            f"{gigabytes(limit)} of memory), and this photo is {width}x{height} = {pixels:,} pixels (it would need "
            f"about {gigabytes(pixels)}); resize it to at most {limit / 1e6:g} megapixels (e.g. "
            f"{int(width * scale)}x{int(height * scale)}), or use a network that takes hints at any size (the guided model)"
        )


def gigabytes(pixels: int) -> str:
    """The memory a solve over ``pixels`` pixels needs, in words (``BYTES_PER_PIXEL`` each)."""
    return f"{pixels * BYTES_PER_PIXEL / 1e9:.1f} GB"


def levin_colorize(
    lightness: Tensor,
    hint_ab: Tensor,
    hint_mask: Tensor,
    window: int = 1,
    variance_scale: float = VARIANCE_SCALE,
    variance_floor: float = VARIANCE_FLOOR,
    solver: Solver = "splu",
    decay: float = 0.0,
    max_pixels: int | None = MAX_PIXELS,
    toward: Tensor | None = None,
) -> Tensor:
    """Propagate sparse ab hints over a photo along its luminance (Levin et al. 2004, equations 1-2).

    Args:
        lightness: (H, W) or (1, H, W), L in [0, 100]; the photo at the resolution the colours are wanted.
        hint_ab: (2, H, W), a and b in Lab units (about [-110, 110]); read only where ``hint_mask`` is true.
        hint_mask: (H, W) bool, true at hinted pixels.
        window: neighbourhood radius; the paper's 3x3 window is ``window=1``.
        variance_scale: sigma_r^2 = variance_scale * the window's variance of L (see ``VARIANCE_SCALE``: 0.3 as in the
            authors' code, 1 as the paper's text reads).
        variance_floor: lower bound of sigma_r^2 in L^2 units (see ``VARIANCE_FLOOR``).
        solver: ``"splu"`` (one sparse LU factorisation, both planes solved from it; exact to float64 rounding) or
            ``"pyamg"`` (one algebraic multigrid hierarchy, both planes iterated to ``PYAMG_TOLERANCE``; optional,
            ``pip install pyamg``). benchmarks/levin.py compares their speed (docs/levin.md).
        decay: a pull of every unhinted pixel towards 0 (the system becomes (1 + decay) U - W U = 0 there), so a
            colour fades with distance from its hint, over about 1 / sqrt(decay) pixels in a flat region, instead
            of filling everything up to the next hint. 0 (the paper's) for colours; ``propagate_residual`` uses it
            for corrections, which should stay near where they were asked for.
        max_pixels: the largest H * W solved (see ``MAX_PIXELS``: about ``BYTES_PER_PIXEL`` of memory each); a
            larger photo raises ``LevinTooLarge`` (a ValueError) naming the limit, its pixels and what to do. None:
            no limit. A photo without hints needs no solve and is never refused.
        toward: (2, H, W) or None: what ``decay`` pulls the unhinted pixels towards instead of 0 (the system
            becomes (1 + decay) U - W U = decay x toward there); ``propagate_residual`` pulls towards a prediction.

    Returns:
        ab: (2, H, W) float32 on the input's device; equal to ``hint_ab`` at hinted pixels, zeros (the gray
        photo) when no pixel is hinted.
    """
    luminance = _check_inputs(lightness, hint_ab, hint_mask, window, solver)
    _check_decay(decay, toward, hint_ab)
    height, width = luminance.shape
    device = lightness.device
    if not bool(hint_mask.any()):
        return torch.zeros(2, height, width, dtype=torch.float32, device=device)
    hinted = hint_mask.detach().cpu().numpy().reshape(-1)
    if not hinted.all() and max_pixels is not None and height * width > max_pixels:
        raise LevinTooLarge(height, width, max_pixels)
    system = levin_system(luminance, hinted, decay, window, variance_scale, variance_floor, solver)
    return system.solve(hint_ab, toward).to(device)


@dataclass(frozen=True)
class LevinGrid:
    """The whole grid's system (1 + decay) I - W factorised, hinted pixels included: it depends on the photo's L
    and the decay but on no hint, so the guided page makes it while the person chooses a click
    (``ColorizationPipeline.interactive``); ``levin_system`` then fixes the hinted pixels with a capacitance
    system. Needs decay > 0: at 0, I - W is singular (its rows sum to 0)."""

    affinity: sp.csr_array
    decay: float
    solve: Callable[[np.ndarray], np.ndarray]  # (H * W, k) right-hand sides in the pixels' own order -> solutions
    columns: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)  # see spread

    def spread(self, pixels: np.ndarray) -> np.ndarray:
        """(H * W, len(pixels)): column j is the system's solution for a unit source at pixels[j] (A^-1 E_pixels),
        each solved alone, so that the same pixel gives the same bits whoever asked first. The columns of these
        pixels are kept for the next call, the others dropped: a person's next click asks for the same pixels and
        one more, and a deleted or moved hint's column would otherwise stay for as long as the grid (a page
        clicked 450 times grew by 300 MB)."""
        wanted = pixels.tolist()
        for pixel in wanted:
            if pixel not in self.columns:
                unit = np.zeros((self.affinity.shape[0], 1))
                unit[pixel] = 1.0
                self.columns[pixel] = self.solve(unit)[:, 0]
        for pixel in set(self.columns) - set(wanted):
            del self.columns[pixel]
        kept = [self.columns[pixel] for pixel in wanted]
        return np.stack(kept, axis=1) if kept else np.zeros((self.affinity.shape[0], 0))


def screened_system(affinity: sp.csr_array, decay: float) -> sp.csr_array:
    """(1 + decay) I - W over the whole grid: Levin's system (decay 0) with the pull towards ``toward``."""
    return (1.0 + decay) * sp.eye_array(affinity.shape[0], format="csr") - affinity


def levin_grid(
    luminance: np.ndarray,
    decay: float,
    window: int = 1,
    variance_scale: float = VARIANCE_SCALE,
    variance_floor: float = VARIANCE_FLOOR,
) -> LevinGrid:
    """``LevinGrid`` of ``luminance`` (H, W) float64, factorised in ``dissection_order``."""
    if decay <= 0:
        raise ValueError(f"a whole grid's system needs decay > 0 (I - W is singular), got {decay}")
    height, width = luminance.shape
    affinity = levin_affinity(luminance, window, variance_scale, variance_floor)
    order = dissection_order(height, width, window)
    system = screened_system(affinity, decay)
    solve_ordered = factorised(system[order][:, order])

    def solve(rhs: np.ndarray) -> np.ndarray:
        solution = np.empty_like(rhs)
        solution[order] = solve_ordered(rhs[order])
        return solution

    return LevinGrid(affinity, decay, solve)


def through_grid(grid: LevinGrid, fixed: np.ndarray, free: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Solves A_ff x = rhs on the ``free`` pixels, A the grid's system and ``fixed`` the rest, by the capacitance
    (Woodbury) method, one grid solve a fixed pixel: with y = A^-1 [rhs; 0] and Z = A^-1 E_fixed,
    x = y_f - Z_f (Z_fixed)^-1 y_fixed, which makes the fixed pixels 0 so that the free rows read A_ff x = rhs.
    Z_fixed is (A^-1)'s block at the fixed pixels, the inverse of A's Schur complement there: never singular."""
    pixels = grid.affinity.shape[0]
    spread = grid.spread(fixed)
    capacitance = scipy.linalg.lu_factor(spread[fixed])
    spread_free = spread[free]

    def solve_free(rhs: np.ndarray) -> np.ndarray:
        padded = np.zeros((pixels, rhs.shape[1]))
        padded[free] = rhs
        whole = grid.solve(padded)
        return whole[free] - spread_free @ scipy.linalg.lu_solve(capacitance, whole[fixed])

    return solve_free


def through_the_grid(hinted: np.ndarray, decay: float, solver: Solver = "splu") -> bool:
    """Whether ``levin_system`` solves these hints through the whole grid's factorisation (``CAPACITANCE_PIXELS``)."""
    return solver == "splu" and decay > 0 and 0 < int(hinted.sum()) <= CAPACITANCE_PIXELS


@dataclass(frozen=True)
class LevinSystem:
    """What Levin's optimisation needs besides the hints' colours: the affinity of a photo's L, which pixels are
    hinted, the decay, and the system of the unhinted pixels factorised. The factorisation is most of the work and
    depends on none of the colours, so ``ColorizationPipeline`` makes it on another core while its network runs
    (``levin_systems``) and ``solve``s once the prediction is known; scipy's LU releases the GIL."""

    shape: tuple[int, int]
    affinity: sp.csr_array
    hinted: np.ndarray  # (H * W,) bool
    free: np.ndarray  # the unhinted pixels (flat indices) in the order the system was factorised
    decay: float
    solve_free: Callable[[np.ndarray], np.ndarray]  # (unhinted, k) right-hand sides, in free's order -> solutions

    def solve(self, hint_ab: Tensor, toward: Tensor | None = None) -> Tensor:
        """ab (2, H, W) float32 on the CPU: ``hint_ab`` (2, H, W) at the hinted pixels, the solution elsewhere,
        pulled by the decay towards ``toward`` (2, H, W) or 0."""
        hints = hint_ab.detach().cpu().to(torch.float64).numpy().reshape(2, -1)
        ab = np.where(self.hinted, hints, 0.0)
        free, fixed = self.free, np.flatnonzero(self.hinted)
        if free.size:
            rhs = self.affinity[free][:, fixed] @ hints[:, fixed].T
            if toward is not None and self.decay:
                rhs += self.decay * toward.detach().cpu().to(torch.float64).numpy().reshape(2, -1)[:, free].T
            ab[:, free] = self.solve_free(rhs).T
        return torch.from_numpy(ab.reshape(2, *self.shape)).float()


def levin_system(
    luminance: np.ndarray,
    hinted: np.ndarray,
    decay: float = 0.0,
    window: int = 1,
    variance_scale: float = VARIANCE_SCALE,
    variance_floor: float = VARIANCE_FLOOR,
    solver: Solver = "splu",
    grid: LevinGrid | None = None,
) -> LevinSystem:
    """The affinity of ``luminance`` (H, W) float64 and the factorised system (1 + decay) I - W of the pixels
    ``hinted`` (H * W,) bool leaves free (``levin_colorize``'s arguments): through the whole grid's factors
    (``grid``, made here unless given) for a few hinted pixels (``through_the_grid``), else their own LU."""
    height, width = luminance.shape
    order = dissection_order(height, width, window)
    free = order[~hinted[order]]
    if through_the_grid(hinted, decay, solver):
        grid = grid or levin_grid(luminance, decay, window, variance_scale, variance_floor)
        return LevinSystem(
            (height, width), grid.affinity, hinted, free, decay, through_grid(grid, np.flatnonzero(hinted), free)
        )
    affinity = levin_affinity(luminance, window, variance_scale, variance_floor)
    solve_free: Callable[[np.ndarray], np.ndarray] = lambda rhs: rhs  # noqa: E731  (nothing is free)
    if free.size:
        solve_free = factorised(screened_system(affinity, decay)[free][:, free], solver)
    return LevinSystem((height, width), affinity, hinted, free, decay, solve_free)


@functools.lru_cache(maxsize=4)
def dissection_order(height: int, width: int, reach: int = 1, leaf: int = 4) -> np.ndarray:
    """The pixels of an (height, width) grid (row-major flat indices) in nested-dissection order (George 1973,
    "Nested dissection of a regular finite element mesh"): the two halves of the grid, each in this order, then
    the ``reach`` rows or columns that separate them, down to blocks of about ``leaf`` x ``leaf`` pixels. Levin's
    affinity couples a pixel to those within ``reach`` (its window) only, so eliminating each half first leaves
    the fill-in inside the halves and the separators; with a 3 x 3 window the LU of the system then fills in
    about 10% less than SuperLU's minimum-degree order and is made about twice as fast (``factorised``).
    Read-only, cached by shape (the guided page's every click is at the network's 128 x 128)."""
    blocks: list[np.ndarray] = []

    def dissect(top: int, bottom: int, left: int, right: int) -> None:
        rows, columns = bottom - top, right - left
        if rows <= 0 or columns <= 0:
            return
        if rows * columns <= leaf * leaf or min(rows, columns) <= 2 * reach + 1:
            blocks.append((np.arange(top, bottom)[:, None] * width + np.arange(left, right)).ravel())
        elif rows >= columns:
            middle = (top + bottom - reach) // 2
            dissect(top, middle, left, right)
            dissect(middle + reach, bottom, left, right)
            blocks.append((np.arange(middle, middle + reach)[:, None] * width + np.arange(left, right)).ravel())
        else:
            middle = (left + right - reach) // 2
            dissect(top, bottom, left, middle)
            dissect(top, bottom, middle + reach, right)
            blocks.append((np.arange(top, bottom)[:, None] * width + np.arange(middle, middle + reach)).ravel())

    dissect(0, height, 0, width)
    order = np.concatenate(blocks)
    order.flags.writeable = False
    return order


def _check_decay(decay: float, toward: Tensor | None = None, hint_ab: Tensor | None = None) -> None:
    if decay < 0:
        raise ValueError(f"decay must be >= 0, got {decay}")
    if toward is not None and hint_ab is not None and toward.shape != hint_ab.shape:
        raise ValueError(f"toward must be (2, H, W) like hint_ab, {tuple(hint_ab.shape)}, got {tuple(toward.shape)}")


def levin_affinity(
    luminance: np.ndarray,
    window: int = 1,
    variance_scale: float = VARIANCE_SCALE,
    variance_floor: float = VARIANCE_FLOOR,
) -> sp.csr_array:
    """Levin et al.'s normalised affinity W (equation 2) as an (H*W, H*W) sparse matrix, rows summing to 1.

    Args:
        luminance: (H, W) float64, L in [0, 100].
        window: neighbourhood radius; each pixel has up to (2 * window + 1)^2 - 1 neighbours (fewer at the border).
        variance_scale: sigma_r^2 = variance_scale * the window's variance (see ``VARIANCE_SCALE``).
        variance_floor: lower bound of sigma_r^2 (L^2 units).

    Built a neighbour offset at a time on whole planes, never a pixel at a time: row r = i * W + j holds the weights
    of its in-image neighbours, and sigma_r^2 is the variance over the window centred on r (r included, clipped
    at the border).
    """
    height, width = luminance.shape
    offsets = [(dy, dx) for dy in range(-window, window + 1) for dx in range(-window, window + 1) if dy or dx]
    padded = np.pad(luminance, window, constant_values=np.nan)
    neighbours = np.stack(
        [padded[window + dy : window + dy + height, window + dx : window + dx + width] for dy, dx in offsets]
    )
    inside = ~np.isnan(neighbours)
    count = inside.sum(axis=0) + 1
    mean = (luminance + np.nansum(neighbours, axis=0)) / count
    variance = (luminance**2 + np.nansum(neighbours**2, axis=0)) / count - mean**2
    variance = np.maximum(variance_scale * variance, variance_floor)
    weights = np.where(inside, np.exp(-((neighbours - luminance) ** 2) / (2 * variance)), 0.0)
    weights /= weights.sum(axis=0)
    rows = np.broadcast_to(np.arange(height * width).reshape(height, width), weights.shape)
    columns = rows + np.array([dy * width + dx for dy, dx in offsets]).reshape(-1, 1, 1)
    n = height * width
    return sp.csr_array((weights[inside], (rows[inside], columns[inside])), shape=(n, n))


def factorised(system: sp.csr_array, solver: Solver = "splu") -> Callable[[np.ndarray], np.ndarray]:
    """A function solving ``system @ x = rhs`` for every column of rhs (n, k), from one factorisation or
    multigrid hierarchy made here.

    The system (I - W restricted to the unhinted pixels) is not symmetric, since sigma_r differs between r and s:
    LU needs no symmetry. Each row of the system is 1 on the diagonal and minus weights summing to at most 1 off it, so
    its transpose is column diagonally dominant, where partial pivoting would pick the diagonal anyway (Golub & Van
    Loan, Matrix Computations, on diagonally dominant systems): the transpose is factorised with diagonal pivots in
    the order its rows come in, ``dissection_order``'s. Measured on a 0.25-megapixel photo, a minimum-degree order
    with partial pivoting took 3.5x and 80x longer (10 and 100 hints) than with diagonal pivots, for twice and four
    times the fill-in; scipy's default COLAMD order doubled the fill again; nested dissection factorised 1.7x faster
    than SuperLU's minimum degree on A^T + A (benchmarks/levin_order.py). pyamg's classical (Ruge-Stuben) AMG is
    built for M-matrices like this one, with GMRES as the outer iteration.
    """
    if solver == "splu":
        factors = splu(
            sp.csc_matrix(system.T), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        return lambda rhs: np.asarray(factors.solve(rhs, trans="T"))
    if not pyamg_available():
        raise ImportError("levin_colorize(solver='pyamg') needs pyamg: `pip install pyamg`, or use solver='splu'")
    import pyamg

    hierarchy = pyamg.ruge_stuben_solver(sp.csr_matrix(system))
    return lambda rhs: np.stack(
        [hierarchy.solve(rhs[:, k], tol=PYAMG_TOLERANCE, accel="gmres", maxiter=200) for k in range(rhs.shape[1])],
        axis=1,
    )


def pyamg_available() -> bool:
    """True when the optional multigrid solver (``pip install pyamg``) can be imported."""
    return importlib.util.find_spec("pyamg") is not None


def _check_inputs(lightness: Tensor, hint_ab: Tensor, hint_mask: Tensor, window: int, solver: str) -> np.ndarray:
    """Validate shapes and types; return L as an (H, W) float64 array."""
    if lightness.dim() == 3 and lightness.shape[0] == 1:
        lightness = lightness[0]
    if lightness.dim() != 2:
        raise ValueError(
            f"lightness must be (H, W) or (1, H, W) with L in [0, 100], got shape {tuple(lightness.shape)}"
        )
    size = tuple(lightness.shape)
    if tuple(hint_ab.shape) != (2, *size):
        raise ValueError(
            f"hint_ab must be (2, H, W) = {(2, *size)} (the a and b planes, matching lightness), got shape "
            f"{tuple(hint_ab.shape)}; pass lab[1:] rather than the whole Lab image"
        )
    if tuple(hint_mask.shape) != size:
        raise ValueError(f"hint_mask must be (H, W) = {size} like lightness, got shape {tuple(hint_mask.shape)}")
    if hint_mask.dtype != torch.bool:
        raise TypeError(f"hint_mask must be a bool tensor, got {hint_mask.dtype}; pass e.g. mask > 0")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1 (the paper's 3x3 window is 1), got {window!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    return np.asarray(lightness.detach().cpu().to(torch.float64).numpy())


def levin_colorize_photo(
    image: Tensor, hints: Sequence[LocalHint], solver: Solver = "splu", max_pixels: int | None = MAX_PIXELS
) -> Tensor:
    """A photo colourised from local hints by Levin et al.'s optimisation at its own resolution.

    image: uint8 RGB (3, H, W) (its colour, if any, is ignored: only its L is used); hints: ``LocalHint``s in
    its pixels (``polychrome.hints.parse_hints`` or ``load_hint_file``). Returns uint8 RGB (3, H, W): the
    photo's own L with the propagated ab; no hints give the gray photo. A photo above ``max_pixels`` raises
    ``LevinTooLarge`` (see ``levin_colorize``).
    """
    from polychrome.color import lab_to_uint8, uint8_to_lab
    from polychrome.hints import hint_planes

    if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
        raise ValueError(f"image must be uint8 RGB (3, H, W), got {image.dtype} of shape {tuple(image.shape)}")
    lightness = uint8_to_lab(image[None])[0, :1]
    hint_ab, mask = hint_planes(hints, (image.shape[1], image.shape[2]))
    ab = levin_colorize(lightness, hint_ab, mask[0] > 0, solver=solver, max_pixels=max_pixels)
    return lab_to_uint8(torch.cat([lightness, ab.to(lightness)])[None])[0]


def hinted_regions(known: Tensor) -> int:
    """The number of 8-connected regions of a (H, W) hint mask: what a person placed (a click is one region, a
    stroke one), however many pixels each covers; at least 1."""
    from scipy import ndimage

    return max(1, int(ndimage.label(known.cpu().numpy(), structure=np.ones((3, 3), dtype=bool))[1]))


def falling_decay(decay: float, falloff: float, regions: int) -> float:
    """The decay ``propagate_residual`` uses with ``regions`` hinted regions (``RESIDUAL_DECAY_FALLOFF``)."""
    return decay / regions**falloff if falloff else decay


def _check_residual_shapes(ab: Tensor, hint_ab: Tensor, hint_mask: Tensor) -> None:
    if ab.dim() != 4 or hint_ab.shape != ab.shape or hint_mask.shape != (ab.shape[0], 1, *ab.shape[2:]):
        raise ValueError(
            f"ab and hint_ab must be (N, 2, H, W) and hint_mask (N, 1, H, W) alike, got {tuple(ab.shape)}, "
            f"{tuple(hint_ab.shape)} and {tuple(hint_mask.shape)}"
        )


def levin_systems(
    lightness: Tensor,
    hint_mask: Tensor,
    decay: float = RESIDUAL_DECAY,
    falloff: float = RESIDUAL_DECAY_FALLOFF,
    solver: Solver = "splu",
    grids: Callable[[np.ndarray, float], LevinGrid] | None = None,
) -> list[LevinSystem | None]:
    """For each photo of ``propagate_residual``'s lightness (N, 1, H, W) and hint_mask (N, 1, H, W), the factorised
    system its correction solves (None where nothing is hinted): the work that needs no prediction. ``grids``
    (luminance (H, W) float64, decay) -> its ``LevinGrid``, where they are kept (made ahead); None: made here."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    systems: list[LevinSystem | None] = []
    for plane, mask in zip(lightness, hint_mask, strict=True):
        known = (mask[0] > 0).cpu()
        if not bool(known.any()):
            systems.append(None)
            continue
        pull = falling_decay(decay, falloff, hinted_regions(known))
        _check_decay(pull)
        luminance = plane[0].detach().cpu().to(torch.float64).numpy()
        hinted = known.numpy().reshape(-1)
        grid = grids(luminance, pull) if grids is not None and through_the_grid(hinted, pull, solver) else None
        systems.append(levin_system(luminance, hinted, pull, solver=solver, grid=grid))
    return systems


def propagate_residual(
    lightness: Tensor,
    ab: Tensor,
    hint_ab: Tensor,
    hint_mask: Tensor,
    decay: float = RESIDUAL_DECAY,
    prior_weight: float = PRIOR_WEIGHT,
    solver: Solver = "splu",
    falloff: float = RESIDUAL_DECAY_FALLOFF,
    systems: Sequence[LevinSystem | None] | None = None,
) -> Tensor:
    """A prediction corrected towards its hints by Levin et al.'s optimisation: w * ab + the propagated residual.

    At each hinted pixel the residual (hint minus w times the prediction) is known; ``levin_colorize`` spreads it
    along L like any other hint, and it is added to w times the prediction. Every hint is then kept exactly, as
    Levin keeps it; between the hints the colours mix the prediction (a network's prior where the person said
    nothing) with Levin's edge-aware interpolation of the hints, which a network at a small size lacks. As in
    Levin's method, one hint's correction reaches the whole photo (less across strong edges) until other hints
    anchor other regions, unless ``decay`` pulls the colours back to the prediction away from the hints: the
    unhinted pixels solve (1 + decay) U - W U = w x (ab - W ab) + decay x ab, so a hint's correction fades over
    about 1 / sqrt(decay) pixels in a flat region and stops at edges of L, where Levin's affinity is weak and the
    pull wins. A photo without hints keeps its prediction.

    Args:
        lightness: (N, 1, H, W), L in [0, 100], at the prediction's resolution.
        ab: (N, 2, H, W), the prediction in Lab units.
        hint_ab: (N, 2, H, W), the hints' ab (read where ``hint_mask`` is set).
        hint_mask: (N, 1, H, W), > 0 at hinted pixels (as ``polychrome.hints.hint_planes`` makes it).
        decay: how strongly the colours are pulled back to the prediction ``ab`` away from the hints
            (``levin_colorize``'s ``decay`` with ``toward`` the part of ab that w leaves out; see
            ``RESIDUAL_DECAY``). 0: Levin's method, no pull.
        prior_weight: how much of the prediction is kept, w: the result is w * ab + the propagation of
            (hint - w * ab). Levin's propagation is linear in the hint values, so this is w * (ab + its propagated
            residual) + (1 - w) * Levin's colours from the hints alone: 1 keeps the prediction as the prior, 0
            gives Levin's method (see ``PRIOR_WEIGHT``).
        solver: as for ``levin_colorize``.
        falloff: a photo's decay is ``decay / hinted_regions ** falloff`` (``RESIDUAL_DECAY_FALLOFF``).
        systems: ``levin_systems``' for these arguments, made beforehand (while a network runs); None: here.

    Returns:
        ab (N, 2, H, W) float32 on ab's device.
    """
    _check_residual_shapes(ab, hint_ab, hint_mask)
    corrected = []
    for index, (predicted, hinted) in enumerate(zip(ab.float(), hint_ab.to(ab.device, torch.float32), strict=True)):
        # made one photo at a time unless given: a batch's LU factors all alive at once ran out of memory
        system = (
            systems[index]
            if systems is not None
            else levin_systems(lightness[index : index + 1], hint_mask[index : index + 1], decay, falloff, solver)[0]
        )
        if system is None:  # no hints: nothing to mix the prediction with
            corrected.append(predicted)
            continue
        known = torch.from_numpy(system.hinted.reshape(system.shape)).to(ab.device)
        prior = prior_weight * predicted
        residual = torch.where(known, hinted - prior, torch.zeros_like(predicted))
        leftover = (1.0 - prior_weight) * predicted  # so the pull is towards the prediction itself, not w x it
        corrected.append(prior + system.solve(residual, toward=leftover).to(ab.device))
    return torch.stack(corrected)
