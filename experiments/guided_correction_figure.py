"""What a person's first clicks do (issue 32), by eye: for each photo, one row per way of taking clicks (the
guided network alone, a correction of the guided model given as prior weight:decay[:falloff], or Levin et al.
2004): gray / the bundled automatic model / 1 click / 3 clicks / the truth, each coloured image captioned with its
PSNR. The clicks are the simulated person's (``polychrome.person``: each at the deepest point of the largest region
whose ab error exceeds 15, with the truth's colour), made on that row's own colours, as ``polychrome evaluate
--clicks`` makes them; each is drawn as a dot of its colour ringed in white. Photos by index in file-name order:

    python experiments/guided_correction_figure.py --indices 13,19,18 --out guided-correction.png \\
        --corrections network,0.375:0,0.375:0.0003             # val: while choosing
    python experiments/guided_correction_figure.py --data folder:bsds500/images/test --indices 3,7 \\
        --corrections bundled,network,levin --out docs/guided/clicks.webp   # test, once chosen
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from guided_figure import draw  # experiments/ is on the path when run as a script

from polychrome.color import uint8_to_lab
from polychrome.data import open_dataset
from polychrome.metrics import as_gray, psnr
from polychrome.models import LoadedModel, load_model
from polychrome.person import run_person
from polychrome.pipeline import ColorizationPipeline

COUNTS = (1, 3)


def pipeline_of(spec: str, model: LoadedModel) -> ColorizationPipeline:
    """``bundled``: the guided model as shipped; ``network``: its network alone; ``levin``: Levin et al. 2004;
    else prior weight:decay[:falloff] of the guided model's correction."""
    if spec == "levin":
        return ColorizationPipeline(load_model("levin"), name="Levin et al. 2004")
    if spec == "bundled":
        card = model.card
        return ColorizationPipeline(
            model, name=f"guided (decay {card.hint_decay:g}, falloff {card.hint_decay_falloff:g})"
        )
    if spec == "network":
        return ColorizationPipeline(model.with_card(hint_propagation="none"), name="guided network alone")
    weight, decay, falloff = (float(value) for value in [*spec.split(":"), "0"][:3])
    card = model.with_card(
        hint_propagation="levin", hint_decay=decay, hint_prior_weight=weight, hint_decay_falloff=falloff
    )
    return ColorizationPipeline(card, name=f"w {weight:g}, decay {decay:g}, falloff {falloff:g}")


def cells_of(
    pipeline: ColorizationPipeline, automatic: torch.Tensor, rgb: torch.Tensor, lab: torch.Tensor, label: str
) -> list[tuple]:
    """One row: (image, caption, clicks drawn) for gray, the automatic model, each of ``COUNTS`` clicks and the
    truth."""
    photo = pipeline.prepare_lightness(lab[:1])
    clicks = run_person(pipeline, photo, rgb, lab, max(COUNTS)).clicks
    cells = [(as_gray(rgb), label, ()), (automatic, f"{float(psnr(automatic[None], rgb[None])[0]):.1f} dB", ())]
    for count in COUNTS:
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
        "--corrections",
        default="network,0.375:0,0.375:0.0003",
        help="bundled, network, levin, or prior weight:decay[:falloff] of the guided model's correction",
    )
    parser.add_argument("--out", required=True, help="the image to write (.png, .webp)")
    args = parser.parse_args(argv)

    torch.set_flush_denormal(True)
    model, dataset = load_model(args.model), open_dataset(args.data)
    pipelines = [pipeline_of(spec, model) for spec in args.corrections.split(",")]
    automatic = ColorizationPipeline(load_model("default"))
    rows = []
    for index in args.indices:
        rgb = dataset[index][0]
        lab = uint8_to_lab(rgb[None])[0]
        colours = automatic.render(automatic.predict([automatic.prepare_lightness(lab[:1])])[0]).cpu()
        for pipeline in pipelines:
            rows.append({"lab": lab, "cells": cells_of(pipeline, colours, rgb, lab, f"#{index}: {pipeline.name}")})
    titles = ["gray", "automatic", *(f"{n} click{'s' if n > 1 else ''}" for n in COUNTS), "truth"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    draw(rows, titles, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
