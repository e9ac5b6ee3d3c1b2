"""Test-set intervals: how far a measure could move had other test photos been drawn, by a bootstrap over
blocks of test images (Efron and Tibshirani 1993; the bias-corrected percentile interval).

Every measure of a metric that only sums its states (``summed``: AuC, PSNR, false colour, segment and
classifier accuracy, ...) is a function of those sums, and the sums of a resampled test set are the sums
of its blocks' contributions, each counted as often as it was drawn. So one evaluation pass records what
each block of images added to every summed state (``BlockSums``); a replicate draws as many blocks as
there are, with replacement, weights their contributions by the draws and hands the totals to the metric's
own ``compute``: the same formula as the reported number, for every measure at once, one resample for all.

A block is a run of consecutive same-sized images as the data loader yields them (``evaluate`` draws the
photos in a seeded random order, so a block is a random handful even of a dataset stored class by class);
a set of up to ``TARGET_BLOCKS`` images is resampled photo by photo.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

TARGET_BLOCKS = 200  # about this many blocks per set: enough for a 95% percentile interval, few enough to keep
REPLICATES = 1000
LEVEL = 0.95


def summed(metric: Metric) -> bool:
    """Whether every state of ``metric`` is summed across updates (and processes), so its results are a
    function of sums that blocks of images add up to."""
    names = _summed_names(metric)
    return bool(names) and set(metric.metric_state) == set(names)


def _summed_names(metric: Metric) -> tuple[str, ...]:
    return tuple(getattr(metric, "summed_states", ()))


def images_per_block(images: int) -> int:
    """Block size for a set of ``images``: one image up to TARGET_BLOCKS images, then about TARGET_BLOCKS blocks."""
    return max(1, math.ceil(images / TARGET_BLOCKS))


class BlockSums:
    """Feeds a metric collection and records, block by block, what each update added to the summed states.

    ``update`` takes the keyword arguments of one stack of same-sized images (as ``MetricCollection.update``
    does); the metrics that only sum are updated ``per_block`` images at a time, the others (per-image
    lists, the largest spread) with the whole stack, so their results are what a plain update gives."""

    def __init__(self, metrics: MetricCollection, per_block: int):
        self.per_block = per_block
        self.summed = MetricCollection({str(k): m for k, m in metrics.items() if summed(m)}, compute_groups=False)
        self.others = MetricCollection({str(k): m for k, m in metrics.items() if not summed(m)}, compute_groups=False)
        self.blocks: dict[str, list[dict[str, Tensor]]] = {str(name): [] for name in self.summed}
        self._last = {str(name): _states(metric) for name, metric in self.summed.items()}  # states after the last block

    def update(self, **measurements) -> None:
        if len(self.others):
            self.others.update(**measurements)
        images = len(measurements["truth_ab"])
        for start in range(0, images, self.per_block):
            self.summed.update(**{k: v[start : start + self.per_block] for k, v in measurements.items()})
            for name, metric in self.summed.items():
                now = _states(metric)
                self.blocks[name].append({s: now[s] - self._last[name][s] for s in now})
                self._last[name] = now

    @property
    def count(self) -> int:
        return len(next(iter(self.blocks.values()), []))

    def intervals(self, replicates: int = REPLICATES, level: float = LEVEL, seed: int = 0) -> dict[str, list[float]]:
        """Each number the summed metrics compute, as its [low, high] bias-corrected percentile interval over
        ``replicates`` resamples of the blocks (seeded, so a rerun gives the same interval); {} without two blocks."""
        if self.count < 2:
            return {}
        estimates = {
            measure: value
            for metric in self.summed.values()
            for measure, value in type(metric).compute(metric).items()
            if isinstance(value, float)
        }
        generator = torch.Generator().manual_seed(seed)
        draws = torch.randint(self.count, (replicates, self.count), generator=generator)
        weights = torch.zeros(replicates, self.count, dtype=torch.float64).scatter_add_(
            1, draws, torch.ones(replicates, self.count, dtype=torch.float64)
        )
        values: dict[str, list[float]] = {}
        for name, metric in self.summed.items():
            for replicate in _replicates(metric, self.blocks[name], weights):
                for measure, value in replicate.items():
                    if isinstance(value, float) and math.isfinite(value):
                        values.setdefault(measure, []).append(value)
        return {
            measure: _bias_corrected(estimates[measure], torch.tensor(v, dtype=torch.float64), level)
            for measure, v in values.items()
            if len(v) == replicates
        }


def _bias_corrected(estimate: float, replicates: Tensor, level: float) -> list[float]:
    """Efron's (1987) bias-corrected percentile interval: the percentiles shifted by how far off-centre the
    estimate sits among its replicates. For a mean over photos it is the plain percentile interval; for the
    rebalanced AuC, which resampling raises (a resample holds fewer distinct photos, so fewer rare colours,
    each weighing more), the plain one would sit almost wholly above the number it is about."""
    normal = NormalDist()
    below = float((replicates < estimate).double().mean() + (replicates == estimate).double().mean() / 2)
    bias = normal.inv_cdf(min(max(below, 0.5 / len(replicates)), 1 - 0.5 / len(replicates)))
    z = normal.inv_cdf(1 - (1 - level) / 2)
    quantiles = torch.tensor([normal.cdf(2 * bias - z), normal.cdf(2 * bias + z)], dtype=torch.float64)
    return torch.quantile(replicates, quantiles).tolist()


def _states(metric: Metric) -> dict[str, Tensor]:
    return {name: getattr(metric, name).clone() for name in _summed_names(metric)}


def _replicates(metric: Metric, blocks: list[dict[str, Tensor]], weights: Tensor):
    """The metric's results for each row of ``weights`` (the times each block was drawn): its states set to
    the weighted sums of the blocks' contributions, then its own ``compute`` (the class's, unwrapped: the
    instance's wrapper caches and syncs); the metric's states are restored afterwards."""
    kept = {name: getattr(metric, name) for name in _summed_names(metric)}
    totals = {
        name: (weights @ torch.stack([b[name].flatten().double() for b in blocks])).to(kept[name].dtype)
        for name in kept
    }
    try:
        for r in range(len(weights)):
            for name, total in totals.items():
                setattr(metric, name, total[r].reshape(kept[name].shape))
            yield type(metric).compute(metric)
    finally:
        for name, value in kept.items():
            setattr(metric, name, value)
