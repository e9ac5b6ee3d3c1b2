"""The empirical colour prior of a dataset and Zhang et al.'s class-rebalancing weights.

Zhang et al. 2016, section 2.2: the prior p is the empirical distribution of ab bins over the training
pixels, smoothed with a Gaussian (sigma 5) on the ab plane, mixed with a uniform distribution
(lambda = 1/2), and each pixel's loss is weighted by w proportional to ((1-lambda) p~ + lambda/Q)^-1,
normalised so that E_{p~}[w] = 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from polychrome.color.bins import encode_hard
from polychrome.color.lab import is_grayscale, uint8_to_lab


@dataclass
class BinCounts:
    """Pixel counts per bin over the colour images of a dataset, and how many images were seen."""

    counts: Tensor  # (Q,) float64
    images: int
    grayscale: int


def accumulate_bin_counts(batches: Iterable, bins: Tensor, device: torch.device | str = "cpu") -> BinCounts:
    """Stream uint8 RGB batches (N, 3, H, W), or (images, labels) pairs, into per-bin pixel counts.

    Grayscale images (Zhang's rule) are counted but left out of the histogram, as they are left out of
    training losses. Conversion to Lab happens on ``device``.
    """
    bins = bins.to(device)
    counts = torch.zeros(len(bins), dtype=torch.float64, device=device)
    images = grayscale = 0
    for batch in batches:
        rgb = batch[0] if isinstance(batch, (tuple, list)) else batch
        ab = uint8_to_lab(rgb.to(device))[:, 1:]
        gray = is_grayscale(ab)
        images += len(ab)
        grayscale += int(gray.sum())
        if (~gray).any():
            index = encode_hard(ab[~gray], bins)
            counts += torch.bincount(index.flatten(), minlength=len(bins)).to(counts)
    return BinCounts(counts.cpu(), images, grayscale)


def smooth_prior(counts: Tensor, bins: Tensor, sigma: float = 5.0) -> Tensor:
    """Normalise counts (Q,) to a distribution and smooth it with a Gaussian of ``sigma`` on the ab plane.

    Each bin spreads its mass over the gamut's bins with Gaussian weights that sum to one, so no mass
    leaks out of the gamut at its edges. Returns p~ (Q,), float64, summing to 1.
    """
    if counts.dim() != 1 or bins.dim() != 2 or bins.shape[1] != 2 or len(counts) != len(bins):
        raise ValueError(
            f"smooth_prior expects counts (Q,) and bins (Q, 2) of the same Q, got {tuple(counts.shape)} and "
            f"{tuple(bins.shape)}"
        )
    if counts.sum() <= 0:
        raise ValueError("cannot smooth an empty histogram: no colour pixels were counted")
    p = counts.to(torch.float64) / counts.sum()
    if sigma == 0:
        return p
    centres = bins.to(torch.float64)
    kernel = torch.exp(-(torch.cdist(centres, centres) ** 2) / (2 * sigma**2))  # kernel[i, j]: j spreads to i
    kernel = kernel / kernel.sum(dim=0, keepdim=True)
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def rebalancing_weights(prior: Tensor, mix: float = 0.5) -> Tensor:
    """Class-rebalancing weights w (Q,): w ~ 1 / ((1 - mix) p~ + mix / Q), scaled so sum(p~ w) = 1."""
    if prior.dim() != 1:
        raise ValueError(f"rebalancing_weights expects a prior of shape (Q,), got {tuple(prior.shape)}")
    if not 0 <= mix <= 1:
        raise ValueError(f"the uniform mix lambda must be in [0, 1], got {mix}")
    if mix == 0 and (prior <= 0).any():
        raise ValueError("with lambda = 0 every bin needs a positive prior; smooth it or mix in uniform")
    weights = 1.0 / ((1 - mix) * prior + mix / len(prior))
    return weights / (prior * weights).sum()
