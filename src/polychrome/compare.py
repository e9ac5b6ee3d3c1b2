"""``polychrome compare``: several models, one protocol, one table (Markdown, CSV, JSON) and figures.

With hints (``HintProtocol``), every model that takes them gets the same simulated hints for an image; a model
that takes none (gray, the automatic models) still gets its row, measured without hints as the no-hint baseline,
its name marked "(no hints)" (or "(no global hints)" for one that takes local hints only), and its protocol
saying what was withheld (``HintProtocol.taken_by``). The example grids show each model with its own hints.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Subset

from polychrome.color import uint8_to_lab
from polychrome.data import eval_transform, open_dataset
from polychrome.evaluate import HintProtocol, source_path
from polychrome.metrics import MEASURES, as_gray, format_value
from polychrome.models import Colorizer, LoadedModel
from polychrome.pipeline import ColorizationPipeline

__all__ = ["COLUMNS", "as_gray", "hinted_name", "markdown_table", "random_images", "write_report"]

# The table's columns: the model, its image count, and every measure MEASURES puts in the table.
COLUMNS = ("model", "images", *(name for name, measure in MEASURES.items() if measure.table))


def _cell(column: str, value, interval: list[float] | None = None) -> str:
    spec = MEASURES[column].format if column in MEASURES else "auto"
    text = format_value(value, spec)
    return f"{text} [{format_value(interval[0], spec)}, {format_value(interval[1], spec)}]" if interval else text


def markdown_table(results: list[dict]) -> str:
    """The results as a Markdown table; a measure with a test-set interval (``evaluate(intervals=...)``) is
    followed by it in brackets."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [
        "| "
        + " | ".join(_cell(column, result.get(column), result.get("intervals", {}).get(column)) for column in COLUMNS)
        + " |"
        for result in results
    ]
    return "\n".join(lines) + "\n"


def hinted_name(name: str, asked: HintProtocol, given: HintProtocol) -> str:
    """A comparison row's name: the model's, marked when it was given fewer kinds of hints than asked."""
    if given.count < asked.count:
        return f"{name} (no hints)" if given.global_hints is None else f"{name} (no local hints)"
    return f"{name} (no global hints)" if given.global_hints != asked.global_hints else name


@dataclass
class _Examples:
    """The photos an example grid shows: uint8 RGB (3, H, W) images, their indices in the dataset and files."""

    images: list[torch.Tensor]
    indices: list[int]
    paths: list[Path | None]


def _images(data: str, eval_size: int | None, indices: list[int]) -> _Examples:
    dataset = open_dataset(data, eval_transform(eval_size) if eval_size else None)
    images = [Subset(dataset, indices)[i][0] for i in range(len(indices))]
    return _Examples(images, [int(i) for i in indices], [source_path(dataset, int(i)) for i in indices])


def _colorized(model: LoadedModel | Colorizer, result: dict, examples: _Examples) -> list[torch.Tensor]:
    """The model's colourisations of the example photos under its row's protocol, its hints included."""
    protocol = result["protocol"]
    hints = HintProtocol.from_record(protocol.get("hints"))
    labs = [uint8_to_lab(image[None])[0] for image in examples.images]
    local, global_hints = hints.for_images(labs, examples.indices, examples.paths)
    pipeline = ColorizationPipeline(model, device=None)
    return pipeline.colorize_images(examples.images, protocol["size"], protocol["temperature"], local, global_hints)


def random_images(per_image_error: dict, count: int) -> list:
    """``count`` image indices drawn with a fixed seed from the indices alone, so every model (and every
    retrained model) is shown on the same photos."""
    indices = sorted(per_image_error, key=int)
    return [
        indices[i] for i in torch.randperm(len(indices), generator=torch.Generator().manual_seed(0))[:count].tolist()
    ]


def write_report(
    results: list[dict], models: Mapping[str, LoadedModel | Colorizer], out: str | Path, examples: int = 4
) -> None:
    """Write table.md/.csv, results.json, curves.png, errors.png and example grids into ``out``; with click
    curves (``--clicks N``), also clicks.md (``polychrome.person.click_table``) and clicks.png.

    One model: its worst, best and random images by mean ab error (gray input / prediction / truth).
    Several: the same random images side by side for every model. ``examples=0``: no grids.
    """
    from polychrome.person import click_table
    from polychrome.viz import image_grid, plot_accuracy_curves, plot_click_curves, plot_error_histogram

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown_table(results))
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    # Compact: it is for programs (table.md and table.csv are for people), and with every image's error it runs to
    # megabytes on a test set that a repository carries.
    (out / "results.json").write_text(json.dumps(results, separators=(",", ":")))
    plot_accuracy_curves({r["model"]: r["curves"] for r in results}, out / "curves.png")
    plot_error_histogram({r["model"]: list(r["per_image_error"].values()) for r in results}, out / "errors.png")
    if any(r.get("clicks") for r in results):  # --clicks N: the simulated person's curves
        (out / "clicks.md").write_text(click_table(results))
        plot_click_curves(results, out / "clicks.png")
    if not examples:
        return

    first = results[0]
    errors = sorted(first["per_image_error"].items(), key=lambda item: item[1])
    protocol = first["protocol"]
    random_pick = random_images(first["per_image_error"], examples)
    if len(models) == 1:
        ((name, model),) = models.items()
        picks = {
            "worst": [i for i, _ in errors[::-1][:examples]],
            "best": [i for i, _ in errors[:examples]],
            "random": random_pick,
        }
        for kind, indices in picks.items():
            shown = _images(first["data"], protocol["eval_size"], indices)
            predicted = _colorized(model, first, shown)
            rows = [[as_gray(image), colour, image] for image, colour in zip(shown.images, predicted, strict=True)]
            titles = [f"#{i}: {first['per_image_error'][i]:.1f}" for i in indices]
            image_grid(rows, out / f"examples-{kind}.png", ["gray input", name, "truth"], titles)
    else:
        shown = _images(first["data"], protocol["eval_size"], random_pick)
        columns = [_colorized(model, r, shown) for model, r in zip(models.values(), results, strict=True)]
        rows = [[as_gray(image), *(column[k] for column in columns), image] for k, image in enumerate(shown.images)]
        image_grid(rows, out / "examples.png", ["gray input", *models, "truth"])
