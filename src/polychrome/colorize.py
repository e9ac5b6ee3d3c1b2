"""Colourising photos: ``load_colorizer`` (the Python API) and ``colorize_paths`` (``polychrome colorize``).

A photo keeps its own L at full resolution and only gains colour; the network runs at its own input
size. Transparency is kept: the alpha channel goes to the output unchanged. Files are read one by one,
so a bad file is reported with its reason and never stops the others, and nothing is ever written
into or over an input.
"""

from __future__ import annotations

import glob
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from polychrome.data import ImageReadError, load_rgba, to_rgba, write_png
from polychrome.data.images import image_extensions
from polychrome.color import DEFAULT_TEMPERATURE, decode_annealed_mean
from polychrome.files import atomic_path
from polychrome.inference import OFFICIAL_INPUT_SIZE, colorize_images, lightness_of, load_model, merge, model_input
from polychrome.models import Colorizer


@dataclass
class Prediction:
    """What the network said about one photo, kept so it can be decoded again at another temperature
    without a second forward pass (the web page's temperature slider)."""

    lightness: Tensor  # (1, H, W) the photo's own L in [0, 100]
    output: Tensor  # (Q, h, w) logits over the ab bins, or (2, h, w) ab for a regression model


class ColorizationPipeline:
    """A loaded model and the size it works at, ready to colourise images.

    ``temperature=None`` means the model's own (chosen on validation data for the bundled model), else
    Zhang et al.'s 0.38; regression models ignore it.
    """

    def __init__(self, model: Colorizer, input_size: int, name: str = "", device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.input_size = input_size
        self.name = name
        self.device = torch.device(device)
        self.temperature = getattr(model, "temperature", DEFAULT_TEMPERATURE)

    @torch.no_grad()
    def predict_ab(self, lightness: Tensor, temperature: float | None = None) -> Tensor:
        """L (N, 1, H, W) in [0, 100] -> ab (N, 2, h, w) in Lab units, at the network's output resolution."""
        return self.model.predict_ab(lightness.to(self.device), self._temperature(temperature))

    @torch.no_grad()
    def colorize_batch(self, images: list[np.ndarray], temperature: float | None = None) -> list[np.ndarray]:
        """(H, W, 3) uint8 RGB images of any sizes -> (H, W, 3) uint8 RGB, each with its own L."""
        torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over
        tensors = [_chw_view(image) for image in images]
        colours = colorize_images(self.model, tensors, self.input_size, self._temperature(temperature))
        return [colour.permute(1, 2, 0).numpy() for colour in colours]

    @torch.no_grad()
    def predict(self, image) -> Prediction:
        """Run the network once on a photo (as ``colorize`` takes it); decode later with ``render``."""
        rgb = _chw_view(_as_rgb(image)).to(self.device)
        plane = lightness_of(rgb)
        return Prediction(plane, self.model(model_input([plane], self.input_size)).float()[0])

    @torch.no_grad()
    def render(self, prediction: Prediction, temperature: float | None = None) -> np.ndarray:
        """The (H, W, 3) uint8 colourisation of a prediction at ``temperature`` (annealed mean)."""
        return merge(prediction.lightness, self.decode(prediction.output[None], temperature)[0]).permute(1, 2, 0).cpu().numpy()

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The network's output (N, Q, h, w) logits or (N, 2, h, w) ab -> ab (N, 2, h, w): the annealed mean
        at ``temperature`` for a classification model, the ab itself for a regression model."""
        if self.model.head != "classification":
            return output
        return decode_annealed_mean(output, self.model.bins.to(output.device), self._temperature(temperature), from_logits=True)

    def _temperature(self, temperature: float | None) -> float:
        return self.temperature if temperature is None else temperature

    def colorize(self, image, temperature: float | None = None) -> np.ndarray:
        """A PIL image or an (H, W) / (H, W, 3) uint8 array -> the colourised (H, W, 3) uint8 array.

        A colour photo is re-colourised from its own L."""
        return self.colorize_batch([_as_rgb(image)], temperature)[0]


def _chw_view(image: np.ndarray) -> Tensor:
    """An (H, W, 3) array as a (3, H, W) tensor sharing its memory. Read-only arrays (``np.asarray`` of a
    PIL image) are fine: nothing here writes into its input, so PyTorch's warning about them is silenced
    rather than paid for with a copy of a possibly 50-megapixel photo."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(image).permute(2, 0, 1)


def _as_rgb(image) -> np.ndarray:
    """A PIL image or an (H, W) / (H, W, 3) uint8 array -> a contiguous (H, W, 3) uint8 array."""
    if isinstance(image, Image.Image):
        return to_rgba(image)[0]
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected a uint8 array of shape (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    return np.ascontiguousarray(np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array)


def load_colorizer(name: str = "default", device: str | torch.device = "cpu", backend: str = "torch") -> ColorizationPipeline:
    """A model by name: ``default`` (the bundled model), a weights file, a checkpoint or run directory,
    ``gray``, or ``eccv16-official:PATH`` / ``siggraph17-official:PATH`` for the released weights of
    richzhang/colorization. ``backend="onnx"`` runs the network with onnxruntime: ``name`` is then an
    ``.onnx`` file from ``polychrome export-onnx`` (CPU only)."""
    if backend == "onnx":
        from polychrome.onnx_backend import OnnxColorizer

        model = OnnxColorizer(name)
    elif backend == "torch":
        model = load_model(name)
    else:
        raise ValueError(f"backend must be torch or onnx, got {backend!r}")
    return ColorizationPipeline(model, getattr(model, "input_size", None) or OFFICIAL_INPUT_SIZE, name, device)


@dataclass
class Job:
    source: Path
    target: Path


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def plan_outputs(inputs: list[str], out: str | Path, allow_inside: bool = False) -> tuple[list[Job], list[tuple[Path, str]]]:
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
                raise ValueError(f"the output folder {out} is inside the input folder {root}; choose another --out (or pass --allow-inside)")
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions and out not in p.parents)
        elif path.exists():
            root, files = path.resolve().parent, [path.resolve()]
        else:
            matches = sorted(Path(m).resolve() for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                problems.append((path, "no such file, folder or matching pattern"))
                continue
            root = Path(glob.escape(item)).parent.resolve() if not glob.has_magic(str(Path(item).parent)) else Path(".").resolve()
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


def colorize_paths(pipeline: ColorizationPipeline, jobs: list[Job], temperature: float | None = None, batch_size: int = 8,
                   overwrite: bool = False, progress: bool = True, distribution: bool = False) -> Report:
    """Colourise every job's file into its target (PNG, alpha kept); bad files are reported, not fatal.

    ``distribution`` also writes ``<target stem>.distribution.png``: the entropy of the predicted colour
    distribution over the image and the distribution itself at a few pixels (Zhang et al.'s Figure 4).
    """
    if distribution and pipeline.model.head != "classification":
        raise ValueError(f"--distribution needs a classification model; {pipeline.name or 'this model'} predicts ab directly (regression)")
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
            loaded, failed = reading.result()
            report.failed += failed
            if index + 1 < len(batches):
                reading = pool.submit(_read_batch, pipeline.input_size, batches[index + 1], overwrite)
            abs_ = []
            if loaded:
                with torch.no_grad():
                    output = pipeline.model(torch.cat([small for *_, small in loaded]).to(pipeline.device)).float()
                    abs_ = pipeline.decode(output, temperature).cpu()
            _collect(writing, report)
            writing = [(job, pool.submit(_finish, plane, ab, alpha, job.target)) for (job, alpha, plane, _), ab in zip(loaded, abs_)]
            if distribution and loaded:  # drawn from the same forward pass and the colours just written
                from polychrome.viz import plot_pixel_distributions

                for (job, future), probabilities in zip(writing, output.softmax(dim=1).cpu()):
                    if future.exception() is None:  # a failed write is reported by _collect
                        plot_pixel_distributions(future.result(), probabilities, pipeline.model.bins.cpu(), distribution_path(job.target))
            if bar is not None:
                bar.update(len(batches[index]))
        _collect(writing, report)
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


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
        plane = lightness_of(_chw_view(rgb))
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
