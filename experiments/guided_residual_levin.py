"""How the guided model's hint propagation was chosen (issue 19; ``ModelCard.hint_propagation``): the network's
ab as a prior, and Levin et al. 2004's propagation of what it got wrong at the hints
(``polychrome.levin.propagate_residual``). At each hinted pixel the residual (hint ab minus w times the network's
ab) is known; Levin's optimisation spreads it along L, and the output is w x network + the spread residual: every
hint is kept exactly, as Levin keeps it. Each variant is solved at the network's input size and upsampled (what
``hint_propagation="levin"`` does: cheap enough for the web page): ``--decays`` (a pull of the residual towards 0
away from the hints, ``RESIDUAL_DECAY``; prior weight 1) and ``--prior-weights`` w (decay 0, ``PRIOR_WEIGHT``; 0 is
Levin's method at the network's size); ``--photo-size`` adds the default solved at the photo's own resolution (a
Levin solve per photo, 1-3 s at 481 x 321).

PSNR on BSDS500 val (never test), for N in --counts, against the network alone and Levin alone at the photo's size
(the constants' comments in polychrome/levin.py quote these runs):

    python experiments/guided_residual_levin.py --limit 15 --counts 1,2,5,10,20 --decays 0,0.0003,0.001,0.003,0.01
    python experiments/guided_residual_levin.py --limit 40 --counts 1,5,10,20 --decays "" --prior-weights 0,0.25,0.375,0.5,0.75,1
"""

from __future__ import annotations

import argparse
import glob
import statistics

import torch

from polychrome.color import lab_to_uint8, uint8_to_lab
from polychrome.data.images import load_rgb
from polychrome.hints import evaluation_hints, hint_planes
from polychrome.levin import PRIOR_WEIGHT, RESIDUAL_DECAY, levin_colorize, propagate_residual
from polychrome.models import load_model, upsample_ab
from polychrome.pipeline import ColorizationPipeline, lightness_of
from polychrome.settings import data_root


def psnr(colour: torch.Tensor, truth: torch.Tensor) -> float:
    return float(10 * torch.log10(255**2 / (colour.float() - truth.float()).pow(2).mean()))


def colourings(pipeline: ColorizationPipeline, rgb: torch.Tensor, hints, decays, weights, photo_size: bool):
    """Each method's ab (2, H, W) for one photo: the network alone (``pipeline``: hint_propagation none), Levin
    alone, the network + the residual propagated at the network's size for each decay (what
    ``hint_propagation="levin"`` does, with ``RESIDUAL_DECAY``) and, with ``photo_size``, at the photo's size."""
    prediction = pipeline.predict([pipeline.prepare(rgb)], [hints])[0]
    lightness, size, small = prediction.photo.lightness, prediction.photo.size, prediction.photo.network_input
    hint_ab, mask = hint_planes(hints, size)
    inputs, network = prediction.hint_inputs, prediction.ab[None]
    methods = {"network": network, "levin": levin_colorize(lightness, hint_ab, mask[0] > 0)[None]}
    for decay in decays:
        methods[f"+ residual, decay {decay:g}"] = propagate_residual(
            small, network, *inputs[:2], decay=decay, prior_weight=1.0
        )
    for weight in weights:
        methods[f"+ residual, prior weight {weight:g}"] = propagate_residual(
            small, network, *inputs[:2], decay=0.0, prior_weight=weight
        )
    if photo_size:
        full = upsample_ab(network, size)
        methods["+ residual at photo size"] = propagate_residual(lightness[None], full, hint_ab[None], mask[None])
    return {name: upsample_ab(ab, size)[0] for name, ab in methods.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided")
    parser.add_argument("--limit", type=int, default=15)
    parser.add_argument("--counts", default="5,10,20")
    parser.add_argument("--decays", default=f"{RESIDUAL_DECAY:g}", help="decays of the residual (prior weight 1)")
    parser.add_argument("--prior-weights", default=f"{PRIOR_WEIGHT:g}", help="prior weights of the network (decay 0)")
    parser.add_argument("--photo-size", action="store_true", help="also propagate at the photo's size (1-3 s a photo)")
    args = parser.parse_args(argv)
    pipeline = ColorizationPipeline(load_model(args.model).with_card(hint_propagation="none"), name=args.model)
    decays = [float(d) for d in args.decays.split(",") if d]
    weights = [float(w) for w in args.prior_weights.split(",") if w]
    files = sorted(glob.glob(str(data_root() / "bsds500" / "images" / "val" / "*.jpg")))[: args.limit]
    for count in (int(c) for c in args.counts.split(",")):
        scores: dict[str, list[float]] = {}
        for index, file in enumerate(files):
            rgb = torch.from_numpy(load_rgb(file)).permute(2, 0, 1)
            hints = evaluation_hints(uint8_to_lab(rgb[None])[0], 0, index, count)
            for name, ab in colourings(pipeline, rgb, hints, decays, weights, args.photo_size).items():
                colour = lab_to_uint8(torch.cat([lightness_of(rgb), ab])[None])[0]
                scores.setdefault(name, []).append(psnr(colour, rgb))
        print(count, "hints:", ", ".join(f"{k} {statistics.mean(v):.2f} dB" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
