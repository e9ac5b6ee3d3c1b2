"""Colourising photos: ``load_colorizer`` (the Python API) and ``colorize_paths`` (``polychrome colorize``).

A photo keeps its own L at full resolution and only gains colour; the network runs at its own input
size (a full-resolution model, Levin et al.'s, at the photo's own). Transparency is kept: the alpha channel
goes to the output unchanged. Files are read one by one, so a bad file (or a bad hint file) is reported with
its reason and never stops the others, and nothing is ever written into or over an input. Colour hints come
from a hint file per photo (docs/hints.md) and a reference photo for all (``attach_hints``).
"""

from __future__ import annotations

import glob
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polychrome.data import ImageReadError, load_rgba, write_png
from polychrome.data.images import image_extensions
from polychrome.files import atomic_path
from polychrome.hints import GlobalHint, LocalHint, load_hint_file
from polychrome.pipeline import (
    REFERENCE_MODELS,
    ColorizationPipeline,
    Prediction,
    chw_view,
    lightness_of,
    load_model,
    merge,
    model_input,
    side_of,
)

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
    """A photo read for colourising: its L at full resolution (and at the network's size, unless the model
    sees photos at their own), its alpha, and the hints that steer it."""

    job: Job
    alpha: np.ndarray | None
    plane: Tensor  # (1, H, W) L in [0, 100]
    small: Tensor | None  # (1, 1, S, S) L at the network's input size; None for a full-resolution model
    local: list[LocalHint]
    reference: GlobalHint | None


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def plan_outputs(
    inputs: list[str], out: str | Path, allow_inside: bool = False
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Map files, folders (recursive) and globs to ``out/<path relative to the input's root>.png``.

    Refuses an output folder inside an input folder unless ``allow_inside``; a job whose target would
    be an input file is refused.
    """
    out = Path(out).resolve()
    extensions = set(image_extensions())
    jobs, problems = [], []
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
            matches = sorted(Path(m).resolve() for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                problems.append((path, "no such file, folder or matching pattern"))
                continue
            root = (
                Path(glob.escape(item)).parent.resolve()
                if not glob.has_magic(str(Path(item).parent))
                else Path(".").resolve()
            )
            files = matches
        for file in files:
            relative = file.relative_to(root) if root in file.parents else Path(file.name)
            jobs.append(Job(file, out / relative.with_suffix(".png")))
    sources = {job.source for job in jobs}
    kept = []
    for job in jobs:
        if job.target in sources:
            problems.append((job.source, f"its output {job.target} would overwrite an input"))
        else:
            kept.append(job)
    return kept, problems


def attach_hints(jobs: list[Job], hints: str | Path, out: str | Path) -> tuple[list[Job], list[tuple[Path, Path]]]:
    """Give each job its hint file from ``--hints``: a JSON file (for exactly one photo), or a folder of them
    named after each photo's path relative to its input root (photos/a/b.jpg -> HINTS/a/b.json, the same
    relative path as its output ``out/a/b.png``).

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
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="image", desc="colourising")
    batches = [jobs[first : first + batch_size] for first in range(0, len(jobs), batch_size)]
    torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over
    # The network runs on whole batches here; the per-image work (decoding, L at full resolution, the
    # merge, PNG encoding) runs in two threads beside it (all of it releases the GIL): one prepares the
    # next batch, one finishes the last. At most one batch ahead and one behind are held.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = pool.submit(_read_batch, pipeline, batches[0], overwrite, common) if batches else None
        writing: list[tuple[Job, Future]] = []
        for index in range(len(batches)):
            assert reading is not None  # submitted for batch 0 above and for each next one below
            loaded, failed = reading.result()
            report.failed += failed
            if index + 1 < len(batches):
                reading = pool.submit(_read_batch, pipeline, batches[index + 1], overwrite, common)
            output, abs_ = _predict(pipeline, loaded, temperature)
            _collect(writing, report)
            writing = [
                (one.job, pool.submit(_finish, one.plane, ab, one.alpha, one.job.target))
                for one, ab in zip(loaded, abs_, strict=True)
            ]
            if distribution and output is not None:
                _draw_distributions(writing, output, pipeline)
            if bar is not None:
                bar.update(len(batches[index]))
        _collect(writing, report)
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


def _predict(pipeline: ColorizationPipeline, loaded: list[_Loaded], temperature: float | None):
    """The network's output for a batch (None for a full-resolution model or an empty batch) and each photo's
    ab on the CPU: (2, h, w) from one batched pass at the input size, or (2, H, W) photo by photo for a
    full-resolution model (Levin et al.'s solve runs at each photo's own size, so it cannot be batched)."""
    if not loaded:
        return None, []
    local, references = [one.local for one in loaded], [one.reference for one in loaded]
    if pipeline.card.full_resolution:
        planes = [one.plane for one in loaded]
        return None, [ab.cpu() for ab in pipeline.predict_full_ab(planes, None, temperature, local, references)]
    side = pipeline.input_size
    inputs = pipeline.hint_inputs(local, references, [side_of(one.plane) for one in loaded], (side, side))
    output = pipeline.forward(torch.cat([one.small for one in loaded if one.small is not None]), inputs)
    return output, list(pipeline.decode(output, temperature).cpu())


def _draw_distributions(writing: list[tuple[Job, Future]], output: Tensor, pipeline: ColorizationPipeline) -> None:
    """Each written image's distribution figure, from the same forward pass and the colours just written."""
    from polychrome.viz import plot_pixel_distributions

    for (job, future), probabilities in zip(writing, output.softmax(dim=1).cpu(), strict=True):
        if future.exception() is None:  # a failed write is reported by _collect
            plot_pixel_distributions(
                future.result(), probabilities, pipeline.model.bins.cpu(), distribution_path(job.target)
            )


def _read_batch(
    pipeline: ColorizationPipeline, jobs: list[Job], overwrite: bool, reference: GlobalHint | None
) -> tuple[list[_Loaded], list[tuple[Path, str]]]:
    """Each job's photo and hints read (``_Loaded``), or why it failed: one line naming the file."""
    size = None if pipeline.card.full_resolution else pipeline.input_size
    loaded, failed = [], []
    for job in jobs:
        if job.target.exists() and not overwrite:
            failed.append((job.source, f"{job.target} exists (pass --overwrite to replace it)"))
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
        plane = lightness_of(chw_view(rgb))
        small = None if size is None else model_input([plane], size)
        loaded.append(_Loaded(job, alpha, plane, small, local, global_hint))
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


def _finish(plane: Tensor, ab: Tensor, alpha: np.ndarray | None, target: Path) -> np.ndarray:
    """Join the photo's L with its ab, write the PNG, and return the colours (for the distribution view)."""
    rgb = merge(plane, ab).permute(1, 2, 0).numpy()
    _save(rgb, alpha, target)
    return rgb


def _collect(writing: list[tuple[Job, Future]], report: Report) -> None:
    for job, future in writing:
        try:
            future.result()
            report.written.append(job.target)
        except OSError as error:  # a full disk or a read-only folder: name the file, go on with the rest
            report.failed.append((job.source, f"could not write {job.target}: {error.strerror or error}"))


def distribution_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}.distribution.png")


def _save(rgb: np.ndarray, alpha: np.ndarray | None, target: Path) -> None:
    """Write atomically: a half-written PNG never takes the target's name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary, open(temporary, "wb") as file:
        write_png(file, rgb, alpha)
