"""Colourising photos: ``load_colorizer`` (the Python API) and ``colorize_paths`` (``polychrome colorize``).

A photo keeps its own L at full resolution and only gains colour; the network runs at its own input
size. Transparency is kept: the alpha channel goes to the output unchanged. Files are read one by one,
so a bad file is reported with its reason and never stops the others, and nothing is ever written
into or over an input.
"""

from __future__ import annotations

import glob
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polychrome.data import ImageReadError, load_rgba, write_png
from polychrome.data.images import image_extensions
from polychrome.files import atomic_path
from polychrome.pipeline import ColorizationPipeline, Prediction, chw_view, lightness_of, load_model, merge, model_input

__all__ = ["ColorizationPipeline", "Prediction", "colorize_paths", "load_colorizer", "plan_outputs"]


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


def colorize_paths(
    pipeline: ColorizationPipeline,
    jobs: list[Job],
    temperature: float | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    progress: bool = True,
    distribution: bool = False,
) -> Report:
    """Colourise every job's file into its target (PNG, alpha kept); bad files are reported, not fatal.

    ``distribution`` also writes ``<target stem>.distribution.png``: the entropy of the predicted colour
    distribution over the image and the distribution itself at a few pixels (Zhang et al.'s Figure 4).
    """
    if distribution and pipeline.card.head != "classification":
        raise ValueError(
            f"--distribution needs a classification model; {pipeline.name or 'this model'} predicts ab directly (regression)"
        )
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
        reading = pool.submit(_read_batch, pipeline.input_size, batches[0], overwrite) if batches else None
        writing: list[tuple[Job, Future]] = []
        for index in range(len(batches)):
            assert reading is not None  # submitted for batch 0 above and for each next one below
            loaded, failed = reading.result()
            report.failed += failed
            if index + 1 < len(batches):
                reading = pool.submit(_read_batch, pipeline.input_size, batches[index + 1], overwrite)
            abs_: Tensor | list = []
            if loaded:
                output = pipeline.forward(torch.cat([small for *_, small in loaded]))
                abs_ = pipeline.decode(output, temperature).cpu()
            _collect(writing, report)
            writing = [
                (job, pool.submit(_finish, plane, ab, alpha, job.target))
                for (job, alpha, plane, _), ab in zip(loaded, abs_, strict=True)
            ]
            if distribution and loaded:
                _draw_distributions(writing, output, pipeline)
            if bar is not None:
                bar.update(len(batches[index]))
        _collect(writing, report)
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


def _draw_distributions(writing: list[tuple[Job, Future]], output: Tensor, pipeline: ColorizationPipeline) -> None:
    """Each written image's distribution figure, from the same forward pass and the colours just written."""
    from polychrome.viz import plot_pixel_distributions

    for (job, future), probabilities in zip(writing, output.softmax(dim=1).cpu(), strict=True):
        if future.exception() is None:  # a failed write is reported by _collect
            plot_pixel_distributions(
                future.result(), probabilities, pipeline.model.bins.cpu(), distribution_path(job.target)
            )


def _read_batch(size: int, jobs: list[Job], overwrite: bool) -> tuple[list, list[tuple[Path, str]]]:
    """Each job's alpha, its L at full resolution and its L at the network's size, or why it failed."""
    loaded, failed = [], []
    for job in jobs:
        if job.target.exists() and not overwrite:
            failed.append((job.source, f"{job.target} exists (pass --overwrite to replace it)"))
            continue
        try:
            rgb, alpha = load_rgba(job.source)
        except ImageReadError as error:
            failed.append((job.source, error.reason))
            continue
        plane = lightness_of(chw_view(rgb))
        loaded.append((job, alpha, plane, model_input([plane], size)))
    return loaded, failed


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
