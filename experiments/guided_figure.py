"""Real photos coloured with and without hints, one row each: gray / automatic (``default``) / the guided model with
5 hints / with 20 hints / the truth, each coloured column titled with its PSNR against the truth.

The photos are fixed BSDS500 test photos (chosen by eye for colour a model cannot know: clothes, boats, a car), at
their own resolution. The hints are those ``polychrome evaluate --hints N`` gives the same photo (simulated from the
truth, ``polychrome.hints.evaluation_hints`` seeded by (seed, the photo's index in the set)), so the figure shows
points of the curves (experiments/guided_curves.py); the 5 hints are the first 5 of the 20. Each hint is drawn as a
dot of its colour (the photo's L with the hint's ab) ringed in white:

    python experiments/guided_figure.py --model guided --out docs/guided/figure.webp
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch
from torch import Tensor

from polychrome.color import lab_to_uint8, uint8_to_lab
from polychrome.data import open_dataset
from polychrome.hints import LocalHint, evaluation_hints
from polychrome.metrics import as_gray, psnr
from polychrome.models import load_model
from polychrome.pipeline import ColorizationPipeline

INDICES = (42, 106, 132, 154)  # BSDS500 test, in file-name order: kimonos, canoes, a red car, children
COUNTS = (5, 20)


def hint_colours(lab: Tensor, hints: tuple[LocalHint, ...]) -> list[tuple[float, float, float]]:
    """Each hint's colour as matplotlib takes it (RGB in [0, 1]): the photo's L at the point with the hint's ab.
    ``lab`` is the true Lab (3, H, W)."""
    points = torch.tensor([[float(lab[0, h.y, h.x]), *h.ab] for h in hints]).T[:, None]  # (3, 1, K)
    return [tuple(value / 255 for value in rgb) for rgb in lab_to_uint8(points[None])[0, :, 0].T.tolist()]


def draw(rows: list[dict], titles: list[str], path: Path, cell: float = 2.6) -> None:
    """One row per photo: its images with their captions, and the hints drawn on the hinted ones."""
    from matplotlib.figure import Figure
    from PIL import Image

    figure = Figure(figsize=(cell * len(titles), cell * 0.75 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(titles), squeeze=False)
    for r, row in enumerate(rows):
        for c, (image, caption, hints) in enumerate(row["cells"]):
            ax = axes[r, c]
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_autoscale_on(False)  # dots at the border stay on the photo's own extent
            if hints:
                ax.scatter(
                    [h.x for h in hints],
                    [h.y for h in hints],
                    s=14,
                    c=hint_colours(row["lab"], hints),
                    edgecolors="white",
                    linewidths=0.8,
                )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(caption, fontsize=7)
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    drawn = io.BytesIO()  # drawn as a PNG (no Software tag), kept in the format of the path's suffix
    figure.savefig(drawn, format="png", dpi=100, metadata={"Software": None})
    Image.open(drawn).convert("RGB").save(path, quality=90)  # .webp: a sixth of the PNG's bytes


def photo_row(
    image: Tensor, index: int, automatic: ColorizationPipeline, guided: ColorizationPipeline, seed: int
) -> dict:
    """The cells of one photo (uint8 RGB (3, H, W), index ``index`` of the set): (image, caption, hints) each."""
    lab = uint8_to_lab(image[None])[0]

    def caption(colour: Tensor) -> str:
        return f"{float(psnr(colour[None], image[None])[0]):.1f} dB"

    gray, automatic_colour = as_gray(image), automatic.colorize_images([image])[0]
    cells = [(gray, caption(gray), ()), (automatic_colour, caption(automatic_colour), ())]
    for count in COUNTS:
        hints = evaluation_hints(lab, seed, index, count)
        colour = guided.colorize_images([image], hints=[hints])[0]
        cells.append((colour, caption(colour), hints))
    cells.append((image, f"#{index}", ()))
    return {"lab": lab, "cells": cells}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided", help="the guided model: guided, levin, or a weights file or run")
    parser.add_argument("--label", default="guided", help="its name in the column titles")
    parser.add_argument("--data", default="folder:bsds500/images/test")
    parser.add_argument(
        "--indices", type=lambda text: [int(i) for i in text.split(",")], default=list(INDICES), help="photos shown"
    )
    parser.add_argument("--hint-seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the image to write (.webp, .png, .jpg)")
    args = parser.parse_args(argv)

    torch.set_flush_denormal(True)
    dataset = open_dataset(args.data)
    automatic = ColorizationPipeline(load_model("default"))
    guided = ColorizationPipeline(load_model(args.model), name=args.label)
    guided.check_hints(True, False)
    rows = [photo_row(dataset[index][0], index, automatic, guided, args.hint_seed) for index in args.indices]
    titles = ["gray", "automatic (default)", *(f"{args.label}, {n} hints" for n in COUNTS), "truth"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    draw(rows, titles, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
