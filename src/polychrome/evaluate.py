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
- ``psnr`` / ``ssim``: on RGB uint8, data range 255, mean over images; SSIM by scikit-image with a
  Gaussian window of sigma 1.5 (Wang et al. 2004 settings), mean over channels (images under 11 pixels on
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
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from polychrome.color import ab_gamut, is_grayscale, lab_to_uint8, uint8_to_lab
from polychrome.data import DatasetSpec, SkipUnreadable, eval_transform, open_dataset, parse_spec
from polychrome.data.datasets import classes_of
from polychrome.inference import predict_full_ab
from polychrome.metrics import (
    MAX_THRESHOLD,
    AccuracyCurves,
    SegmentCurve,
    area_under,
    colorfulness,
    curve_from_histogram,
    error_histogram,
    false_color,
    nazeri_correct,
    prediction_spread,
    psnr,
    segment_median_errors,
    ssim,
)
from polychrome.models import Colorizer
from polychrome.models.fusion import load_timm_backbone, timm_mean_std


class _Indexed(Dataset):
    """Yields (image, label, index); an unreadable file's image is its ImageReadError (via SkipUnreadable)."""

    def __init__(self, dataset: Dataset):
        self.dataset = SkipUnreadable(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

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
    return torch.from_numpy(slic(image.permute(1, 2, 0).cpu().numpy(), n_segments=count, compactness=10, start_label=0).astype(np.int64))


# What depends on the true images only (their SLIC segments, the classifier on them and on their gray
# version) is the same for every model a study evaluates on a set: kept by content, it is computed once
# per process. Bounded: small images only for segments (CIFAR-sized, where SLIC is most of the cost).
_MEMO: dict[tuple, Tensor] = {}
_MEMO_ENTRIES = 100_000
_MEMO_SEGMENT_PIXELS = 64 * 64


def _memo(key: tuple, compute) -> Tensor:
    if key not in _MEMO:
        if len(_MEMO) >= _MEMO_ENTRIES:
            _MEMO.clear()
        _MEMO[key] = compute()
    return _MEMO[key]


def _digest(images: Tensor) -> bytes:
    return hashlib.blake2b(images.cpu().numpy().tobytes(), digest_size=16).digest() + bytes(str(tuple(images.shape)), "ascii")


def _truth_segments(image: Tensor) -> Tensor:
    if image.shape[1] * image.shape[2] > _MEMO_SEGMENT_PIXELS:
        return slic_segments(image)
    return _memo(("slic", _digest(image)), lambda: slic_segments(image).to(torch.uint8)).long()


@dataclass
class _Totals:
    images: int = 0
    gray: int = 0
    unreadable: list[str] = field(default_factory=list)
    l1: float = 0.0
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    colorfulness: list[float] = field(default_factory=list)
    colorfulness_truth: list[float] = field(default_factory=list)
    mean_ab: list[Tensor] = field(default_factory=list)  # per image: predicted a, b, true a, b
    nazeri: float = 0.0
    false_color: float = 0.0
    prediction_spread: float | None = None  # largest ab difference between two same-sized images' predictions
    per_image_false_color: dict[int, float] = field(default_factory=dict)
    per_image_error: dict[int, float] = field(default_factory=dict)
    per_class: dict[int, list] = field(default_factory=dict)  # label -> [images, error sum, error histogram]
    classifier: np.ndarray = field(default_factory=lambda: np.zeros(4))  # correct colourised, gray, truth; seen
    segment_sources: set[str] = field(default_factory=set)


def default_fit_data(data: str) -> str | None:
    """The training split of a dataset with splits (the images ``random`` and ``mean`` are fitted on)."""
    spec = parse_spec(data)
    if spec.kind == "folder":
        return None
    train = "train-standard" if spec.kind == "places365" else "train"
    return str(DatasetSpec(spec.kind, spec.path, train))


def load_classifier(run_dir: str | Path):
    """The classifier a ``task: classify`` run exported (classifier.safetensors + classifier.json)."""
    import json

    run_dir = Path(run_dir)
    meta_path = run_dir / "classifier.json"
    if not meta_path.is_file():
        raise ValueError(f"{run_dir} holds no classifier.json: train one with task=classify (see README)")
    meta = json.loads(meta_path.read_text())
    model = load_timm_backbone(meta["arch"], str(run_dir / "classifier.safetensors"), meta["num_classes"])
    model.polychrome_mean, model.polychrome_std = timm_mean_std(model)
    model.polychrome_size = meta["size"]
    model.polychrome_source = str(run_dir.resolve())  # which classifier, for results kept across evaluations
    return model


def _classify(classifier, images: Tensor) -> Tensor:
    x = torch.nn.functional.interpolate(images.float() / 255, size=(classifier.polychrome_size,) * 2, mode="bilinear", antialias=True)
    return classifier((x - classifier.polychrome_mean.to(x)) / classifier.polychrome_std.to(x)).argmax(1)


@torch.no_grad()
def evaluate(
    model: Colorizer,
    data: str,
    size: int | None = None,
    eval_size: int | None = None,
    temperature: float = 0.38,
    limit: int | None = None,
    classifier=None,
    segment_threshold: int = 10,
    batch_size: int = 64,
    workers: int = 2,
    device: str = "cpu",
    name: str = "",
) -> dict:
    """Evaluate ``model`` on the dataset ``data`` (see the module docstring); returns the results dict."""
    torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over (see train.py)
    size = size or getattr(model, "input_size", None) or 256
    dataset = open_dataset(data, eval_transform(eval_size) if eval_size else None)
    classes = classes_of(dataset)
    if limit is not None and limit < len(dataset):  # a fixed random sample, not the first (one-class) files
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:limit]
        dataset = Subset(dataset, sorted(chosen.tolist()))
    source_index = dataset.indices if isinstance(dataset, Subset) else range(len(dataset))
    loader = DataLoader(_Indexed(dataset), batch_size=batch_size, num_workers=workers, collate_fn=_as_list)
    model = model.to(device).eval()
    curves = AccuracyCurves(ab_gamut("zhang").to(device))
    segments = SegmentCurve()
    totals = _Totals()
    start = time.perf_counter()
    for batch in loader:
        good = []
        for image, label, index in batch:
            if isinstance(image, Exception):
                totals.unreadable.append(str(image))
            else:  # per-image results are keyed by the index in the whole dataset
                good.append((image.to(device), int(label), int(source_index[index])))
        labs = [uint8_to_lab(image[None])[0] for image, _, _ in good]
        colour = [not bool(is_grayscale(lab[None, 1:])) for lab in labs]
        totals.images += len(good)
        totals.gray += colour.count(False)
        kept = [(sample, lab) for sample, lab, keep in zip(good, labs, colour) if keep]
        predictions = predict_full_ab(model, [lab[:1] for _, lab in kept], size, temperature)
        groups: dict[tuple, list] = {}  # images of one size are measured as one stacked batch
        for (sample, lab), ab in zip(kept, predictions):
            groups.setdefault(tuple(lab.shape), []).append((sample, lab, ab))
        for members in groups.values():
            _measure(members, dataset, eval_size, segment_threshold, classifier, curves, segments, totals)
    seconds = time.perf_counter() - start
    return _results(name or type(model).__name__, data, size, eval_size, temperature, segment_threshold, classes,
                    curves, segments, totals, seconds)


def _measure(members, dataset, eval_size, segment_threshold, classifier, curves, segments, totals) -> None:
    """Measure a stack of same-sized images: members are ((image, label, index), lab, predicted ab)."""
    images = torch.stack([image for (image, _, _), _, _ in members])
    labels = [label for (_, label, _), _, _ in members]
    indices = [index for (_, _, index), _, _ in members]
    lab = torch.stack([lab for _, lab, _ in members])
    ab = torch.stack([ab for _, _, ab in members])
    truth_ab = lab[:, 1:]
    curves.update(ab, truth_ab)
    error = torch.linalg.vector_norm(ab - truth_ab, dim=1)  # (n, H, W)
    totals.l1 += float((ab - truth_ab).abs().sum())
    predicted_rgb = lab_to_uint8(torch.cat([lab[:, :1], ab], dim=1))
    totals.psnr += psnr(predicted_rgb, images).tolist()
    totals.ssim += ssim(predicted_rgb, images).tolist()
    totals.colorfulness += colorfulness(predicted_rgb).tolist()
    totals.colorfulness_truth += colorfulness(images).tolist()
    totals.mean_ab += list(torch.cat([ab.mean(dim=(2, 3)), truth_ab.mean(dim=(2, 3))], dim=1).double().cpu())
    totals.nazeri += float(nazeri_correct(uint8_to_lab(predicted_rgb), lab).sum())
    false = false_color(ab, truth_ab).flatten(1).double()
    totals.false_color += float(false.sum())
    if len(members) > 1:
        totals.prediction_spread = max(float(prediction_spread(ab)), totals.prediction_spread or 0.0)
    for k, index in enumerate(indices):
        totals.per_image_error[index] = float(error[k].mean())
        totals.per_image_false_color[index] = float(false[k].mean())
        segmentation = bsds_segments(_source_path(dataset, index)) if eval_size is None else None  # index: whole dataset
        totals.segment_sources.add("bsds500" if segmentation is not None else "slic")
        if segmentation is None:
            segmentation = _truth_segments(images[k])
        segments.update(segment_median_errors(error[k].cpu(), segmentation))
        if labels[k] >= 0:
            per_class = totals.per_class.setdefault(labels[k], [0, 0.0, torch.zeros(MAX_THRESHOLD + 2, dtype=torch.float64)])
            per_class[0] += 1
            per_class[1] += float(error[k].sum())
            per_class[2] += error_histogram(error[k])
    if classifier is not None and min(labels) >= 0:
        truth = torch.tensor(labels)
        key = (getattr(classifier, "polychrome_source", id(classifier)), _digest(images))
        gray = _memo(("classify", "gray", *key),
                     lambda: _classify(classifier, lab_to_uint8(torch.cat([lab[:, :1], torch.zeros_like(ab)], dim=1)).cpu()))
        of_truth = _memo(("classify", "truth", *key), lambda: _classify(classifier, images.cpu()))
        for column, predicted in enumerate((_classify(classifier, predicted_rgb.cpu()), gray, of_truth)):
            totals.classifier[column] += float((predicted == truth).sum())
        totals.classifier[3] += len(labels)


def _results(name, data, size, eval_size, temperature, segment_threshold, classes, curves, segments, totals, seconds) -> dict:
    if curves.pixels == 0:
        raise ValueError(f"no colour images to evaluate in {data} ({totals.images} read, {totals.gray} grayscale)")
    scores = curves.auc()
    raw, rebalanced = curves.curves()
    pixels = curves.pixels
    mean = lambda values: float(np.mean(values))  # noqa: E731
    seen = totals.classifier[3]
    mean_ab = torch.stack(totals.mean_ab)
    per_class = {
        str(classes[label]) if label < len(classes) else str(label): {
            "images": count, "mean_ab_error": error_sum / float(histogram.sum()), "auc_raw": area_under(curve_from_histogram(histogram)),
        } for label, (count, error_sum, histogram) in sorted(totals.per_class.items())
    }
    return {
        "model": name, "data": data,
        "protocol": {"size": size, "eval_size": eval_size, "temperature": temperature,
                     "resolution": f"{eval_size}x{eval_size} (resized, centre-cropped)" if eval_size else "each image's own",
                     "model_input": f"L resized to {size}x{size}; ab upsampled bilinearly and joined with the image's own L"},
        "images": totals.images - totals.gray, "grayscale_skipped": totals.gray, "unreadable": totals.unreadable, "pixels": pixels,
        "total_ab_error": scores["mean_ab_error"] * pixels, "mean_ab_error": scores["mean_ab_error"], "mean_ab_l1": totals.l1 / pixels,
        "auc_raw": scores["auc_raw"], "auc_rebalanced": scores["auc_rebalanced"],
        "psnr": mean(totals.psnr), "ssim": float(np.nanmean(totals.ssim)) if not np.isnan(totals.ssim).all() else None,
        "colorfulness": mean(totals.colorfulness), "colorfulness_truth": mean(totals.colorfulness_truth),
        "delta_colorfulness": mean(np.abs(np.array(totals.colorfulness) - np.array(totals.colorfulness_truth))),
        "tint": mean_ab[:, :2].mean(0).tolist(), "tint_truth": mean_ab[:, 2:].mean(0).tolist(),
        "tint_error": float(torch.linalg.vector_norm(mean_ab[:, :2] - mean_ab[:, 2:], dim=1).mean()),
        "false_color": totals.false_color / pixels, "prediction_spread": totals.prediction_spread,
        "pixel_accuracy_2pct": totals.nazeri / pixels,
        "segment_accuracy": segments.accuracy(segment_threshold), "segment_threshold": segment_threshold,
        "segment_source": "+".join(sorted(totals.segment_sources)), "segments": segments.segments,
        "classifier_accuracy": totals.classifier[0] / seen if seen else None,
        "classifier_accuracy_gray": totals.classifier[1] / seen if seen else None,
        "classifier_accuracy_truth": totals.classifier[2] / seen if seen else None,
        "per_class": per_class,
        "curves": {"raw": raw.tolist(), "rebalanced": rebalanced.tolist(), "segments": segments.curve().tolist()},
        "per_image_error": totals.per_image_error, "per_image_false_color": totals.per_image_false_color,
        "seconds": seconds,
    }
