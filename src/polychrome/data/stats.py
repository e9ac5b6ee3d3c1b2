"""What a dataset holds in colour: image counts, grayscale and unreadable files, and its ab histogram.

The histogram is Zhang et al.'s empirical prior before smoothing; it is computed once per dataset, size
and gamut, streamed through a DataLoader, and cached on disk (see ``polychrome.data.cache``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from polychrome.color import ab_gamut, accumulate_bin_counts, smooth_prior
from polychrome.data.cache import atomic_dir, entry_dir, skipping_loader
from polychrome.data.datasets import DatasetSpec, open_dataset, parse_spec
from polychrome.data.transforms import eval_transform


@dataclass
class DatasetStats:
    spec: str
    size: int
    gamut: str
    images: int  # readable images
    grayscale: int  # of those, grayscale by Zhang's rule (no pixel with |ab| > 5)
    unreadable: list[str] = field(default_factory=list)  # "path: reason"
    counts: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.int64)
    )  # (Q,) pixels per bin over the colour images

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "counts"} | {"colour_pixels": int(self.counts.sum())}


def dataset_stats(
    spec: str | DatasetSpec,
    size: int = 64,
    gamut: str = "zhang",
    batch_size: int = 256,
    workers: int = min(4, os.cpu_count() or 1),
    device: str = "cpu",
    progress: bool = False,
) -> DatasetStats:
    """Count images, grayscale and unreadable files, and the ab histogram at ``size`` x ``size`` (cached)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    dataset = open_dataset(spec, eval_transform(size))
    folder = entry_dir(spec, dataset, f"stats-{gamut}", size)
    if (folder / "stats.json").exists():
        meta = json.loads((folder / "stats.json").read_text())
        return DatasetStats(**meta, counts=np.load(folder / "counts.npy"))

    unreadable: list[str] = []

    def batches():
        loader: Iterable = skipping_loader(dataset, batch_size, workers)
        if progress:
            from tqdm import tqdm

            loader = tqdm(loader, desc=f"stats {spec}", unit="batch")
        for batch in loader:
            unreadable.extend(str(error) for error in batch.errors)
            if len(batch.images):
                yield batch.images

    counted = accumulate_bin_counts(batches(), ab_gamut(gamut), device)
    stats = DatasetStats(str(spec), size, gamut, counted.images, counted.grayscale, unreadable, counted.counts.numpy())
    with atomic_dir(folder) as tmp:
        np.save(tmp / "counts.npy", stats.counts)
        meta = {k: v for k, v in asdict(stats).items() if k != "counts"}
        (tmp / "stats.json").write_text(json.dumps(meta, indent=1))
    return stats


def dataset_prior(
    spec: str | DatasetSpec | list, size: int = 64, gamut: str = "zhang", sigma: float = 5.0, **kwargs
) -> torch.Tensor:
    """Zhang's smoothed empirical prior p~ (Q,) of a dataset, or of a mix (a list, counts summed, a
    repeated entry counted again) (float64, sums to 1)."""
    specs = spec if isinstance(spec, list) else [spec]
    counts = torch.stack([torch.from_numpy(dataset_stats(s, size, gamut, **kwargs).counts) for s in specs]).sum(0)
    return smooth_prior(counts, ab_gamut(gamut), sigma)
