"""``polychrome compare``: several models, one protocol, one table (Markdown, CSV, JSON) and figures."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch.utils.data import Subset

from polychrome.data import eval_transform, open_dataset
from polychrome.metrics import MEASURES, as_gray, format_value
from polychrome.models import Colorizer, LoadedModel
from polychrome.pipeline import colorize_images

__all__ = ["COLUMNS", "as_gray", "markdown_table", "random_images", "write_report"]

# The table's columns: the model, its image count, and every measure MEASURES puts in the table.
COLUMNS = ("model", "images", *(name for name, measure in MEASURES.items() if measure.table))


def _cell(column: str, value) -> str:
    return format_value(value, MEASURES[column].format if column in MEASURES else "auto")


def markdown_table(results: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(column, result.get(column)) for column in COLUMNS) + " |" for result in results]
    return "\n".join(lines) + "\n"


def _images(data: str, eval_size: int | None, indices: list[int]) -> list[torch.Tensor]:
    dataset = open_dataset(data, eval_transform(eval_size) if eval_size else None)
    return [Subset(dataset, indices)[i][0] for i in range(len(indices))]


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
    """Write table.md/.csv, results.json, curves.png, errors.png and example grids into ``out``.

    One model: its worst, best and random images by mean ab error (gray input / prediction / truth).
    Several: the same random images side by side for every model. ``examples=0``: no grids.
    """
    from polychrome.viz import image_grid, plot_accuracy_curves, plot_error_histogram

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown_table(results))
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot_accuracy_curves({r["model"]: r["curves"] for r in results}, out / "curves.png")
    plot_error_histogram({r["model"]: list(r["per_image_error"].values()) for r in results}, out / "errors.png")
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
            images = _images(first["data"], protocol["eval_size"], indices)
            predicted = colorize_images(model, images, protocol["size"], protocol["temperature"])
            rows = [[as_gray(image), colour, image] for image, colour in zip(images, predicted, strict=True)]
            titles = [f"#{i}: {first['per_image_error'][i]:.1f}" for i in indices]
            image_grid(rows, out / f"examples-{kind}.png", ["gray input", name, "truth"], titles)
    else:
        images = _images(first["data"], protocol["eval_size"], random_pick)
        columns = [
            colorize_images(model, images, r["protocol"]["size"], r["protocol"]["temperature"])
            for (name, model), r in zip(models.items(), results, strict=True)
        ]
        rows = [[as_gray(image), *(column[k] for column in columns), image] for k, image in enumerate(images)]
        image_grid(rows, out / "examples.png", ["gray input", *models, "truth"])
