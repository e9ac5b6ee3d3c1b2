"""Accuracy of predicted colour, accumulated over batches exactly and in bounded memory.

Zhang et al. 2016's AuC: for thresholds t = 0, 1, ..., 150 (Lab units), the fraction of pixels whose ab
error (L2) is at most t; the area under that curve (trapezoid rule), divided by 150, in percent.
``raw`` counts every pixel alike; ``rebalanced`` weights each pixel by 1 / (frequency of its
ground-truth bin in the evaluated set), i.e. averages the curves of the bins present.

Errors are histogrammed by ceil(error) (error <= t exactly when ceil(error) <= t for integer t), per
ground-truth bin, so the curves come out exact from a (Q, 152) table of counts.
"""

from __future__ import annotations

import torch
from torch import Tensor

from polychrome.color import encode_hard

MAX_THRESHOLD = 150


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
        step = torch.ceil(error).clamp(max=self.max_threshold + 1).long().flatten()
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
        area = lambda curve: float(torch.trapezoid(curve, dx=1.0)) / self.max_threshold * 100  # noqa: E731
        return {"auc_raw": area(raw), "auc_rebalanced": area(rebalanced), "mean_ab_error": self.error_sum / self.pixels}
