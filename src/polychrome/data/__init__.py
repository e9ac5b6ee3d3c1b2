"""Data: datasets of RGB uint8 images named by spec strings, transforms, splits and on-disk caches."""

from polychrome.data.cache import DecodedImages
from polychrome.data.datasets import (
    KINDS,
    Batch,
    DatasetNotFoundError,
    DatasetSpec,
    ImageFolder,
    SkipUnreadable,
    TorchvisionImages,
    collate_images,
    length,
    open_dataset,
    parse_spec,
)
from polychrome.data.images import ImageReadError, load_rgb, load_rgba, to_rgb, to_rgba, write_png
from polychrome.data.stats import DatasetStats, dataset_prior, dataset_stats
from polychrome.data.transforms import eval_transform, split_train_val, train_transform

__all__ = [
    "KINDS",
    "Batch",
    "DatasetNotFoundError",
    "DatasetSpec",
    "DatasetStats",
    "DecodedImages",
    "ImageFolder",
    "ImageReadError",
    "SkipUnreadable",
    "TorchvisionImages",
    "collate_images",
    "dataset_prior",
    "dataset_stats",
    "eval_transform",
    "length",
    "load_rgb",
    "load_rgba",
    "open_dataset",
    "parse_spec",
    "split_train_val",
    "to_rgb",
    "to_rgba",
    "train_transform",
    "write_png",
]
