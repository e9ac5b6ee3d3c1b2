"""``polychrome evaluate``: every colour measure of a model on a dataset, under one documented protocol.

Protocol (as Zhang et al.'s demo): the model sees each image's L resized to ``size`` x ``size``; its ab is
upsampled (bilinear) to the image's own resolution and joined with the image's own L; all measures are
taken at the image's own resolution. ``eval_size=N`` first resizes (shorter side) and centre-crops every
image to N x N, the fixed-size protocol of the papers (256). Images that are grayscale by Zhang's rule
(no pixel with |ab| > 5) are skipped and counted.

Measures, over all evaluated pixels or images:
- ``total_ab_error`` / ``mean_ab_error``: sum / mean over pixels of the L2 ab distance (Lab units);
  ``mean_ab_l1``: mean of |da| + |db|.
- ``auc_raw`` / ``auc_rebalanced``: Zhang et al.'s accuracy AuC, thresholds 0..150 (``polychrome.metrics``).
- ``psnr`` / ``ssim``: on RGB uint8, data range 255, mean over images; SSIM with scikit-image's settings (a
  Gaussian window of sigma 1.5, Wang et al. 2004), computed by kornia, mean over channels (images under 11 pixels on
  a side have none and are left out of the SSIM mean).
- ``colorfulness`` (of the predictions), ``colorfulness_truth``, ``delta_colorfulness`` (mean |CF(pred) -
  CF(truth)|): Hasler and Suesstrunk 2003.
- ``tint`` / ``tint_truth``: the mean ab of the predictions / the truth over all images (each image's mean
  weighted equally), and ``tint_error``: the mean over images of the L2 distance between an image's
  predicted and true mean ab. A sepia wash is a tint error that gray, which has none of its own, beats.
- ``false_color``: the fraction of pixels whose predicted colour is at least 20 ab units further from the
  truth than gray is (``polychrome.metrics.false_color``): colour that leaves a pixel worse than none, as
  blotches and casts do (how much is wrong, not how wrong it looks); gray scores 0.
  ``per_image_false_color`` holds it per image.
- ``prediction_spread``: the largest difference (ab units) between the predictions for two images of the
  same size; 0 means the model ignores its input (a collapsed network predicts one pattern for every
  image, which can still beat gray on rebalanced AuC); None with no two images of one size.
- ``pixel_accuracy_2pct``: Nazeri et al. 2018, |dL| <= 2 and |da|, |db| <= 4.4, on the RGB uint8 output.
- ``segment_accuracy``: the fraction of segments in which most pixels are within ``segment_threshold`` ab
  units, and its curve over thresholds; segments from BSDS500's human segmentations (first annotator)
  when the images have them and are evaluated at their own size, otherwise SLIC superpixels of the true
  image (scikit-image, compactness 10, 100 segments or one per 64 pixels on small images).
- ``classifier_accuracy`` (with a classifier run and labels): top-1 of that classifier on the colourised
  images, beside ``classifier_accuracy_gray`` and ``classifier_accuracy_truth``.

Each measure is a ``torchmetrics.Metric`` listed in ``polychrome.metrics.MEASURES``; this module loads the
images, groups them by size, hands each group to every metric and collects what they compute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from polychrome.classifier import Classifier, load_classifier
from polychrome.color import DEFAULT_TEMPERATURE, ab_gamut, is_grayscale, lab_to_uint8, uint8_to_lab
from polychrome.data import DatasetSpec, SkipUnreadable, eval_transform, open_dataset, parse_spec
from polychrome.data.datasets import classes_of, length
from polychrome.metrics import CURVES, MEASURES, TruthCache, compute_all, metrics_for
from polychrome.metrics.measures import digest
from polychrome.models import Colorizer, LoadedModel
from polychrome.pipeline import ColorizationPipeline

__all__ = ["TruthCache", "bsds_segments", "default_fit_data", "evaluate", "load_classifier", "slic_segments"]

SLIC_KEPT_PIXELS = 64 * 64  # SLIC segments are kept (TruthCache) for small images only, where SLIC is most of the cost


class _Indexed(Dataset):
    """Yields (image, label, index); an unreadable file's image is its ImageReadError (via SkipUnreadable)."""

    def __init__(self, dataset: Dataset):
        self.dataset = SkipUnreadable(dataset)

    def __len__(self) -> int:
        return length(self.dataset)

    def __getitem__(self, index: int):
        return (*self.dataset[index], index)


def _as_list(samples: list) -> list:
    return samples


def _source_path(dataset: Dataset, index: int) -> Path | None:
    """The file behind sample ``index`` of the whole dataset (under any Subset of it)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    paths = getattr(dataset, "paths", None)
    return paths[index] if paths is not None else None


def bsds_segments(path: Path | None) -> Tensor | None:
    """The first annotator's segmentation of a BSDS500 image (images/<split>/<id>.jpg), if it is there."""
    if path is None:
        return None
    truth = path.parents[2] / "groundTruth" / path.parent.name / f"{path.stem}.mat" if len(path.parents) > 2 else None
    if truth is None or not truth.is_file():
        return None
    from scipy.io import loadmat

    return torch.from_numpy(loadmat(truth)["groundTruth"][0, 0]["Segmentation"][0, 0].astype(np.int64))


def slic_segments(image: Tensor) -> Tensor:
    """SLIC superpixels of a uint8 RGB image (3, H, W): 100 of them, fewer on small images (at least 64
    pixels each, so a 32x32 CIFAR image gets 16), compactness 10."""
    from skimage.segmentation import slic

    count = min(100, max(4, image.shape[1] * image.shape[2] // 64))
    return torch.from_numpy(
        slic(image.permute(1, 2, 0).cpu().numpy(), n_segments=count, compactness=10, start_label=0).astype(np.int64)
    )


def _truth_segments(image: Tensor, cache: TruthCache) -> Tensor:
    if image.shape[1] * image.shape[2] > SLIC_KEPT_PIXELS:
        return slic_segments(image)
    return cache.get(("slic", digest(image)), lambda: slic_segments(image).to(torch.uint8)).long()


def default_fit_data(data: str) -> str | None:
    """The training split of a dataset with splits (the images ``random`` and ``mean`` are fitted on)."""
    spec = parse_spec(data)
    if spec.kind == "folder":
        return None
    train = "train-standard" if spec.kind == "places365" else "train"
    return str(DatasetSpec(spec.kind, spec.path, train))


@dataclass
class _Reading:
    """What evaluate counts beside the measures: images read, grayscale ones skipped, unreadable files."""

    images: int = 0
    gray: int = 0
    unreadable: list[str] = field(default_factory=list)


def _open(data: str, eval_size: int | None, limit: int | None) -> Dataset:
    dataset = open_dataset(data, eval_transform(eval_size) if eval_size else None)
    if limit is not None and limit < length(dataset):  # a fixed random sample, not the first (one-class) files
        chosen = torch.randperm(length(dataset), generator=torch.Generator().manual_seed(0))[:limit]
        dataset = Subset(dataset, sorted(chosen.tolist()))
    return dataset


@torch.no_grad()
def evaluate(
    model: LoadedModel | Colorizer,
    data: str,
    size: int | None = None,
    eval_size: int | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    limit: int | None = None,
    classifier: Classifier | None = None,
    segment_threshold: int = 10,
    batch_size: int = 64,
    workers: int = 2,
    device: str = "cpu",
    name: str = "",
    cache: TruthCache | None = None,
) -> dict:
    """Evaluate ``model`` on the dataset ``data`` (see the module docstring); returns the results dict.

    ``cache`` keeps what depends on the true images only (segments, the classifier's answers on the true
    and gray images): pass one object to every evaluation of a set to compute that once."""
    torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over (see train.py)
    pipeline = ColorizationPipeline(model, device)  # the network on the device, and its card
    size = size or pipeline.input_size
    dataset = _open(data, eval_size, limit)
    source_index = dataset.indices if isinstance(dataset, Subset) else range(length(dataset))
    loader = DataLoader(_Indexed(dataset), batch_size=batch_size, num_workers=workers, collate_fn=_as_list)
    cache = cache or TruthCache()
    metrics = metrics_for(
        list(MEASURES),
        bins=ab_gamut("zhang"),
        classes=classes_of(dataset),
        threshold=segment_threshold,
        classifier=classifier,
        cache=cache,
    ).to(device)
    reading = _Reading()
    start = time.perf_counter()
    for batch in loader:
        kept = _read(batch, source_index, device, reading)
        predictions = pipeline.predict_full_ab([lab[:1] for _, _, _, lab in kept], size, temperature)
        for group in _by_size(kept, predictions):
            metrics.update(**_measurements(group, dataset, eval_size, cache))
    seconds = time.perf_counter() - start
    if reading.images == reading.gray:
        raise ValueError(f"no colour images to evaluate in {data} ({reading.images} read, {reading.gray} grayscale)")
    protocol = {
        "size": size,
        "eval_size": eval_size,
        "temperature": temperature,
        "resolution": f"{eval_size}x{eval_size} (resized, centre-cropped)" if eval_size else "each image's own",
        "model_input": f"L resized to {size}x{size}; ab upsampled bilinearly and joined with the image's own L",
    }
    return _results(name or pipeline.card.name, data, protocol, reading, compute_all(metrics), seconds)


def _read(batch: list, source_index, device: str, reading: _Reading) -> list[tuple]:
    """The colour images of a batch as (image, label, dataset index, Lab); counts the rest."""
    kept = []
    for image, label, index in batch:
        if isinstance(image, Exception):
            reading.unreadable.append(str(image))
            continue
        reading.images += 1
        image = image.to(device)
        lab = uint8_to_lab(image[None])[0]
        if bool(is_grayscale(lab[None, 1:])):
            reading.gray += 1
        else:  # per-image results are keyed by the index in the whole dataset
            kept.append((image, int(label), int(source_index[index]), lab))
    return kept


def _by_size(kept: list[tuple], predictions: list[Tensor]) -> list[list[tuple]]:
    """Images of one size, measured as one stacked batch: (image, label, index, Lab, predicted ab) each."""
    groups: dict[tuple, list] = {}
    for sample, ab in zip(kept, predictions, strict=True):
        groups.setdefault(tuple(sample[3].shape), []).append((*sample, ab))
    return list(groups.values())


def _measurements(group: list[tuple], dataset: Dataset, eval_size: int | None, cache: TruthCache) -> dict:
    """A group of same-sized images as the keyword arguments every metric's update takes its own from."""
    photos, labels, indices, lab, ab = zip(*group, strict=True)
    truth_lab, predicted_ab, images = torch.stack(lab), torch.stack(ab), torch.stack(photos)
    # BSDS500's human segmentations where the images have them at their own size (index: whole dataset)
    hand = [bsds_segments(_source_path(dataset, index)) if eval_size is None else None for index in indices]
    return {
        "predicted_ab": predicted_ab,
        "truth_ab": truth_lab[:, 1:],
        "truth_lab": truth_lab,
        "truth_rgb": images,
        "predicted_rgb": lab_to_uint8(torch.cat([truth_lab[:, :1], predicted_ab], dim=1)),
        "labels": torch.tensor(labels, device=images.device),
        "indices": torch.tensor(indices, device=images.device),
        "segments": [
            s if s is not None else _truth_segments(image, cache) for s, image in zip(hand, images, strict=True)
        ],
        "hand_segmented": torch.tensor([s is not None for s in hand], device=images.device),
    }


def _results(name: str, data: str, protocol: dict, reading: _Reading, measured: dict, seconds: float) -> dict:
    """The results dict, its keys in the order evaluate has always written them."""
    curves = {kind: measured.pop(key) for key, kind in CURVES.items()}
    head = {
        "model": name,
        "data": data,
        "protocol": protocol,
        "images": reading.images - reading.gray,
        "grayscale_skipped": reading.gray,
        "unreadable": reading.unreadable,
        "pixels": measured.pop("pixels"),
    }
    order = [
        "total_ab_error",
        "mean_ab_error",
        "mean_ab_l1",
        "auc_raw",
        "auc_rebalanced",
        "psnr",
        "ssim",
        "colorfulness",
        "colorfulness_truth",
        "delta_colorfulness",
        "tint",
        "tint_truth",
        "tint_error",
        "false_color",
        "prediction_spread",
        "pixel_accuracy_2pct",
        "segment_accuracy",
        "segment_threshold",
        "segment_source",
        "segments",
        "classifier_accuracy",
        "classifier_accuracy_gray",
        "classifier_accuracy_truth",
        "per_class",
    ]
    ordered = {key: measured.pop(key) for key in order}
    return head | ordered | {"curves": curves} | measured | {"seconds": seconds}
