"""Accuracy of predicted colour, accumulated over batches exactly and in bounded memory.

Zhang et al. 2016's AuC: for thresholds t = 0, 1, ..., 150 (Lab units), the fraction of pixels whose ab
error (L2) is at most t; the area under that curve (trapezoid rule), divided by 150, in percent.
``raw`` counts every pixel alike; ``rebalanced`` weights each pixel by 1 / (frequency of its
ground-truth bin in the evaluated set), i.e. averages the curves of the bins present.

Errors are histogrammed by ceil(error) (error <= t exactly when ceil(error) <= t for integer t), per
ground-truth bin, so the curves come out exact from a (Q, 152) table of counts. An error within
``TOLERANCE`` above an integer counts as that integer, so float32 round-off does not cost a perfect
prediction its point at t = 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from polychrome.color import encode_hard

MAX_THRESHOLD = 150
TOLERANCE = 1e-3  # Lab units


def _steps(error: Tensor, max_threshold: int) -> Tensor:
    return torch.ceil(error.flatten() - TOLERANCE).clamp(min=0, max=max_threshold + 1).long()


class AccuracyCurves:
    """Streams (predicted ab, true ab) pairs into per-bin error histograms."""

    def __init__(self, bins: Tensor, max_threshold: int = MAX_THRESHOLD):
        self.bins = bins
        self.max_threshold = max_threshold
        self.counts = torch.zeros(len(bins), max_threshold + 2, dtype=torch.float64)
        self.error_sum = 0.0

    def update(self, predicted_ab: Tensor, true_ab: Tensor) -> None:
        """predicted_ab, true_ab: (N, 2, H, W) in Lab units, same resolution."""
        error = torch.linalg.vector_norm((predicted_ab - true_ab).double(), dim=1)  # (N, H, W)
        self.error_sum += float(error.sum())
        step = _steps(error, self.max_threshold)
        truth = encode_hard(true_ab.float(), self.bins.to(true_ab.device)).flatten()
        flat = truth * (self.max_threshold + 2) + step
        table = torch.bincount(flat, minlength=self.counts.numel()).reshape(self.counts.shape)
        self.counts += table.double().cpu()

    @property
    def pixels(self) -> int:
        return int(self.counts.sum())

    def curves(self) -> tuple[Tensor, Tensor]:
        """(raw, rebalanced) accuracy at t = 0..max_threshold, each (max_threshold + 1,) in [0, 1]."""
        cumulative = self.counts.cumsum(dim=1)[:, : self.max_threshold + 1]
        per_bin_total = self.counts.sum(dim=1, keepdim=True)
        raw = cumulative.sum(dim=0) / per_bin_total.sum()
        present = per_bin_total[:, 0] > 0
        rebalanced = (cumulative[present] / per_bin_total[present]).mean(dim=0)
        return raw, rebalanced

    def auc(self) -> dict[str, float]:
        if self.pixels == 0:
            raise ValueError("no pixels were accumulated")
        raw, rebalanced = self.curves()
        return {"auc_raw": area_under(raw), "auc_rebalanced": area_under(rebalanced), "mean_ab_error": self.error_sum / self.pixels}


def error_histogram(error: Tensor, max_threshold: int = MAX_THRESHOLD) -> Tensor:
    """Counts of ceil(error) clipped to max_threshold + 1: (max_threshold + 2,) float64, the curve's raw material."""
    return torch.bincount(_steps(error, max_threshold), minlength=max_threshold + 2).double().cpu()


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
    mse = ((predicted.double() - truth.double()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(255.0**2 / mse)


def ssim(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per-image SSIM of uint8 RGB (N, 3, H, W) with scikit-image's ``structural_similarity``:
    Gaussian window sigma 1.5, population covariance, data range 255 (Wang et al. 2004), mean over channels.
    The window spans 11 pixels, so images smaller than that on a side get NaN."""
    from skimage.metrics import structural_similarity

    if min(predicted.shape[-2:]) < 11:
        return torch.full((len(predicted),), float("nan"), dtype=torch.float64)
    values = [
        structural_similarity(p.permute(1, 2, 0).cpu().numpy(), t.permute(1, 2, 0).cpu().numpy(), channel_axis=2,
                              data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for p, t in zip(predicted, truth)
    ]
    return torch.tensor(values, dtype=torch.float64)


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


class SegmentCurve:
    """Streams per-segment majority errors into the object-level accuracy curve over t = 0..150."""

    def __init__(self, max_threshold: int = MAX_THRESHOLD):
        self.max_threshold = max_threshold
        self.counts = torch.zeros(max_threshold + 2, dtype=torch.float64)

    def update(self, medians: Tensor) -> None:
        self.counts += error_histogram(medians, self.max_threshold)

    @property
    def segments(self) -> int:
        return int(self.counts.sum())

    def curve(self) -> Tensor:
        return curve_from_histogram(self.counts)

    def accuracy(self, threshold: float) -> float:
        return float(self.curve()[int(threshold)]) if float(threshold).is_integer() else float("nan")
