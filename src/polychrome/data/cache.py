"""On-disk caches keyed by what a dataset holds: decoded images (memory-mapped) and bin histograms.

Decoding 50,000 CIFAR-10 JPEGs every epoch costs more than a small network's step, so a dataset can be
decoded once at a fixed size into a uint8 array that later epochs memory-map (benchmarks/decode_cache.py
measures both). Entries live under ``polychrome.settings.cache_dir()``, are named by the dataset spec,
the size and a fingerprint of the files, and are written to a temporary name then renamed, so an
interrupted build never leaves a half-written entry behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from polychrome.data.datasets import (
    DatasetSpec,
    ImageFolder,
    SkipUnreadable,
    Transform,
    collate_images,
    length,
    open_dataset,
    parse_spec,
)
from polychrome.data.transforms import eval_transform
from polychrome.settings import cache_dir


def fingerprint(dataset: Dataset) -> str:
    """A short hash that changes when the files of an image folder (names, sizes, times) change."""
    digest = hashlib.sha1(type(dataset).__name__.encode())
    if isinstance(dataset, ImageFolder):
        for path in dataset.paths:
            stat = path.stat()
            digest.update(f"{path.relative_to(dataset.root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    else:
        digest.update(f"{getattr(getattr(dataset, 'dataset', None), 'root', '')}\0{length(dataset)}".encode())
    return digest.hexdigest()[:12]


def entry_dir(spec: DatasetSpec, dataset: Dataset, what: str, size: int) -> Path:
    """The cache folder for ``what`` (e.g. 'images', 'bins') of a dataset at a size."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{spec.kind}-{spec.path.resolve()}-{spec.split or ''}").strip("-")[-80:]
    return cache_dir() / what / f"{slug}-{size}px-{fingerprint(dataset)}"


@contextlib.contextmanager
def atomic_dir(folder: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``folder`` only when the block finishes."""
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def skipping_loader(dataset: Dataset, batch_size: int, workers: int) -> DataLoader:
    """One ordered pass over ``dataset`` for a cache (statistics, decoded images), skipping unreadable files.

    The loader gets its own generator: a DataLoader without one draws its workers' base seed from torch's
    global generator on every pass, so filling a cache (a miss) moved the global stream where a hit did not,
    and a training run's network, built after the prior is computed, started from other weights."""
    return DataLoader(
        SkipUnreadable(dataset),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_images,
        generator=torch.Generator(),
    )


class DecodedImages(Dataset):
    """A dataset decoded once to size x size (shorter side resized, centre-cropped), memory-mapped.

    Yields ``(uint8 (3, size, size) image, label)`` like the dataset it was built from; ``transform``
    (e.g. a random crop and flip) runs on the cached pixels.
    """

    def __init__(self, folder: Path, transform: Transform | None = None):
        meta = json.loads((folder / "meta.json").read_text())
        self.folder = folder
        self.images = np.load(folder / "images.npy", mmap_mode="r")
        self.labels = meta["labels"]
        self.classes = meta["classes"]
        self.unreadable = meta["unreadable"]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1)
        return (self.transform(image) if self.transform else image), self.labels[index]

    @classmethod
    def build(
        cls,
        spec: str | DatasetSpec,
        size: int,
        transform: Transform | None = None,
        batch_size: int = 256,
        workers: int = min(4, os.cpu_count() or 1),
        progress: bool = False,
    ) -> DecodedImages:
        """Open the cached copy of ``spec`` at ``size``, decoding it first if there is none yet."""
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        source = open_dataset(spec, eval_transform(size))
        folder = entry_dir(spec, source, "images", size)
        if not (folder / "meta.json").exists():
            _decode_into(folder, source, size, batch_size, workers, progress)
        return cls(folder, transform)


def _decode_into(folder: Path, source: Dataset, size: int, batch_size: int, workers: int, progress: bool) -> None:
    with atomic_dir(folder) as tmp:
        shape = (length(source), size, size, 3)
        array = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
        labels: list[int] = []
        unreadable: list[str] = []
        batches: Iterable = skipping_loader(source, batch_size, workers)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"decoding to {size}px", unit="batch")
        for batch in batches:
            n = len(batch.labels)
            array[len(labels) : len(labels) + n] = batch.images.permute(0, 2, 3, 1).numpy()
            labels += batch.labels.tolist()
            unreadable += [str(error) for error in batch.errors]
        array.flush()
        del array
        if unreadable:  # keep only the rows that were filled
            np.save(tmp / "filled.npy", np.load(tmp / "images.npy", mmap_mode="r")[: len(labels)])
            os.replace(tmp / "filled.npy", tmp / "images.npy")
        meta = {"labels": labels, "classes": list(getattr(source, "classes", [])), "unreadable": unreadable}
        (tmp / "meta.json").write_text(json.dumps(meta))
