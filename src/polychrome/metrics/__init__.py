"""The colour measures: one table, ``MEASURES``, that every report reads (compare's table, training-time
validation, the default-model selection, the studies), and the ``torchmetrics.Metric`` behind each entry.

A new measure is a ``Metric`` in ``measures.py`` whose ``compute`` returns it by name, and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchmetrics import MetricCollection

from polychrome.metrics.functional import (
    FALSE_COLOR_MARGIN,
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
)
from polychrome.metrics.measures import (
    PSNR,
    SSIM,
    AccuracyCurves,
    ClassifierAccuracy,
    Colorfulness,
    MeanAbsoluteAB,
    PerClass,
    PerImage,
    PixelFractions,
    PredictionSpread,
    SegmentAccuracy,
    Tint,
    TruthCache,
)


@dataclass(frozen=True)
class Measure:
    """One reported number (or pair, curve, table): the Metric class that computes it, how to print it
    (a format spec, "auto", or None for what is not one number), which way is better ("higher", "lower",
    or None where nearer the truth's own value is better or it is not a score), whether compare's table
    shows it, and what it means."""

    metric: type
    format: str | None
    better: str | None
    meaning: str
    table: bool = False


MEASURES: dict[str, Measure] = {
    "mean_ab_error": Measure(
        AccuracyCurves, "auto", "lower", "mean over pixels of the L2 ab distance to the truth (Lab units)", True
    ),
    "total_ab_error": Measure(AccuracyCurves, "auto", "lower", "sum over pixels of the L2 ab distance", True),
    "mean_ab_l1": Measure(MeanAbsoluteAB, "auto", "lower", "mean over pixels of |da| + |db|", True),
    "auc_raw": Measure(
        AccuracyCurves, "auto", "higher", "Zhang et al.'s AuC of pixels within t = 0..150 ab units, in percent", True
    ),
    "auc_rebalanced": Measure(
        AccuracyCurves, "auto", "higher", "the same, each pixel weighted by 1 / its true colour's frequency", True
    ),
    "psnr": Measure(PSNR, "auto", "higher", "mean over images of RGB PSNR (dB, data range 255)", True),
    "ssim": Measure(SSIM, "auto", "higher", "mean over images of RGB SSIM (scikit-image's settings, by kornia)", True),
    "colorfulness": Measure(
        Colorfulness,
        "auto",
        None,
        "Hasler and Suesstrunk's colourfulness of the predictions (nearer the truth's is better)",
        True,
    ),
    "colorfulness_truth": Measure(Colorfulness, "auto", None, "the same of the true images"),
    "colorfulness_gap": Measure(
        Colorfulness, "auto", "lower", "|colourfulness - the truth's|: too much colour counts as much as too little"
    ),
    "delta_colorfulness": Measure(
        Colorfulness, "auto", "lower", "mean over images of |colourfulness - the truth's|", True
    ),
    "tint": Measure(Tint, ".1f", None, "mean predicted a, b over images (a cast shows here)"),
    "tint_truth": Measure(Tint, ".1f", None, "mean true a, b over images"),
    "tint_error": Measure(
        Tint, "auto", "lower", "mean over images of the distance between predicted and true mean ab", True
    ),
    "false_color": Measure(
        PixelFractions,
        "auto",
        "lower",
        "fraction of pixels at least 20 ab units further from the truth than gray",
        True,
    ),
    "pixel_accuracy_2pct": Measure(
        PixelFractions, "auto", "higher", "Nazeri et al.: fraction with |dL| <= 2, |da|, |db| <= 4.4", True
    ),
    "prediction_spread": Measure(
        PredictionSpread,
        "auto",
        "higher",
        "largest difference between two same-sized images' predictions; 0: input ignored",
    ),
    "segment_accuracy": Measure(
        SegmentAccuracy, "auto", "higher", "fraction of segments whose majority is within the threshold", True
    ),
    "classifier_accuracy": Measure(
        ClassifierAccuracy, "auto", "higher", "top-1 of a classifier on the colourised images", True
    ),
    "classifier_accuracy_gray": Measure(ClassifierAccuracy, "auto", "higher", "the same on the gray images"),
    "classifier_accuracy_truth": Measure(ClassifierAccuracy, "auto", "higher", "the same on the true images"),
    "curve_raw": Measure(AccuracyCurves, None, "higher", "raw accuracy at t = 0..150 (evaluate's curves.raw)"),
    "curve_rebalanced": Measure(
        AccuracyCurves, None, "higher", "rebalanced accuracy at t = 0..150 (curves.rebalanced)"
    ),
    "curve_segments": Measure(SegmentAccuracy, None, "higher", "segment accuracy at t = 0..150 (curves.segments)"),
    "per_class": Measure(PerClass, None, None, "images, mean ab error and raw AuC of each class"),
    "per_image_error": Measure(PerImage, None, None, "each image's mean ab error, by its index in the dataset"),
    "per_image_false_color": Measure(PerImage, None, None, "each image's false-colour fraction"),
}

CURVES = {
    "curve_raw": "raw",
    "curve_rebalanced": "rebalanced",
    "curve_segments": "segments",
}  # evaluate nests them as curves.<kind>


def reported(name: str) -> str:
    """Where evaluate's results dict holds a measure: a curve under ``curves``, anything else at the top."""
    return f"curves.{CURVES[name]}" if name in CURVES else name


def format_value(value, spec: str | None = "auto") -> str:
    """A measure's value as text: "auto" gives 4 significant digits below 1 and from 10,000 on, else two
    decimals (compare's table); a pair is formatted element by element; None is empty."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, spec) for v in value)
    if not isinstance(value, float) or spec is None:
        return str(value)
    if spec == "auto":
        return f"{value:.4g}" if abs(value) >= 1e4 or abs(value) < 1 else f"{value:.2f}"
    return format(value, spec)


def metrics_for(names, **context) -> MetricCollection:
    """One Metric for each class behind ``names`` (an entry of MEASURES each), built with the keywords of
    ``context`` its constructor takes (bins, classes, threshold, classifier, cache)."""
    import inspect

    unknown = [name for name in names if name not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measures {unknown}: choose from {', '.join(MEASURES)}")
    classes = dict.fromkeys(MEASURES[name].metric for name in names)
    built = {}
    for cls in classes:
        accepted = inspect.signature(cls).parameters
        built[cls.__name__] = cls(**{key: value for key, value in context.items() if key in accepted})
    return MetricCollection(built, compute_groups=False)


def compute_all(metrics: MetricCollection) -> dict:
    """Every metric's results in one dict (the collection's own compute would prefix nested names)."""
    return {name: value for metric in metrics.values() for name, value in metric.compute().items()}


__all__ = [
    "CURVES",
    "FALSE_COLOR_MARGIN",
    "MAX_THRESHOLD",
    "MEASURES",
    "PSNR",
    "SSIM",
    "AccuracyCurves",
    "ClassifierAccuracy",
    "Colorfulness",
    "MeanAbsoluteAB",
    "Measure",
    "PerClass",
    "PerImage",
    "PixelFractions",
    "PredictionSpread",
    "SegmentAccuracy",
    "Tint",
    "TruthCache",
    "area_under",
    "as_gray",
    "colorfulness",
    "compute_all",
    "curve_from_histogram",
    "error_histogram",
    "false_color",
    "format_value",
    "metrics_for",
    "nazeri_correct",
    "prediction_spread",
    "psnr",
    "reported",
    "segment_median_errors",
    "ssim",
]
