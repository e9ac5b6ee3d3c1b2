"""sRGB (D65) <-> CIE Lab on batched tensors, through kornia.

Measured against scikit-image (tests/color/test_lab.py): kornia's conversion agrees with
``skimage.color.rgb2lab``/``lab2rgb`` to ~1e-4 in float32 and ~1e-13 in float64, so we use it rather
than keep our own.
"""

from __future__ import annotations

import kornia.color
import torch
from torch import Tensor

# Zhang et al. 2016: an image counts as grayscale when no pixel has |ab| above 5 Lab units.
GRAYSCALE_AB_THRESHOLD = 5.0


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """rgb: (..., 3, H, W) float in [0, 1] -> Lab (..., 3, H, W): L in [0, 100], ab in about [-110, 110]."""
    if not rgb.is_floating_point():
        raise TypeError(f"rgb_to_lab expects float RGB in [0, 1], got {rgb.dtype}; use uint8_to_lab for uint8 images")
    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """Lab (..., 3, H, W) -> sRGB (..., 3, H, W) in [0, 1] (out-of-gamut colours clipped unless ``clip=False``)."""
    return kornia.color.lab_to_rgb(lab, clip=clip)


def uint8_to_lab(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """images: (N, 3, H, W) uint8 RGB, on any device -> Lab (N, 3, H, W) in ``dtype``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"uint8_to_lab expects uint8 images, got {images.dtype}")
    return rgb_to_lab(images.to(dtype) / 255.0)


def _luminance_tables() -> Tensor:
    """(3, 256): each sRGB level's linear value times its weight in Y (kornia's sRGB -> XYZ row)."""
    level = torch.arange(256, dtype=torch.float64) / 255
    linear = torch.where(level > 0.04045, ((level + 0.055) / 1.055) ** 2.4, level / 12.92)
    return (torch.tensor([0.212671, 0.715160, 0.072169], dtype=torch.float64)[:, None] * linear).float()


_LUMINANCE = _luminance_tables()


def uint8_to_lightness(images: Tensor) -> Tensor:
    """images: (N, 3, H, W) uint8 RGB -> L (N, 1, H, W) float32, as ``uint8_to_lab(images)[:, :1]`` (to
    ~1e-4) about three times faster: L depends only on Y, a sum of three 256-entry table lookups."""
    if images.dtype != torch.uint8:
        raise TypeError(f"uint8_to_lightness expects uint8 images, got {images.dtype}")
    table, index = _LUMINANCE.to(images.device), images.long()
    y = table[0][index[:, 0]] + table[1][index[:, 1]] + table[2][index[:, 2]]
    threshold = 0.008856  # CIE: cube root above, linear below (kornia's constants)
    return torch.where(y > threshold, 116 * y.clamp(min=threshold).pow(1 / 3) - 16, 116 * (7.787 * y + 4 / 29) - 16)[:, None]


def lab_to_uint8(lab: Tensor) -> Tensor:
    """Lab (N, 3, H, W) -> (N, 3, H, W) uint8 RGB, rounded."""
    return (lab_to_rgb(lab) * 255.0).round().clamp(0, 255).to(torch.uint8)


def is_grayscale(ab: Tensor, threshold: float = GRAYSCALE_AB_THRESHOLD) -> Tensor:
    """ab: (N, 2, H, W) -> (N,) bool, True where no pixel has chroma |ab| > threshold (Zhang's rule)."""
    chroma = torch.linalg.vector_norm(ab, dim=1)
    return chroma.flatten(1).amax(dim=1) <= threshold
