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


def check_planes(tensor: Tensor, function: str, what: str, channels: int, batched: bool = True) -> None:
    """Fail in one line that names the expected and the given shape (not deep inside an einsum or an index).

    ``tensor`` must be ``(N, channels, H, W)`` when ``batched``, else ``(..., channels, H, W)``; ``what`` names it
    in the message ("Lab", "uint8 RGB"), ``function`` the caller. One image ``(channels, H, W)`` given to a batched
    function is told to add the batch dimension.
    """
    expected = f"({'N' if batched else '...'}, {channels}, H, W)"
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{function} expects {what} as a torch.Tensor {expected}, got {type(tensor).__name__}")
    if (tensor.dim() == 4 if batched else tensor.dim() >= 3) and tensor.shape[-3] == channels:
        return
    one_image = batched and tensor.dim() == 3 and tensor.shape[0] == channels
    fix = f"; for one image ({channels}, H, W) pass image[None]" if one_image else ""
    raise ValueError(f"{function} expects {what} of shape {expected}, got {tuple(tensor.shape)}{fix}")


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """rgb: (..., 3, H, W) float in [0, 1] -> Lab (..., 3, H, W): L in [0, 100], ab in about [-110, 110]."""
    check_planes(rgb, "rgb_to_lab", "RGB", 3, batched=False)
    if not rgb.is_floating_point():
        raise TypeError(f"rgb_to_lab expects float RGB in [0, 1], got {rgb.dtype}; use uint8_to_lab for uint8 images")
    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """Lab (..., 3, H, W) -> sRGB (..., 3, H, W) in [0, 1] (out-of-gamut colours clipped unless ``clip=False``)."""
    check_planes(lab, "lab_to_rgb", "Lab", 3, batched=False)
    return kornia.color.lab_to_rgb(lab, clip=clip)


def uint8_to_lab(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """images: (N, 3, H, W) uint8 RGB (any leading dimensions: (..., 3, H, W)), on any device -> Lab of the same
    shape in ``dtype``."""
    check_planes(images, "uint8_to_lab", "uint8 RGB", 3, batched=False)
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
    ~1e-4) about five times faster: L depends only on Y, a sum of three 256-entry table lookups."""
    check_planes(images, "uint8_to_lightness", "uint8 RGB", 3)
    if images.dtype != torch.uint8:
        raise TypeError(f"uint8_to_lightness expects uint8 images, got {images.dtype}")
    table, index = _LUMINANCE.to(images.device), images.int()
    y = sum(
        (table[c].index_select(0, index[:, c].flatten()) for c in range(1, 3)),
        table[0].index_select(0, index[:, 0].flatten()),
    )
    y = y.view(images.shape[0], 1, *images.shape[2:])
    threshold = 0.008856  # CIE: cube root above, linear below (kornia's constants)
    return torch.where(
        y > threshold, y.clamp(min=threshold).pow_(1 / 3).mul_(116).sub_(16), y.mul(116 * 7.787).add_(116 * 4 / 29 - 16)
    )


# kornia's Lab -> linear sRGB, D65 white folded in: linear RGB = _XYZ_TO_RGB @ (white * f^-1(fx, fy, fz)).
_XYZ_TO_RGB = torch.tensor(
    [
        [3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
        [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
        [0.0556466391351772, -0.2040413383665112, 1.0573110696453443],
    ],
    dtype=torch.float64,
) * torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_GAMMA_STEPS = 1 << 16
_KNEE = 6 / 29  # where CIE's f^-1 turns from a line into a cube


def _gamma_table() -> Tensor:
    """Linear light in [0, 1] at 2^16 steps -> its rounded 8-bit sRGB level (the sRGB transfer curve)."""
    linear = torch.linspace(0, 1, _GAMMA_STEPS, dtype=torch.float64)
    srgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return (srgb * 255).round().to(torch.uint8)


_GAMMA = _gamma_table()


def lab_to_uint8(lab: Tensor) -> Tensor:
    """Lab (N, 3, H, W) -> (N, 3, H, W) uint8 RGB: ``round(255 * lab_to_rgb(lab))`` to within one level
    (rarely: where the two round differently), about 1.5x faster. Colourising a photo spends most of its
    merge here; the sRGB curve's power is a 2^16-entry table lookup instead."""
    check_planes(lab, "lab_to_uint8", "Lab", 3)
    return lightness_ab_to_uint8(lab[:, :1], lab[:, 1:])


def lightness_ab_to_uint8(lightness: Tensor, ab: Tensor) -> Tensor:
    """L (N, 1, H, W) and ab (N, 2, H, W) -> uint8 RGB (N, 3, H, W), the same bits as ``lab_to_uint8`` of their
    concatenation without making it: the merge's stripes come as the photo's L and the upsampled ab."""
    fy = lightness.add(16).div_(116)
    f = torch.empty((ab.shape[0], 3, *ab.shape[2:]), dtype=fy.dtype, device=fy.device)
    torch.add(fy, ab[:, :1] / 500, out=f[:, :1])
    f[:, 1:2] = fy
    torch.sub(fy, ab[:, 1:] / 200, out=f[:, 2:]).clamp_(min=0)
    # CIE's inverse: f^3 above 6/29, below it the line (f - 16/116) / 7.787, which is the cube's tangent there. Written
    # as the cube at max(f, 6/29) plus the line's rise from min(f, 6/29): f^3 itself above, no mask (torch.where
    # and its comparison took a third of this function's time).
    xyz = f.clamp(min=_KNEE).pow_(3).add_(f.clamp_(max=_KNEE).sub_(_KNEE).div_(7.787))
    # (3, 3) @ (N, 3, H * W): laid out as the result (einsum's permuted output cost a copy of every plane)
    linear = torch.matmul(_XYZ_TO_RGB.to(xyz), xyz.flatten(2)).clamp_(0, 1)
    index = linear.mul_(_GAMMA_STEPS - 1).add_(0.5).int()  # int32 indexes about twice as fast as int64 here
    return _GAMMA.to(fy.device).index_select(0, index.flatten()).view(f.shape)


def is_grayscale(ab: Tensor, threshold: float = GRAYSCALE_AB_THRESHOLD) -> Tensor:
    """ab: (N, 2, H, W) -> (N,) bool, True where no pixel has chroma |ab| > threshold (Zhang's rule)."""
    check_planes(ab, "is_grayscale", "ab", 2)
    chroma = torch.linalg.vector_norm(ab, dim=1)
    return chroma.flatten(1).amax(dim=1) <= threshold
