"""The measures' arithmetic as pure functions on (N, C, H, W) tensors, on any device.

Zhang et al. 2016's AuC: for thresholds t = 0, 1, ..., 150 (Lab units), the fraction of pixels whose ab
error (L2) is at most t; the area under that curve (trapezoid rule), divided by 150, in percent.
Errors are histogrammed by ceil(error) (error <= t exactly when ceil(error) <= t for integer t), so the
curves come out exact from tables of counts. An error within ``TOLERANCE`` above an integer counts as
that integer, so float32 round-off does not cost a perfect prediction its point at t = 0.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio

from polychrome.color import lab_to_uint8, uint8_to_lab

MAX_THRESHOLD = 150
TOLERANCE = 1e-3  # Lab units


def threshold_steps(error: Tensor, max_threshold: int) -> Tensor:
    return torch.ceil(error.flatten() - TOLERANCE).clamp(min=0, max=max_threshold + 1).long()


def error_histogram(error: Tensor, max_threshold: int = MAX_THRESHOLD) -> Tensor:
    """Counts of ceil(error) clipped to max_threshold + 1: (max_threshold + 2,) float64 on error's device, the
    curve's raw material."""
    return torch.bincount(threshold_steps(error, max_threshold), minlength=max_threshold + 2).double()


def curve_from_histogram(counts: Tensor) -> Tensor:
    """Accuracy at t = 0..len-2 (fraction with error <= t) from an error histogram."""
    return counts.cumsum(0)[:-1] / counts.sum()


def area_under(curve: Tensor) -> float:
    """Area under an accuracy curve over t = 0..T (trapezoid rule), divided by T, in percent."""
    return float(torch.trapezoid(curve, dx=1.0)) / (len(curve) - 1) * 100


def colorfulness(rgb: Tensor) -> Tensor:
    """Hasler and Suesstrunk 2003: sigma_rgyb + 0.3 mu_rgyb, with signed rg = R - G, yb = (R + G) / 2 - B.

    rgb: (N, 3, H, W) uint8 (or float in 0..255) -> (N,) float64.
    """
    r, g, b = rgb.double().unbind(dim=1)
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    sigma = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mu = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return sigma + 0.3 * mu


def psnr(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per-image PSNR in dB of uint8 RGB (N, 3, H, W), data range 255; inf for identical images."""
    return peak_signal_noise_ratio(
        predicted.double(), truth.double(), data_range=255.0, reduction="none", dim=(1, 2, 3)
    )


SSIM_WINDOW = 11  # the Gaussian window of sigma 1.5, truncated at 3.5 sigma as scipy's filter is


def ssim(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per-image SSIM of uint8 RGB (N, 3, H, W) with the settings of scikit-image's ``structural_similarity``
    (Wang et al. 2004): Gaussian window of sigma 1.5 over 11 pixels, population covariance, data range 255,
    in float64, averaged over channels and over the pixels whose window lies inside the image. Images under
    11 pixels on a side get NaN.

    On an accelerator, batched by kornia; on a CPU, image by image by scikit-image itself, whose C filter is
    about 25 times faster there than a float64 convolution (0.03 s against 0.9 s a BSDS500 photo, measured
    side by side; kornia's was most of evaluate's time). Both give the same numbers to 1e-15."""
    if min(predicted.shape[-2:]) < SSIM_WINDOW:
        return torch.full((len(predicted),), float("nan"), dtype=torch.float64, device=predicted.device)
    if predicted.device.type == "cpu":
        return ssim_scikit_image(predicted, truth)
    return ssim_kornia(predicted, truth)


def ssim_kornia(predicted: Tensor, truth: Tensor) -> Tensor:
    """``ssim`` batched on the tensors' device by kornia (valid padding: only windows inside the image)."""
    from kornia.metrics import ssim as ssim_map

    return ssim_map(predicted.double(), truth.double(), SSIM_WINDOW, max_val=255.0, padding="valid").mean(dim=(1, 2, 3))


def ssim_scikit_image(predicted: Tensor, truth: Tensor) -> Tensor:
    """``ssim`` image by image by scikit-image's ``structural_similarity`` (CPU tensors)."""
    from skimage.metrics import structural_similarity

    scores = [
        structural_similarity(
            p.permute(1, 2, 0).numpy(),
            t.permute(1, 2, 0).numpy(),
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        for p, t in zip(predicted.cpu(), truth.cpu(), strict=True)
    ]
    return torch.tensor(scores, dtype=torch.float64)


def as_gray(images: Tensor) -> Tensor:
    """The photos' own L with no colour: uint8 RGB (..., 3, H, W) -> uint8 RGB of the same shape."""
    lab = uint8_to_lab(images.reshape(-1, *images.shape[-3:]))
    return lab_to_uint8(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1)).reshape(images.shape)


def nazeri_correct(predicted_lab: Tensor, truth_lab: Tensor) -> Tensor:
    """Nazeri et al. 2018's per-pixel accuracy: |dL| <= 2 and |da|, |db| <= 4.4 -> (N, H, W) bool
    (their 2% of the L range and of the ab range)."""
    difference = (predicted_lab - truth_lab).abs()
    return (difference[:, 0] <= 2.0) & (difference[:, 1] <= 4.4) & (difference[:, 2] <= 4.4)


FALSE_COLOR_MARGIN = 20.0


def false_color(predicted_ab: Tensor, true_ab: Tensor, margin: float = FALSE_COLOR_MARGIN) -> Tensor:
    """Pixels whose predicted colour is at least ``margin`` ab units further from the truth than gray
    (ab = 0) is: colour that leaves the photo worse than no colour at all, as a blotch of the wrong hue
    or a cast over a neutral or differently coloured surface does. AuC and mean error average such pixels
    away against the many a plausible colour gets right. (N, 2, H, W) -> (N, H, W) bool."""
    error = torch.linalg.vector_norm(predicted_ab - true_ab, dim=1)
    return error - torch.linalg.vector_norm(true_ab, dim=1) >= margin


def prediction_spread(predicted_ab: Tensor) -> Tensor:
    """The largest difference between the predictions for a stack of images (N, 2, H, W), in ab units:
    0 when the model paints the same pattern on every image, i.e. ignores its input."""
    return (predicted_ab - predicted_ab[:1]).abs().amax()


def segment_median_errors(error: Tensor, segments: Tensor) -> Tensor:
    """For each segment, the error a majority of its pixels are within: the (n // 2)-th smallest.

    A segment counts as correct at threshold t when more than half its pixels have error <= t, which is
    exactly when this value is <= t. error, segments: (H, W) -> (S,), one value per segment present.
    """
    labels = segments.flatten().long()
    errors = error.flatten().double()
    order = torch.argsort(labels * (errors.max() + 1) + errors) if len(errors) else labels
    labels, errors = labels[order], errors[order]
    _, counts = torch.unique_consecutive(labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    return errors[starts + counts // 2]
