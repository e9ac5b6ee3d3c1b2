"""How the guided model's hint propagation was chosen (issue 19; ``ModelCard.hint_propagation``): the network's
ab as a prior, and Levin et al. 2004's propagation of what it got wrong at the hints. At each hinted pixel the
residual (hint ab minus the network's ab) is known; Levin's optimisation spreads it along L, and the output is
network + spread residual (``polychrome.levin.propagate_residual``): every hint is kept exactly, as Levin keeps it,
and the network's colours hold where the residual is small. ``photo size``: the residual solved at the photo's
resolution (a Levin solve per photo, 1-3 s at 481 x 321); ``network size``: at the network's input size, then
upsampled (what ``hint_propagation="levin"`` does: cheap enough for the web page).

PSNR on BSDS500 val (never test) for N in --counts, against the network alone and Levin alone:

    python experiments/guided_residual_levin.py --model guided --limit 15
"""

from __future__ import annotations

import argparse
import glob
import statistics

import torch

from polychrome.color import lab_to_uint8, uint8_to_lab
from polychrome.data.images import load_rgb
from polychrome.hints import evaluation_hints, hint_planes
from polychrome.levin import RESIDUAL_DECAY, levin_colorize, propagate_residual
from polychrome.models import upsample_ab
from polychrome.pipeline import ColorizationPipeline, lightness_of, load_model, model_input
from polychrome.settings import data_root


def psnr(colour: torch.Tensor, truth: torch.Tensor) -> float:
    return float(10 * torch.log10(255**2 / (colour.float() - truth.float()).pow(2).mean()))


def colourings(pipeline: ColorizationPipeline, rgb: torch.Tensor, hints, decays, photo_size: bool):
    """Each method's ab (2, H, W) for one photo: the network alone (``pipeline``: hint_propagation none), Levin
    alone, the network + the residual propagated at the network's size for each decay (what
    ``hint_propagation="levin"`` does, with ``RESIDUAL_DECAY``) and, with ``photo_size``, at the photo's size."""
    lightness, size = lightness_of(rgb), tuple(rgb.shape[-2:])
    side = (pipeline.input_size, pipeline.input_size)
    hint_ab, mask = hint_planes(hints, size)
    small = model_input([lightness], side)
    inputs = pipeline.hint_inputs([hints], None, [size], side)
    network = pipeline.predict_ab(small, None, inputs)
    methods = {"network": network, "levin": levin_colorize(lightness, hint_ab, mask[0] > 0)[None]}
    for decay in decays:
        methods[f"+ residual, decay {decay:g}"] = propagate_residual(small, network, *inputs[:2], decay=decay)
    if photo_size:
        full = upsample_ab(network, size)
        methods["+ residual at photo size"] = propagate_residual(lightness[None], full, hint_ab[None], mask[None])
    return {name: upsample_ab(ab, size)[0] for name, ab in methods.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided")
    parser.add_argument("--limit", type=int, default=15)
    parser.add_argument("--counts", default="5,10,20")
    parser.add_argument("--decays", default=f"0,{RESIDUAL_DECAY:g}", help="decays of the propagated residual")
    parser.add_argument("--photo-size", action="store_true", help="also propagate at the photo's size (1-3 s a photo)")
    args = parser.parse_args(argv)
    pipeline = ColorizationPipeline(load_model(args.model).with_card(hint_propagation="none"), name=args.model)
    decays = [float(d) for d in args.decays.split(",")]
    files = sorted(glob.glob(str(data_root() / "bsds500" / "images" / "val" / "*.jpg")))[: args.limit]
    for count in (int(c) for c in args.counts.split(",")):
        scores: dict[str, list[float]] = {}
        for index, file in enumerate(files):
            rgb = torch.from_numpy(load_rgb(file)).permute(2, 0, 1)
            hints = evaluation_hints(uint8_to_lab(rgb[None])[0], 0, index, count)
            for name, ab in colourings(pipeline, rgb, hints, decays, args.photo_size).items():
                colour = lab_to_uint8(torch.cat([lightness_of(rgb), ab])[None])[0]
                scores.setdefault(name, []).append(psnr(colour, rgb))
        print(count, "hints:", ", ".join(f"{k} {statistics.mean(v):.2f} dB" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
