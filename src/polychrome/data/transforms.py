"""Geometric transforms on uint8 (3, H, W) tensors, and the deterministic train/validation split.

Colour is never touched here: photometric augmentation would change the very ab targets we learn.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from polychrome.data.datasets import length


def train_transform(size: int, flip: bool = True, resize: bool = True) -> v2.Compose:
    """Resize the shorter side to ``size`` (unless ``resize=False``, for images already at least that
    large, such as a decoded cache at a larger size), take a random size x size crop, flip half the time."""
    steps = ([v2.Resize(size, antialias=True)] if resize else []) + [v2.RandomCrop(size)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def eval_transform(size: int) -> v2.Compose:
    """Resize the shorter side to ``size`` and take the centre size x size crop (deterministic)."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])


def split_train_val(dataset: Dataset, val_fraction: float, seed: int = 0) -> tuple[Subset, Subset]:
    """Split into (train, validation) subsets, the same way for the same seed and length on any machine."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = length(dataset)
    n_val = max(1, round(n * val_fraction))
    if n_val >= n:
        raise ValueError(f"a dataset of {n} images is too small for a validation fraction of {val_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(order[n_val:])), Subset(dataset, sorted(order[:n_val]))
