"""Data order and augmentation that a resumed or multi-process run reproduces exactly.

The stream of training samples is a function of (seed, position) alone: position p of the run takes
sample ``permutation(seed, epoch)[p mod N]`` with epoch = p div N, and augments it with a random state
seeded by (seed, p). Rank r of W processes takes the positions p = r mod W, so the ranks of one step see
different images. Starting the stream at step s (a resumed run) gives exactly the samples the
uninterrupted run would have seen from step s on, with the same crops and flips.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Sampler

from polychrome.data.datasets import Transform, classes_of, length


def mix_seed(seed: int, position: int) -> int:
    """A 63-bit seed from (seed, position): splitmix64's finaliser."""
    z = (seed * 0x9E3779B97F4A7C15 + position + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


class RunSampler(Sampler):
    """Yields ``(index, augmentation_seed)`` for steps [start_step, total_steps) of a run, for one rank."""

    def __init__(
        self,
        length: int,
        batch_size: int,
        total_steps: int,
        start_step: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if length < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.start = start_step * batch_size * world_size
        self.stop = max(total_steps, start_step) * batch_size * world_size

    def __len__(self) -> int:
        # The length of the whole run, not of what is left: a resumed Lightning epoch counts the batches it
        # restored against it, and ends exactly at the run's last step.
        return len(range(self.rank, self.stop, self.world_size))

    def __iter__(self):
        epoch, permutation = -1, torch.empty(0, dtype=torch.int64)  # drawn at the first position
        for position in range(self.start + self.rank, self.stop, self.world_size):
            if position // self.length != epoch:
                epoch = position // self.length
                permutation = torch.randperm(
                    self.length, generator=torch.Generator().manual_seed(mix_seed(self.seed, -1 - epoch))
                )
            yield int(permutation[position % self.length]), mix_seed(self.seed, position)


class Transformed(Dataset):
    """Applies ``transform`` to a dataset's images. A key ``(index, seed)`` fixes the random state first."""

    def __init__(self, dataset: Dataset, transform: Transform | None):
        self.dataset = dataset
        self.transform = transform
        self.classes = classes_of(dataset)

    def __len__(self) -> int:
        return length(self.dataset)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, label = self.dataset[index]
        if self.transform is None or isinstance(image, Exception):
            return image, label
        if seed is None:
            return self.transform(image), label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(image), label
