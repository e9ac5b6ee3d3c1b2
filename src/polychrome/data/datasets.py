"""Datasets of RGB uint8 images, named by one spec string.

Every dataset here yields ``(image, label)`` with image a (3, H, W) uint8 RGB tensor (after the optional
``transform``) and label an int (-1 when the dataset has none). Conversion to Lab is left to the
training device. Spec strings::

    folder:PATH                 any folder of images (recursive; class sub-folders give labels)
    folder:PATH@heldout|rest    a fixed 10% of its files (by a hash of each relative path), or the other 90%
    cifar10:PATH[@train|test]   torchvision's cifar-10-batches-py, or PATH/{train,test}/<class>/*
    places365:PATH[@train-standard|train-challenge|val]   torchvision's Places365 layout (small images)
    imagenet:PATH[@train|val]   torchvision's ImageNet layout (meta.bin or the devkit archive, train/, val/)
    PATH                        shorthand for folder:PATH

A relative PATH is looked up in the working directory, then under the data root
(``POLYCHROME_DATA``, default ``../shared/data``). PATH may be left out for cifar10, places365 and
imagenet, which then live at ``<data root>/<kind>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from polychrome.data.images import DEFAULT_MAX_PIXELS, ImageReadError, image_extensions, load_rgb, to_rgb
from polychrome.settings import data_root

Transform = Callable[[Tensor], Tensor]

KINDS = ("folder", "cifar10", "places365", "imagenet")
HELDOUT_PERCENT = 10  # folder:PATH@heldout: files whose path hash falls in the first 10 of 100 buckets
_SPLITS = {
    "folder": ("heldout", "rest"),
    "cifar10": ("train", "test"),
    "places365": ("train-standard", "train-challenge", "val"),
    "imagenet": ("train", "val"),
}
_WHERE_TO_GET = {
    "cifar10": "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into {root} "
    "(giving {root}/cifar-10-batches-py), or put images in {root}/train/<class>/ and {root}/test/<class>/",
    "places365": "download the Places365 devkit (filelist_places365-standard.tar) and the small images "
    "(train_256_places365standard.tar, val_256.tar) from http://places2.csail.mit.edu/download.html "
    "and extract them into {root}",
    "imagenet": "download ILSVRC2012_devkit_t12.tar.gz and ILSVRC2012_img_{split}.tar from "
    "https://image-net.org/download.php into {root} (torchvision unpacks them on first use)",
}


_SPEC = re.compile(rf"(?P<kind>{'|'.join(KINDS)})(?::(?P<path>[^@]*))?(?:@(?P<split>.*))?")


class DatasetNotFoundError(Exception):
    """A dataset spec that names data which is not on disk; the message says what to download and where."""


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    path: Path
    split: str | None

    def __str__(self) -> str:
        split = f"@{self.split}" if self.split else ""
        return f"{self.kind}:{self.path}{split}"


def parse_spec(spec: str) -> DatasetSpec:
    """Parse ``kind:PATH@split`` into a DatasetSpec with PATH resolved (see the module docstring)."""
    match = _SPEC.fullmatch(spec)
    kind, rest, split = match.group("kind", "path", "split") if match else ("folder", spec, None)
    rest, split = rest or "", split or ""
    splits = _SPLITS[kind]
    if kind == "folder":
        if split and split not in splits:
            raise ValueError(
                f"{spec!r}: a folder's only splits are @heldout and @rest (a fixed {HELDOUT_PERCENT}% by path hash, "
                "and the others); for other splits name the split's own folder"
            )
        if not rest:
            raise ValueError(f"{spec!r}: give the folder, e.g. folder:photos/")
        split_value = split or None
    else:
        split_value = split or splits[0]
        if split_value not in splits:
            raise ValueError(f"{spec!r}: unknown split {split_value!r} for {kind}; choose one of {', '.join(splits)}")
    return DatasetSpec(kind, _resolve(rest) if rest else data_root() / kind, split_value)


def _resolve(path: str) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    under_root = data_root() / candidate
    return under_root if under_root.exists() else candidate


class ImageFolder(Dataset):
    """Every readable-looking image file under ``root``, recursively, in sorted order.

    When every image lies inside a sub-folder of ``root``, the first sub-folder names the class
    (as in torchvision's ImageFolder); otherwise labels are -1. Unreadable files raise ImageReadError
    from ``__getitem__``; wrap the dataset with ``SkipUnreadable`` to skip and report them instead.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Transform | None = None,
        classes: list[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        split: str | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"image folder not found: {self.root} (relative paths are looked up in the working directory, "
                f"then under POLYCHROME_DATA={data_root()})"
            )
        extensions = set(image_extensions())
        paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in extensions and p.is_file())
        if split is not None:  # the same files on any machine, whatever the seed: a hash of the relative path
            heldout = split == "heldout"
            paths = [p for p in paths if (_path_bucket(p.relative_to(self.root)) < HELDOUT_PERCENT) == heldout]
        if not paths:
            raise DatasetNotFoundError(f"no image files under {self.root}" + (f" in split {split}" if split else ""))
        labelled = all(len(p.relative_to(self.root).parts) > 1 for p in paths)
        if labelled:
            found = sorted({p.relative_to(self.root).parts[0] for p in paths})
            self.classes = classes if classes is not None else found
            index = {name: i for i, name in enumerate(self.classes)}
            self.labels = [index.get(p.relative_to(self.root).parts[0], -1) for p in paths]
        else:
            self.classes = []
            self.labels = [-1] * len(paths)
        self.paths = paths
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = _to_tensor(load_rgb(self.paths[index], self.max_pixels))
        return (self.transform(image) if self.transform else image), self.labels[index]


def _path_bucket(relative: Path) -> int:
    import hashlib

    return int(hashlib.sha1(relative.as_posix().encode()).hexdigest()[:8], 16) % 100


class TorchvisionImages(Dataset):
    """A torchvision dataset (CIFAR10, Places365, ImageNet) seen as uint8 (3, H, W) tensors and int labels."""

    def __init__(self, dataset: Dataset, transform: Transform | None = None):
        self.dataset = dataset
        self.classes = list(getattr(dataset, "classes", []))
        self.transform = transform

    def __len__(self) -> int:
        return length(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        picture, label = self.dataset[index]
        image = _to_tensor(picture if isinstance(picture, np.ndarray) else to_rgb(picture))
        return (self.transform(image) if self.transform else image), int(label)


def _to_tensor(rgb: np.ndarray) -> Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def open_dataset(spec: str | DatasetSpec, transform: Transform | None = None) -> Dataset:
    """The dataset a spec names (see the module docstring), yielding ``(uint8 (3,H,W) image, label)``."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.kind == "folder":
        return ImageFolder(spec.path, transform, split=spec.split)
    if not spec.path.is_dir():
        raise DatasetNotFoundError(_missing(spec))
    import torchvision.datasets as tvd

    try:
        if spec.kind == "cifar10":
            if (spec.path / "cifar-10-batches-py").is_dir():
                return TorchvisionImages(tvd.CIFAR10(spec.path, train=spec.split == "train"), transform)
            split_folder = spec.path / str(spec.split)  # parse_spec gives every kind but folder a split
            if split_folder.is_dir():
                return ImageFolder(split_folder, transform)
            raise DatasetNotFoundError(_missing(spec))
        if spec.kind == "places365":
            places = tvd.Places365(spec.path, split=spec.split, small=True, loader=load_rgb)
            return TorchvisionImages(places, transform)
        imagenet = tvd.ImageNet(spec.path, split=spec.split, loader=load_rgb)
        return TorchvisionImages(imagenet, transform)
    except (RuntimeError, FileNotFoundError) as error:
        raise DatasetNotFoundError(f"{_missing(spec)} ({error})") from None


def _missing(spec: DatasetSpec) -> str:
    how = _WHERE_TO_GET[spec.kind].format(root=spec.path, split=spec.split)
    where = (
        spec.path if spec.path.is_absolute() else f"{spec.path} (looked in {Path.cwd()} and {data_root().resolve()})"
    )
    return f"{spec.kind} ({spec.split}) not found at {where}: {how}"


def length(dataset: Dataset) -> int:
    """The number of samples of a map-style dataset. torch's ``Dataset`` declares no ``__len__`` (an iterable
    dataset has none); every dataset polychrome reads is map-style, and one that is not fails here by name."""
    if not isinstance(dataset, Sized):
        raise TypeError(f"{type(dataset).__name__} has no length: polychrome reads map-style datasets only")
    return len(dataset)


def classes_of(dataset: Dataset | None) -> list:
    """The class names of a dataset, looking through wrappers (Subset, SkipUnreadable, ...)."""
    while dataset is not None:
        classes = getattr(dataset, "classes", None)
        if classes:
            return list(classes)
        dataset = getattr(dataset, "dataset", None)
    return []


class SkipUnreadable(Dataset):
    """Wraps a dataset so an unreadable image comes back as its ImageReadError instead of raising.

    Pair it with ``collate_images``, which drops those samples from the batch and hands their errors on,
    so a bad file is reported by path and never stops an epoch.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return length(self.dataset)

    def __getitem__(self, index: int):
        try:
            return self.dataset[index]
        except ImageReadError as error:
            return error, -1


@dataclass
class Batch:
    images: Tensor  # (N, 3, H, W) uint8
    labels: Tensor  # (N,) int64, -1 where unlabelled
    errors: list[ImageReadError]


def collate_images(samples: list) -> Batch:
    """Stack equally sized uint8 images; unreadable samples (from SkipUnreadable) go to ``errors``."""
    errors = [image for image, _ in samples if isinstance(image, ImageReadError)]
    good = [(image, label) for image, label in samples if not isinstance(image, ImageReadError)]
    if good:
        images = torch.stack([image for image, _ in good])
        labels = torch.tensor([label for _, label in good], dtype=torch.int64)
    else:
        images, labels = torch.empty(0, 3, 0, 0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    return Batch(images, labels, errors)
