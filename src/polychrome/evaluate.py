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
  ``colorfulness_gap``: |colorfulness - colorfulness_truth|, too much colour counting as much as too little.
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

``intervals=R`` adds each summed measure's 95% test-set interval (``intervals``: [low, high]), a bootstrap of R
replicates over blocks of the evaluated images, taken in a seeded random order (``polychrome.metrics.intervals``):
how far the number could move had other test photos been drawn, beside what retraining moves it (seeds). Only
``prediction_spread``, the largest difference within a stack of images, depends on which images share a stack.

Each measure is a ``torchmetrics.Metric`` listed in ``polychrome.metrics.MEASURES``; this module loads the
images, groups them by size, hands each group to every metric and collects what they compute.

With hints (``HintProtocol``, Zhang et al. 2017's protocol), each image gets N local hints simulated from its
truth at the resolution it is measured at (the model sees them through the pipeline at its input size; Levin at
the image's own), and optionally global hints from its truth or from a reference photo; the results' protocol
records the settings (``protocol["hints"]``).
"""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from polychrome.classifier import Classifier, load_classifier
from polychrome.color import DEFAULT_TEMPERATURE, ab_gamut, is_grayscale, lab_to_uint8, uint8_to_lab
from polychrome.data import DatasetSpec, SkipUnreadable, eval_transform, open_dataset, parse_spec
from polychrome.data.datasets import classes_of, length
from polychrome.hints import PLACEMENTS, GlobalHint, LocalHint, evaluation_hints
from polychrome.metrics import CURVES, MEASURES, TruthCache, compute_all, metrics_for
from polychrome.metrics.intervals import LEVEL, BlockSums, images_per_block
from polychrome.metrics.measures import digest
from polychrome.models import Colorizer, LoadedModel, ModelCard, upsample_ab
from polychrome.person import ClickProtocol, PersonRun, run_person, summarize_runs
from polychrome.pipeline import ColorizationPipeline, flushing_subnormals

__all__ = [
    "HintProtocol",
    "TruthCache",
    "bsds_segments",
    "default_fit_data",
    "evaluate",
    "load_classifier",
    "slic_segments",
]

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


def source_path(dataset: Dataset, index: int) -> Path | None:
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


GLOBAL_HINT_SOURCES = "truth or reference:DIR"


@dataclass(frozen=True)
class HintProtocol:
    """The simulated hints of an evaluation, as Zhang et al. 2017 measure guided colourisation.

    ``count`` local hints per image, simulated from its truth at the resolution it is measured at
    (``polychrome.hints.evaluation_hints``: seeded by (``seed``, the image's index in the whole dataset) alone, so
    every model of a comparison gets the same hints whatever the batching or ``limit``, and the first k of N hints
    are the hints for k). ``global_hints``: None, ``"truth"`` (each image's own ``GlobalHint.from_lab``) or
    ``"reference:DIR"`` (the global hint of the photo in DIR with the test image's file stem). ``withheld`` says
    why a model of a comparison got fewer hints than asked (it takes none, or no global hints).
    """

    count: int = 0
    seed: int = 0
    placement: str = "gaussian"
    global_hints: str | None = None
    withheld: str = ""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"--hints {self.count}: give the number of hints per image, 0 or more")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"hint placement {self.placement!r}: choose one of {', '.join(PLACEMENTS)}")
        if self.global_hints not in (None, "truth") and not str(self.global_hints).startswith("reference:"):
            raise ValueError(f"--global-hints {self.global_hints!r}: give {GLOBAL_HINT_SOURCES}")
        folder = self.reference_folder
        if folder is not None and not folder.is_dir():
            raise ValueError(f"--global-hints {self.global_hints}: {folder} is not a folder of reference photos")

    @property
    def reference_folder(self) -> Path | None:
        source = self.global_hints or ""
        return Path(source.removeprefix("reference:")) if source.startswith("reference:") else None

    def check(self, pipeline: ColorizationPipeline) -> None:
        """The one-line refusal of hints by a model that does not take them (``check_hints``)."""
        pipeline.check_hints(self.count > 0, self.global_hints is not None)

    def taken_by(self, card: ModelCard, name: str) -> HintProtocol:
        """The hints a model of a comparison is given: the kinds it takes, ``withheld`` naming the rest, so
        models without hints still appear, as the no-hint baselines."""
        local = self.count if "ab_hints" in card.inputs else 0
        global_hints = self.global_hints if "global_hints" in card.inputs else None
        withheld = [
            kind
            for kind, dropped in (("local", local < self.count), ("global", global_hints != self.global_hints))
            if dropped
        ]
        if not withheld:
            return self
        reason = f"{name} takes no {' or '.join(withheld)} hints; the others were given {self.describe()}"
        return replace(self, count=local, global_hints=global_hints, withheld=reason)

    def describe(self) -> str:
        """The protocol in words, for the printed summary."""
        global_hints = f", global hints from the {self.global_hints}" if self.global_hints else ""
        return f"{self.count} simulated hints per image (seed {self.seed}, {self.placement}){global_hints}"

    def record(self) -> dict | None:
        """The settings as the results' ``protocol["hints"]``: None for an evaluation without hints."""
        if not self.count and self.global_hints is None and not self.withheld:
            return None
        return {
            "count": self.count,
            "seed": self.seed,
            "placement": self.placement,
            "global": self.global_hints,
            "simulated": "from each image's truth, at the resolution it is measured at",
            **({"withheld": self.withheld} if self.withheld else {}),
        }

    @classmethod
    def from_record(cls, record: dict | None) -> HintProtocol:
        """The protocol a results dict recorded (``record``), to colour its example images with the same hints."""
        if record is None:
            return cls()
        return cls(record["count"], record["seed"], record["placement"], record["global"], record.get("withheld", ""))

    def reference_of(self, path: Path | None) -> Path:
        """The reference photo for the test image at ``path``: the one file in the folder with its stem."""
        folder = self.reference_folder
        assert folder is not None
        if path is None:
            raise ValueError(f"--global-hints {self.global_hints} needs test images with file names (folder:...)")
        matches = sorted(p for p in folder.glob(glob.escape(path.stem) + ".*") if p.is_file())
        if len(matches) != 1:
            problem = "no reference photo" if not matches else f"{len(matches)} reference photos"
            raise ValueError(
                f"--global-hints {self.global_hints}: {problem} {folder / path.stem}.* for the test image "
                f"{path.name}; put exactly one photo named {path.stem}.<ext> there, or use --global-hints truth"
            )
        return matches[0]

    def for_images(
        self, labs: list[Tensor], indices: list[int], paths: list[Path | None]
    ) -> tuple[list[tuple[LocalHint, ...]] | None, list[GlobalHint | None] | None]:
        """Each image's local and global hints (None for a kind not given), from its true Lab (3, H, W) (L in
        [0, 100], ab in about [-110, 110]), its index in the whole dataset and its file."""
        local = None
        if self.count:
            local = [
                evaluation_hints(lab, self.seed, index, self.count, self.placement)
                for lab, index in zip(labs, indices, strict=True)
            ]
        global_hints: list[GlobalHint | None] | None = None
        if self.global_hints == "truth":
            global_hints = [GlobalHint.from_lab(lab) for lab in labs]
        elif self.global_hints is not None:
            global_hints = [GlobalHint.from_file(self.reference_of(path)) for path in paths]
        return local, global_hints


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
    hints: HintProtocol | None = None,
    intervals: int = 0,
    clicks: ClickProtocol | None = None,
) -> dict:
    """Evaluate ``model`` on the dataset ``data`` (see the module docstring); returns the results dict.

    ``cache`` keeps what depends on the true images only (segments, the classifier's answers on the true
    and gray images): pass one object to every evaluation of a set to compute that once. ``hints``: the
    simulated hints each image gets (a model that does not take them refuses them in one line). ``intervals``:
    bootstrap replicates of the test-set intervals (0: none). ``clicks``: a simulated person (``polychrome.person``)."""
    pipeline = ColorizationPipeline(model, device, name)  # the network on the device, and its card
    hints, clicks = hints or HintProtocol(), clicks or ClickProtocol()
    size = size or pipeline.input_size
    dataset = _open(data, eval_size, limit)
    source_index = dataset.indices if isinstance(dataset, Subset) else range(length(dataset))
    _check_inputs(pipeline, dataset, source_index, hints, clicks, eval_size)
    loader = _loader(dataset, batch_size, workers, shuffled=bool(intervals))
    cache = cache or TruthCache()
    metrics = metrics_for(
        list(MEASURES),
        bins=ab_gamut("zhang"),
        classes=classes_of(dataset),
        threshold=segment_threshold,
        classifier=classifier,
        cache=cache,
    ).to(device)
    feed = BlockSums(metrics, images_per_block(len(source_index))) if intervals else metrics
    reading = _Reading()
    start = time.perf_counter()
    with flushing_subnormals():
        for batch in loader:
            kept = _read(batch, source_index, device, reading)
            labs, indices = [lab for *_, lab in kept], [index for _, _, index, _ in kept]
            local, global_hints = hints.for_images(labs, indices, [source_path(dataset, i) for i in indices])
            predicted = _full_ab(pipeline, [lab[:1] for lab in labs], size, temperature, local, global_hints)
            for group in _by_size(kept, predicted):
                feed.update(**_measurements(group, dataset, eval_size, cache))
    seconds = time.perf_counter() - start
    if reading.images == reading.gray:
        raise ValueError(f"no colour images to evaluate in {data} ({reading.images} read, {reading.gray} grayscale)")
    protocol = _protocol(pipeline.card, size, eval_size, temperature, hints)
    results = _results(name or pipeline.card.name, data, protocol, reading, compute_all(metrics), seconds)
    results |= _click_curves(pipeline, dataset, source_index, clicks, size, temperature, hints, device)
    return _with_intervals(results, feed, intervals) if isinstance(feed, BlockSums) else results


def _full_ab(
    pipeline: ColorizationPipeline, lightness: list[Tensor], size: int, temperature: float, local, global_hints
) -> list[Tensor]:
    """Each photo's ab (2, H, W) at its own size, the pipeline seeing its L (1, H, W) at ``size`` with its
    local and global hints, as every caller of the pipeline gets it."""
    photos = [pipeline.prepare_lightness(plane, size=size) for plane in lightness]
    predictions = pipeline.predict(photos, local, global_hints, temperature)
    return [upsample_ab(p.ab[None], p.photo.size)[0] for p in predictions]


def _check_inputs(
    pipeline: ColorizationPipeline,
    dataset: Dataset,
    source_index,
    hints: HintProtocol,
    clicks: ClickProtocol,
    eval_size: int | None,
) -> None:
    """Refuse now, not after hours, what the model does not take and a missing reference photo or segmentation."""
    hints.check(pipeline)
    pipeline.check_hints(clicks.clicks > 0, False)
    if hints.reference_folder is not None:
        for index in source_index:
            hints.reference_of(source_path(dataset, index))
    if clicks.clicks and clicks.person == "segments":
        if eval_size is not None:
            raise ValueError(
                f"--person segments clicks on the photos' human segmentations: drop --eval-size {eval_size}"
            )
        for index in source_index:
            _human_segments(dataset, index)


def _human_segments(dataset: Dataset, index: int) -> Tensor:
    """The BSDS500 human segmentation of sample ``index``, or a ValueError naming the photo and the fix."""
    segments = bsds_segments(source_path(dataset, index))
    if segments is None:
        raise ValueError(
            f"--person segments: no human segmentation for {source_path(dataset, index) or f'image {index}'} "
            "(BSDS500's groundTruth/<split>/<id>.mat beside images/<split>/); use --person errors"
        )
    return segments


def _click_curves(
    pipeline: ColorizationPipeline,
    dataset: Dataset,
    source_index,
    clicks: ClickProtocol,
    size: int,
    temperature: float,
    hints: HintProtocol,
    device: str,
) -> dict:
    """``{"clicks": the click curves}`` of a simulated person's clicks on every colour photo (``polychrome.person``),
    photo by photo: each photo prepared once, then per click one prediction with all clicks so far. The global
    hints are the protocol's; the clicks are the only local hints. ``{}`` without clicks."""
    if not clicks.clicks:
        return {}
    runs: dict[int, PersonRun] = {}
    start = time.perf_counter()
    with flushing_subnormals():
        for batch in _loader(dataset, 1, 0, shuffled=False):
            for image, _, index, lab in _read(batch, source_index, device, _Reading()):
                _, global_hints = hints.for_images([lab], [index], [source_path(dataset, index)])
                segments = _human_segments(dataset, index) if clicks.person == "segments" else None
                photo = pipeline.prepare_lightness(lab[:1], size=size)
                reference = global_hints[0] if global_hints else None
                runs[index] = run_person(
                    pipeline, photo, image, lab, clicks.clicks, clicks.person, segments, reference, temperature
                )
    return {"clicks": summarize_runs(runs, clicks) | {"seconds": time.perf_counter() - start}}


def _with_intervals(results: dict, blocks: BlockSums, replicates: int) -> dict:
    """The results with each summed measure's test-set interval, and how it was drawn in the protocol."""
    results["protocol"]["intervals"] = {
        "replicates": replicates,
        "level": LEVEL,
        "blocks": blocks.count,
        "images_per_block": blocks.per_block,
        "method": "bias-corrected percentile bootstrap over blocks of test images taken in a seeded random order",
    }
    return results | {"intervals": blocks.intervals(replicates)}


def _loader(dataset: Dataset, batch_size: int, workers: int, shuffled: bool) -> DataLoader:
    """Lists of (image, label, index). ``shuffled`` (with test-set intervals): a seeded random order, so that
    blocks of consecutive photos are random draws even where a dataset is stored class by class (every sum,
    so every measure, is the same in any order)."""
    order = torch.randperm(length(dataset), generator=torch.Generator().manual_seed(0)).tolist() if shuffled else None
    return DataLoader(_Indexed(dataset), batch_size=batch_size, sampler=order, num_workers=workers, collate_fn=_as_list)


def _protocol(card: ModelCard, size: int, eval_size: int | None, temperature: float, hints: HintProtocol) -> dict:
    """The results' protocol section: how the images were measured and what the model saw."""
    seen = "the image's own L (a full-resolution model)" if card.full_resolution else f"L resized to {size}x{size}"
    return {
        "size": size,
        "eval_size": eval_size,
        "temperature": temperature,
        "resolution": f"{eval_size}x{eval_size} (resized, centre-cropped)" if eval_size else "each image's own",
        "model_input": f"{seen}; ab upsampled bilinearly and joined with the image's own L",
        "hint_propagation": card.hint_propagation,
        "hint_decay": card.hint_decay,
        "hint_prior_weight": card.hint_prior_weight,
        "hint_decay_falloff": card.hint_decay_falloff,
        "hints": hints.record(),
    }


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
    hand = [bsds_segments(source_path(dataset, index)) if eval_size is None else None for index in indices]
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
        "colorfulness_gap",
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
