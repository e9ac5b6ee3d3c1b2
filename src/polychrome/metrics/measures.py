"""Every colour measure as a ``torchmetrics.Metric``: states that sum (or concatenate, or take the largest)
across processes, so DDP validation and ``polychrome evaluate`` run one implementation.

Each ``update`` takes the keyword arguments it needs out of one set, passed whole to every metric (a
``MetricCollection`` hands each metric only the ones its ``update`` names):

- ``predicted_ab``, ``truth_ab``: (N, 2, H, W) in Lab units, at the image's own resolution;
- ``truth_lab``: (N, 3, H, W), L in [0, 100];
- ``predicted_rgb``, ``truth_rgb``: uint8 (N, 3, H, W), the prediction joined with the true L, and the photo;
- ``labels``: (N,) class indices, -1 where an image has none; ``indices``: (N,) positions in the dataset;
- ``segments``: one (H, W) integer map per image, ``hand_segmented``: (N,) bool, True for human annotations.

``compute`` returns a dict of results named as in ``polychrome.metrics.MEASURES``.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from polychrome.color import encode_hard, uint8_to_lab
from polychrome.metrics.functional import (
    MAX_THRESHOLD,
    area_under,
    as_gray,
    colorfulness,
    curve_from_histogram,
    error_histogram,
    false_color,
    nazeri_correct,
    prediction_spread,
    psnr,
    segment_median_errors,
    ssim,
    threshold_steps,
)


def _ab_error(predicted_ab: Tensor, truth_ab: Tensor) -> Tensor:
    """Per-pixel L2 ab distance (N, H, W), float32 as the measures have always taken it."""
    return torch.linalg.vector_norm(predicted_ab - truth_ab, dim=1)


class _Measure(Metric):
    """What every measure here shares: ``update`` needs no gradient, and no measure needs the whole state
    to update (so ``forward`` updates once). ``summed_states`` names the states that add up across updates
    (``_sum``); a metric whose states all do can be bootstrapped over blocks of images (``intervals``)."""

    full_state_update = False
    is_differentiable = False
    summed_states: tuple[str, ...] = ()

    def _sum(self, name: str, shape: tuple = ()) -> None:
        self.add_state(name, torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.summed_states = (*self.summed_states, name)


class AccuracyCurves(_Measure):
    """Zhang et al.'s raw and rebalanced accuracy curves and AuC, total and mean ab error.

    Errors are histogrammed per ground-truth bin, so the curves are exact from a (Q, max_threshold + 2)
    table of counts: ``raw`` counts every pixel alike; ``rebalanced`` weights each pixel by 1 / (frequency of
    its ground-truth bin in the evaluated set), i.e. averages the curves of the bins present."""

    counts: Tensor
    error_sum: Tensor
    bins: Tensor

    def __init__(self, bins: Tensor, max_threshold: int = MAX_THRESHOLD, **kwargs):
        super().__init__(**kwargs)
        self.max_threshold = max_threshold
        self.register_buffer("bins", bins.float(), persistent=False)
        self._sum("counts", (len(bins), max_threshold + 2))
        self._sum("error_sum")

    def update(self, predicted_ab: Tensor, truth_ab: Tensor) -> None:
        error = torch.linalg.vector_norm((predicted_ab - truth_ab).double(), dim=1)  # (N, H, W)
        self.error_sum += error.sum()
        truth = encode_hard(truth_ab.float(), self.bins.to(truth_ab.device)).flatten()
        flat = truth * (self.max_threshold + 2) + threshold_steps(error, self.max_threshold)
        self.counts += torch.bincount(flat, minlength=self.counts.numel()).reshape(self.counts.shape).to(self.counts)

    @property
    def pixels(self) -> int:
        return int(self.counts.sum())

    def curves(self) -> tuple[Tensor, Tensor]:
        """(raw, rebalanced) accuracy at t = 0..max_threshold, each (max_threshold + 1,) in [0, 1]."""
        counts = self.counts.cpu()
        cumulative = counts.cumsum(dim=1)[:, : self.max_threshold + 1]
        per_bin_total = counts.sum(dim=1, keepdim=True)
        raw = cumulative.sum(dim=0) / per_bin_total.sum()
        present = per_bin_total[:, 0] > 0
        return raw, (cumulative[present] / per_bin_total[present]).mean(dim=0)

    def auc(self) -> dict[str, float]:
        if self.pixels == 0:
            raise ValueError("no pixels were accumulated")
        raw, rebalanced = self.curves()
        return {
            "auc_raw": area_under(raw),
            "auc_rebalanced": area_under(rebalanced),
            "mean_ab_error": float(self.error_sum) / self.pixels,
        }

    def compute(self) -> dict:
        """The results; None for each where no pixel was measured (all images gray, say)."""
        if self.pixels == 0:
            return dict.fromkeys(
                ("total_ab_error", "auc_raw", "auc_rebalanced", "mean_ab_error", "curve_raw", "curve_rebalanced")
            ) | {"pixels": 0}
        scores, (raw, rebalanced) = self.auc(), self.curves()
        return {
            "pixels": self.pixels,
            "total_ab_error": scores["mean_ab_error"] * self.pixels,
            **scores,
            "curve_raw": raw.tolist(),
            "curve_rebalanced": rebalanced.tolist(),
        }


class MeanAbsoluteAB(_Measure):
    """Mean over pixels of |da| + |db|."""

    total: Tensor
    pixels: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._sum("total")
        self._sum("pixels")

    def update(self, predicted_ab: Tensor, truth_ab: Tensor) -> None:
        self.total += (predicted_ab - truth_ab).abs().sum().double()
        self.pixels += truth_ab[:, 0].numel()

    def compute(self) -> dict:
        return {"mean_ab_l1": float(self.total / self.pixels)}


class PSNR(_Measure):
    """Mean over images of each image's PSNR (RGB uint8, data range 255; inf for an identical image)."""

    total: Tensor
    images: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._sum("total")
        self._sum("images")

    def update(self, predicted_rgb: Tensor, truth_rgb: Tensor) -> None:
        self.total += psnr(predicted_rgb, truth_rgb).sum()
        self.images += len(truth_rgb)

    def compute(self) -> dict:
        return {"psnr": float(self.total / self.images)}


class SSIM(_Measure):
    """Mean over images of each image's SSIM (``functional.ssim``); images under 11 pixels on a side have
    none and are left out; None when no image has one."""

    total: Tensor
    images: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._sum("total")
        self._sum("images")

    def update(self, predicted_rgb: Tensor, truth_rgb: Tensor) -> None:
        values = ssim(predicted_rgb, truth_rgb)
        known = ~values.isnan()
        self.total += values[known].sum()
        self.images += known.sum()

    def compute(self) -> dict:
        return {"ssim": float(self.total / self.images) if self.images else None}


class Colorfulness(_Measure):
    """Hasler and Suesstrunk's colourfulness of the predictions and of the truth (means over images), the
    distance between those two means, and the mean over images of each image's absolute difference."""

    predicted: Tensor
    truth: Tensor
    difference: Tensor
    images: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("predicted", "truth", "difference", "images"):
            self._sum(name)

    def update(self, predicted_rgb: Tensor, truth_rgb: Tensor) -> None:
        predicted, truth = colorfulness(predicted_rgb), colorfulness(truth_rgb)
        self.predicted += predicted.sum()
        self.truth += truth.sum()
        self.difference += (predicted - truth).abs().sum()
        self.images += len(truth)

    def compute(self) -> dict:
        predicted, truth = float(self.predicted / self.images), float(self.truth / self.images)
        return {
            "colorfulness": predicted,
            "colorfulness_truth": truth,
            "colorfulness_gap": abs(predicted - truth),
            "delta_colorfulness": float(self.difference / self.images),
        }


class Tint(_Measure):
    """The mean ab of the predictions and of the truth over images (each image's mean weighted equally),
    and the mean over images of the L2 distance between an image's predicted and true mean ab."""

    predicted: Tensor
    truth: Tensor
    distance: Tensor
    images: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._sum("predicted", (2,))
        self._sum("truth", (2,))
        self._sum("distance")
        self._sum("images")

    def update(self, predicted_ab: Tensor, truth_ab: Tensor) -> None:
        predicted, truth = predicted_ab.mean(dim=(2, 3)).double(), truth_ab.mean(dim=(2, 3)).double()
        self.predicted += predicted.sum(0)
        self.truth += truth.sum(0)
        self.distance += torch.linalg.vector_norm(predicted - truth, dim=1).sum()
        self.images += len(truth)

    def compute(self) -> dict:
        return {
            "tint": (self.predicted / self.images).tolist(),
            "tint_truth": (self.truth / self.images).tolist(),
            "tint_error": float(self.distance / self.images),
        }


class PixelFractions(_Measure):
    """Fractions of pixels: ``false_color`` (colour at least 20 ab units further from the truth than gray)
    and ``pixel_accuracy_2pct`` (Nazeri et al. 2018: |dL| <= 2 and |da|, |db| <= 4.4 on the RGB uint8 output)."""

    false_color: Tensor
    nazeri: Tensor
    pixels: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("false_color", "nazeri", "pixels"):
            self._sum(name)

    def update(self, predicted_ab: Tensor, truth_ab: Tensor, predicted_rgb: Tensor, truth_lab: Tensor) -> None:
        self.false_color += false_color(predicted_ab, truth_ab).sum()
        self.nazeri += nazeri_correct(uint8_to_lab(predicted_rgb), truth_lab).sum()
        self.pixels += truth_ab[:, 0].numel()

    def compute(self) -> dict:
        return {
            "false_color": float(self.false_color / self.pixels),
            "pixel_accuracy_2pct": float(self.nazeri / self.pixels),
        }


class PredictionSpread(_Measure):
    """The largest difference (ab units) between the predictions for two images of one update (one size);
    None when no update held two images."""

    spread: Tensor
    stacks: Tensor

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("spread", torch.zeros((), dtype=torch.float64), dist_reduce_fx="max")
        self._sum("stacks")

    def update(self, predicted_ab: Tensor) -> None:
        if len(predicted_ab) > 1:
            self.spread = torch.maximum(self.spread, prediction_spread(predicted_ab).to(self.spread))
            self.stacks += 1

    def compute(self) -> dict:
        return {"prediction_spread": float(self.spread) if self.stacks else None}


class PerImage(_Measure):
    """Each image's mean ab error and false-colour fraction, keyed by its index in the dataset."""

    indices: list[Tensor]
    errors: list[Tensor]
    false_colors: list[Tensor]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("indices", "errors", "false_colors"):
            self.add_state(name, [], dist_reduce_fx="cat")

    def update(self, predicted_ab: Tensor, truth_ab: Tensor, indices: Tensor) -> None:
        self.indices.append(indices.to(self.device))
        # image by image, as float32 over (H, W): the same reduction, so the same digits, as evaluate always had
        self.errors.append(torch.stack([error.mean() for error in _ab_error(predicted_ab, truth_ab)]).double())
        self.false_colors.append(false_color(predicted_ab, truth_ab).flatten(1).double().mean(1))

    def compute(self) -> dict:
        indices = dim_zero_cat(self.indices).tolist()
        return {
            "per_image_error": dict(zip(indices, dim_zero_cat(self.errors).tolist(), strict=True)),
            "per_image_false_color": dict(zip(indices, dim_zero_cat(self.false_colors).tolist(), strict=True)),
        }


class PerClass(_Measure):
    """Images, mean ab error and raw AuC of each class (images with a label only)."""

    labels: list[Tensor]
    error_sums: list[Tensor]
    histograms: list[Tensor]

    def __init__(self, classes: list | None = None, **kwargs):
        super().__init__(**kwargs)
        self.classes = list(classes or [])
        for name in ("labels", "error_sums", "histograms"):
            self.add_state(name, [], dist_reduce_fx="cat")

    def update(self, predicted_ab: Tensor, truth_ab: Tensor, labels: Tensor) -> None:
        labelled = labels >= 0
        error = _ab_error(predicted_ab[labelled], truth_ab[labelled])
        self.labels.append(labels[labelled].to(self.device))
        self.error_sums.append(
            torch.stack([e.sum() for e in error]).double() if len(error) else error.new_zeros(0).double()
        )
        self.histograms.append(
            torch.stack([error_histogram(e) for e in error])
            if len(error)
            else error.new_zeros(0, MAX_THRESHOLD + 2).double()
        )

    def compute(self) -> dict:
        labels = dim_zero_cat(self.labels).cpu() if self.labels else torch.zeros(0, dtype=torch.long)
        if not len(labels):
            return {"per_class": {}}
        error_sums, histograms = dim_zero_cat(self.error_sums).cpu(), dim_zero_cat(self.histograms).cpu()
        results = {}
        for label in sorted(set(labels.tolist())):
            mine = labels == label
            histogram = histograms[mine].sum(0)
            name = str(self.classes[label]) if label < len(self.classes) else str(label)
            results[name] = {
                "images": int(mine.sum()),
                "mean_ab_error": float(error_sums[mine].sum() / histogram.sum()),
                "auc_raw": area_under(curve_from_histogram(histogram)),
            }
        return {"per_class": results}


class SegmentAccuracy(_Measure):
    """Object-level accuracy: a segment counts as correct at threshold t when most of its pixels have ab
    error <= t; the fraction correct at ``threshold`` and the curve over t = 0..150."""

    counts: Tensor
    hand_segmented: Tensor
    images: Tensor

    def __init__(self, threshold: int = 10, max_threshold: int = MAX_THRESHOLD, **kwargs):
        super().__init__(**kwargs)
        self.threshold, self.max_threshold = threshold, max_threshold
        self._sum("counts", (max_threshold + 2,))
        self._sum("hand_segmented")
        self._sum("images")

    def update(self, predicted_ab: Tensor, truth_ab: Tensor, segments: list[Tensor], hand_segmented: Tensor) -> None:
        error = _ab_error(predicted_ab, truth_ab)
        for image_error, segmentation in zip(error, segments, strict=True):
            self.counts += error_histogram(
                segment_median_errors(image_error.cpu(), segmentation.cpu()), self.max_threshold
            ).to(self.counts)
        self.hand_segmented += hand_segmented.sum()
        self.images += len(segments)

    def compute(self) -> dict:
        curve = curve_from_histogram(self.counts.cpu())
        sources = ["bsds500"] * bool(self.hand_segmented) + ["slic"] * bool(self.images - self.hand_segmented)
        return {
            "segment_accuracy": float(curve[int(self.threshold)])
            if float(self.threshold).is_integer()
            else float("nan"),
            "segment_threshold": self.threshold,
            "segment_source": "+".join(sources),
            "segments": int(self.counts.sum()),
            "curve_segments": curve.tolist(),
        }


class TruthCache:
    """What depends on the true images only (their SLIC segments, a classifier's answers on them and on their
    gray version) is the same for every model evaluated on a set: kept here by content, it is computed once
    for as long as the caller keeps this object. Bounded: cleared when ``entries`` are held."""

    def __init__(self, entries: int = 100_000):
        self.entries = entries
        self.kept: dict[tuple, Tensor] = {}

    def get(self, key: tuple, compute) -> Tensor:
        if key not in self.kept:
            if len(self.kept) >= self.entries:
                self.kept.clear()
            self.kept[key] = compute()
        return self.kept[key]


def digest(images: Tensor) -> bytes:
    """A key for a stack of images by their content and shape."""
    return hashlib.blake2b(images.cpu().numpy().tobytes(), digest_size=16).digest() + bytes(
        str(tuple(images.shape)), "ascii"
    )


class ClassifierAccuracy(_Measure):
    """Top-1 accuracy of a classifier (``polychrome.classifier.Classifier``) on the colourised images, beside
    the gray and the true ones (only stacks whose images all have labels); None without a classifier."""

    correct: Tensor
    seen: Tensor

    def __init__(self, classifier=None, cache: TruthCache | None = None, **kwargs):
        super().__init__(**kwargs)
        self.classifier, self.cache = classifier, cache or TruthCache()
        self._sum("correct", (3,))  # colourised, gray, truth
        self._sum("seen")

    def update(self, predicted_rgb: Tensor, truth_rgb: Tensor, labels: Tensor) -> None:
        if self.classifier is None or int(labels.min()) < 0:
            return
        key = (self.classifier.source, digest(truth_rgb))
        gray = self.cache.get(("classify", "gray", *key), lambda: self.classifier.predict(as_gray(truth_rgb)))
        truth = self.cache.get(("classify", "truth", *key), lambda: self.classifier.predict(truth_rgb))
        for column, predicted in enumerate((self.classifier.predict(predicted_rgb), gray, truth)):
            self.correct[column] += (predicted.to(labels.device) == labels).sum()
        self.seen += len(labels)

    def compute(self) -> dict:
        names = ("classifier_accuracy", "classifier_accuracy_gray", "classifier_accuracy_truth")
        return {name: float(self.correct[k] / self.seen) if self.seen else None for k, name in enumerate(names)}
