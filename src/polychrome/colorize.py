"""Colourising photos: ``load_colorizer`` (the Python API) and ``colorize_paths`` (``polychrome colorize``).

A photo keeps its own L at full resolution and only gains colour; the network runs at its own input
size (a full-resolution model, Levin et al.'s, at the photo's own). Transparency is kept: the alpha channel
goes to the output unchanged. Files are read one by one, so a bad file (or a bad hint file) is reported with
its reason and never stops the others, and nothing is ever written into or over an input. Colour hints come
from a hint file per photo (docs/hints.md) and a reference photo for all (``attach_hints``).
"""

from __future__ import annotations

import glob
import itertools
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from polychrome.data import ImageReadError, load_rgba, write_png
from polychrome.data.images import image_extensions
from polychrome.files import atomic_path
from polychrome.hints import GlobalHint, LocalHint, load_hint_file
from polychrome.models import load_model
from polychrome.pipeline import REFERENCE_MODELS, ColorizationPipeline, Prediction, PreparedPhoto, to_hwc

__all__ = ["ColorizationPipeline", "Prediction", "attach_hints", "colorize_paths", "load_colorizer", "plan_outputs"]


def load_colorizer(
    name: str = "default", device: str | torch.device = "cpu", backend: str = "torch"
) -> ColorizationPipeline:
    """A model by name: ``default`` (the bundled model), a weights file, a checkpoint or run directory,
    ``gray``, or ``eccv16-official:PATH`` / ``siggraph17-official:PATH`` for the released weights of
    richzhang/colorization. ``backend="onnx"`` runs the network with onnxruntime: ``name`` is then an
    ``.onnx`` file from ``polychrome export-onnx`` (CPU only)."""
    if backend == "onnx":
        from polychrome.onnx_backend import load_onnx

        if torch.device(device).type != "cpu":
            raise ValueError(f"an ONNX model runs on the CPU only, not on {device}")
        model = load_onnx(name)
    elif backend == "torch":
        model = load_model(name)
    else:
        raise ValueError(f"backend must be torch or onnx, got {backend!r}")
    return ColorizationPipeline(model, device, name)


@dataclass
class Job:
    source: Path
    target: Path
    hint_file: Path | None = None  # its colour hints (docs/hints.md), or None: no local hints


@dataclass
class _Loaded:
    """A photo read for colourising (its L at full size and at the network's, its alpha) and the hints
    that steer it."""

    job: Job
    photo: PreparedPhoto
    local: list[LocalHint]
    reference: GlobalHint | None


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def plan_outputs(
    inputs: list[str], out: str | Path, allow_inside: bool = False, distribution: bool = False
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Map files, folders (recursive) and globs to ``out/<path relative to the input's folder>.png``; a glob's
    folder is its part before the first wildcard (``albums/**/*.jpg``: ``albums``).

    No two photos share a result (docs/colourise.md): photos whose results would share a name keep their
    own extension in it (``y.jpg`` and ``y.png`` in one folder go to ``y.jpg.png`` and ``y.png.png``); those
    whose results would still share one (``x.jpg`` in two input folders) are refused, each naming the
    others, and so is a photo whose result would be another's ``--distribution`` figure (with
    ``distribution``) or an input file. An output folder inside an input folder is refused (ValueError)
    unless ``allow_inside``. A file given twice (a folder and a glob in it) is colourised once.

    Returns the jobs and the refused inputs, each with its reason.
    """
    out = Path(out).resolve()
    extensions = set(image_extensions())
    planned: dict[tuple[Path, Path], Job] = {}
    problems = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            root = path.resolve()
            if not allow_inside and (out == root or root in out.parents):
                raise ValueError(
                    f"the output folder {out} is inside the input folder {root}; choose another --out (or pass --allow-inside)"
                )
            files = sorted(
                p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions and out not in p.parents
            )
        elif path.exists():
            root, files = path.resolve().parent, [path.resolve()]
        else:
            files = sorted(Path(m).resolve() for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not files:
                problems.append((path, "no such file, folder or matching pattern"))
                continue
            root = Path(*itertools.takewhile(lambda part: not glob.has_magic(part), path.parts[:-1])).resolve()
        for file in files:
            relative = file.relative_to(root) if root in file.parents else Path(file.name)
            target = out / relative.with_suffix(".png")
            planned.setdefault((file, target), Job(file, target))
    jobs = _keep_extensions_apart(list(planned.values()))
    claims: dict[Path, list[tuple[Job, str]]] = defaultdict(list)
    for job in jobs:
        for output, what in _outputs(job, distribution):
            claims[output].append((job, what))
    sources = {job.source for job in jobs}
    kept = []
    for job in jobs:
        refusal = _refusal(job, distribution, claims, sources)
        if refusal is None:
            kept.append(job)
        else:
            problems.append((job.source, refusal))
    return kept, problems


def _keep_extensions_apart(jobs: list[Job]) -> list[Job]:
    """Photos whose results would share a name but whose extensions differ (y.jpg and y.png) each keep their
    extension in it (y.jpg.png, y.png.png), so each is found by its full name; the others keep theirs."""
    suffixes: dict[Path, set[str]] = defaultdict(set)
    for job in jobs:
        suffixes[job.target].add(job.source.suffix)
    return [
        replace(job, target=job.target.with_name(f"{job.source.name}.png")) if len(suffixes[job.target]) > 1 else job
        for job in jobs
    ]


def _refusal(job: Job, distribution: bool, claims: dict[Path, list[tuple[Job, str]]], sources: set[Path]) -> str | None:
    """Why a job may not write its files, in one line with the fix, or None: one would be an input or
    another job's file too (``claims``: each file with the jobs that would write it and what it is to each)."""
    for output, what in _outputs(job, distribution):
        if output in sources:
            return f"its {what} {output} would overwrite an input"
        others = [(other, kind) for other, kind in claims[output] if other is not job]
        if others:
            named = " and ".join(f"the {kind} of {other.source}" for other, kind in others)
            fix = (
                "give the folder that holds them (its subfolders are kept in --out), or colourise them into "
                "separate --out folders"
                if all(kind == "result" for _, kind in others) and what == "result"
                else "rename one, or leave out --distribution"
            )
            return f"its {what} {output} would also be {named}, so {'neither' if len(others) == 1 else 'none'} is written; {fix}"
    return None


def _outputs(job: Job, distribution: bool) -> list[tuple[Path, str]]:
    """The files a job writes, each with what it is."""
    return [(job.target, "result")] + ([(distribution_path(job.target), "distribution figure")] if distribution else [])


def attach_hints(jobs: list[Job], hints: str | Path, out: str | Path) -> tuple[list[Job], list[tuple[Path, Path]]]:
    """Give each job its hint file from ``--hints``: a JSON file (for exactly one photo), or a folder of them
    named after each photo's result, relative to ``out``, with ``.json`` for ``.png`` (photos/a/b.jpg ->
    HINTS/a/b.json, as its result is ``out/a/b.png``; a photo that keeps its extension in its result's name,
    ``out/a/y.jpg.png``, takes HINTS/a/y.jpg.json). Results are distinct, and so are their hint files.

    Returns the jobs and, for a folder, the photos that have no hint file there, each with the file it
    looked for: they are colourised without local hints (the caller says so), as a photo nobody clicked on.
    """
    hints, out = Path(hints), Path(out).resolve()
    if hints.is_file():
        if len(jobs) > 1:
            raise ValueError(
                f"--hints {hints} is one photo's hint file, but there are {len(jobs)} photos; "
                "give a folder of hint files named after the photos instead (docs/hints.md)"
            )
        return [replace(job, hint_file=hints) for job in jobs], []
    if not hints.is_dir():
        raise ValueError(f"--hints {hints}: no such file or folder; give a hint file (JSON, docs/hints.md) or a folder")
    attached, missing = [], []
    for job in jobs:
        hint_file = hints / job.target.relative_to(out).with_suffix(".json")
        if hint_file.is_file():
            attached.append(replace(job, hint_file=hint_file))
        else:
            attached.append(job)
            missing.append((job.source, hint_file))
    return attached, missing


def colorize_paths(
    pipeline: ColorizationPipeline,
    jobs: list[Job],
    temperature: float | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    progress: bool = True,
    distribution: bool = False,
    reference: str | Path | None = None,
) -> Report:
    """Colourise every job's file into its target (PNG, alpha kept); bad files are reported, not fatal.

    A job's ``hint_file`` steers its photo (a bad one fails that photo alone, named with its entry);
    ``reference`` is a photo whose colours steer every photo, in place of a hint file's own reference.
    A model that takes no hints (or no reference) is refused in one line before anything runs.
    ``distribution`` also writes ``<target stem>.distribution.png``: the entropy of the predicted colour
    distribution over the image and the distribution itself at a few pixels (Zhang et al.'s Figure 4).
    """
    if distribution and pipeline.card.head != "classification":
        raise ValueError(
            f"--distribution needs a classification model; {pipeline.name or 'this model'} predicts ab directly (regression)"
        )
    pipeline.check_hints(any(job.hint_file is not None for job in jobs), reference is not None)
    common = None if reference is None else _reference_hint(Path(reference), "--reference")
    report = Report()
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), unit="image", desc="colourising", disable=not progress)
    batches = [jobs[first : first + batch_size] for first in range(0, len(jobs), batch_size)]
    # The network runs on whole batches here; the per-image work (decoding, L at full resolution, the
    # merge, PNG encoding) runs in two threads beside it (all of it releases the GIL): one prepares the
    # next batch, one finishes the last. At most one batch ahead and one behind are held.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = pool.submit(_read_batch, pipeline, batches[0], overwrite, common, distribution) if batches else None
        writing: list[tuple[Job, Future]] = []
        for index in range(len(batches)):
            assert reading is not None  # submitted for batch 0 above and for each next one below
            loaded, failed = reading.result()
            report.failed += failed
            if index + 1 < len(batches):
                reading = pool.submit(_read_batch, pipeline, batches[index + 1], overwrite, common, distribution)
            guidance = [one.local for one in loaded], [one.reference for one in loaded]
            predictions = pipeline.predict([one.photo for one in loaded], *guidance, temperature)
            _collect(writing, report)
            writing = [
                (one.job, pool.submit(_finish, pipeline, prediction, one.job.target, overwrite))
                for one, prediction in zip(loaded, predictions, strict=True)
            ]
            if distribution:
                report.failed += _draw_distributions(writing, predictions, pipeline, overwrite)
            bar.update(len(batches[index]))
        _collect(writing, report)
    bar.close()
    report.seconds = time.perf_counter() - start
    return report


def _draw_distributions(
    writing: list[tuple[Job, Future]], predictions: list[Prediction], pipeline: ColorizationPipeline, overwrite: bool
) -> list[tuple[Path, str]]:
    """Each written image's distribution figure, from the same forward pass and the colours just written; the
    figures that found their name taken (kept unless ``overwrite``), as failures."""
    from polychrome.viz import plot_pixel_distributions

    failed = []
    for (job, future), prediction in zip(writing, predictions, strict=True):
        if future.exception() is None:  # a failed write is reported by _collect
            probabilities, path = prediction.output.softmax(dim=0).cpu(), distribution_path(job.target)
            try:
                plot_pixel_distributions(
                    future.result(), probabilities, pipeline.model.bins.cpu(), path, replace=overwrite
                )
            except FileExistsError:
                failed.append((job.source, f"{path} exists (pass --overwrite to replace it)"))
    return failed


def _read_batch(
    pipeline: ColorizationPipeline,
    jobs: list[Job],
    overwrite: bool,
    reference: GlobalHint | None,
    distribution: bool = False,
) -> tuple[list[_Loaded], list[tuple[Path, str]]]:
    """Each job's photo and hints read (``_Loaded``), or why it failed: one line naming the file (its result,
    or with ``distribution`` its figure, already there and not to be overwritten among them)."""
    loaded, failed = [], []
    for job in jobs:
        outputs = [job.target, *([distribution_path(job.target)] if distribution else [])]
        taken = next((path for path in outputs if path.exists()), None)
        if taken is not None and not overwrite:
            failed.append((job.source, f"{taken} exists (pass --overwrite to replace it)"))
            continue
        try:
            rgb, alpha = load_rgba(job.source)
            local, global_hint = _guidance(pipeline, job, rgb.shape[:2], reference)
        except ImageReadError as error:
            failed.append((job.source, error.reason))
            continue
        except ValueError as error:  # a bad hint file or reference: its message names the file and the entry
            failed.append((job.source, str(error)))
            continue
        loaded.append(_Loaded(job, pipeline.prepare(rgb, alpha), local, global_hint))
    return loaded, failed


def _guidance(
    pipeline: ColorizationPipeline, job: Job, image_size: tuple[int, int], reference: GlobalHint | None
) -> tuple[list[LocalHint], GlobalHint | None]:
    """A photo's local hints (from its hint file) and global hint: the command line's reference, else its
    hint file's. A ValueError names the hint file and what is wrong with it."""
    if job.hint_file is None:
        return [], reference
    try:
        hint_file = load_hint_file(job.hint_file, image_size)
    except OSError as error:
        raise ValueError(f"{job.hint_file}: cannot read it ({error.strerror or error})") from None
    if reference is not None or hint_file.reference is None:
        return list(hint_file.local), reference
    if "global_hints" not in pipeline.card.inputs:
        name = pipeline.name or pipeline.card.name
        raise ValueError(
            f"{job.hint_file}: reference: {name} takes no reference photo; models that do: {REFERENCE_MODELS}"
        )
    return list(hint_file.local), _reference_hint(hint_file.reference, f"{job.hint_file}: reference")


def _reference_hint(path: Path, source: str) -> GlobalHint:
    """The global hint of a reference photo, or a one-line ValueError naming where it was given."""
    try:
        return GlobalHint.from_file(path)
    except ImageReadError as error:
        raise ValueError(f"{source} {path}: {error.reason}; give a photo that can be read") from None


def _finish(pipeline: ColorizationPipeline, prediction: Prediction, target: Path, overwrite: bool) -> np.ndarray:
    """Render the prediction at the photo's size, write the PNG (replacing a file only if ``overwrite``),
    and return the colours (for the distribution view)."""
    rgb = to_hwc(pipeline.render(prediction))
    alpha = prediction.photo.alpha
    _save(rgb, alpha, target, overwrite)
    return rgb


def _collect(writing: list[tuple[Job, Future]], report: Report) -> None:
    for job, future in writing:
        try:
            future.result()
            report.written.append(job.target)
        except FileExistsError:  # it appeared after the check before reading: kept, as any existing file is
            report.failed.append((job.source, f"{job.target} exists (pass --overwrite to replace it)"))
        except OSError as error:  # a full disk or a read-only folder: name the file, go on with the rest
            report.failed.append((job.source, f"could not write {job.target}: {error.strerror or error}"))


def distribution_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}.distribution.png")


def _save(rgb: np.ndarray, alpha: np.ndarray | None, target: Path, overwrite: bool = False) -> None:
    """Write atomically: a half-written PNG never takes the target's name. Unless ``overwrite``, the name
    is taken only if it is free when the PNG is placed, not just when the run checked before reading: a file
    that appeared meanwhile (another run, another photo of this one) is kept and FileExistsError raised."""
    with atomic_path(target, replace=overwrite) as temporary, open(temporary, "wb") as file:
        write_png(file, rgb, alpha)
