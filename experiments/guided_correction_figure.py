"""What the guided model's correction does with a person's first clicks (issue 32), by eye: for each photo, one row
per correction (the network alone, the shipped correction, the chosen one): gray / no clicks / 1 click / 3 clicks /
the truth, each coloured image captioned with its PSNR. The clicks are the simulated person's
(``polychrome.person``: each at the deepest point of the largest region whose ab error exceeds 15, with the truth's
colour), made on that row's own colours, as ``polychrome evaluate --clicks`` makes them; each is drawn as a dot of
its colour ringed in white. BSDS500 val photos (in file-name order), never test:

    python experiments/guided_correction_figure.py --indices 13,19,18 --out guided-correction.png \\
        --corrections network,0.375:0,0.375:0.0003
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from guided_figure import draw  # experiments/ is on the path when run as a script

from polychrome.color import uint8_to_lab
from polychrome.data import open_dataset
from polychrome.metrics import as_gray, psnr
from polychrome.models import load_model
from polychrome.person import run_person
from polychrome.pipeline import ColorizationPipeline

COUNTS = (1, 3)


def label_of(spec: str) -> str:
    if spec == "network":
        return "network alone"
    weight, decay = spec.split(":")
    return f"w {weight}, decay {decay}"


def cells_of(pipeline: ColorizationPipeline, rgb: torch.Tensor, lab: torch.Tensor, label: str) -> list[tuple]:
    """One row: (image, caption, clicks drawn) for gray, no clicks, each of ``COUNTS`` clicks and the truth."""
    photo = pipeline.prepare_lightness(lab[:1])
    clicks = run_person(pipeline, photo, rgb, lab, max(COUNTS)).clicks
    cells = [(as_gray(rgb), label, ())]
    for count in (0, *COUNTS):
        image = pipeline.render(pipeline.predict([photo], [list(clicks[:count])])[0]).cpu()
        cells.append((image, f"{float(psnr(image[None], rgb[None])[0]):.1f} dB", tuple(clicks[:count])))
    cells.append((rgb, "truth", ()))
    return cells


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided")
    parser.add_argument("--data", default="folder:bsds500/images/val")
    parser.add_argument("--indices", type=lambda text: [int(i) for i in text.split(",")], default=[13, 19, 18])
    parser.add_argument(
        "--corrections", default="network,0.375:0,0.375:0.0003", help="network, or prior weight:decay pairs"
    )
    parser.add_argument("--out", required=True, help="the image to write (.png, .webp)")
    args = parser.parse_args(argv)

    torch.set_flush_denormal(True)
    model, dataset = load_model(args.model), open_dataset(args.data)
    pipelines = {}
    for spec in args.corrections.split(","):
        if spec == "network":
            card = model.with_card(hint_propagation="none")
        else:
            weight, decay = (float(value) for value in spec.split(":"))
            card = model.with_card(hint_propagation="levin", hint_decay=decay, hint_prior_weight=weight)
        pipelines[label_of(spec)] = ColorizationPipeline(card, name=label_of(spec))
    rows = []
    for index in args.indices:
        rgb = dataset[index][0]
        lab = uint8_to_lab(rgb[None])[0]
        for label, pipeline in pipelines.items():
            rows.append({"lab": lab, "cells": cells_of(pipeline, rgb, lab, f"#{index}: {label}")})
    titles = ["gray", "no clicks", *(f"{n} click{'s' if n > 1 else ''}" for n in COUNTS), "truth"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    draw(rows, titles, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
