"""A lead for the guided model (issue 19, not shipped): the network's ab as a prior, and Levin et al. 2004's
propagation of what it got wrong at the hints. At each hinted pixel the residual (hint ab minus the network's ab)
is known; Levin's optimisation spreads it along L, and the output is network + spread residual: every hint is kept
exactly, as Levin keeps it, and the network's colours hold where the residual is small. ``full``: the residual solved at
the photo's resolution (a Levin solve per photo, 1-3 s at 481 x 321); ``low``: at the network's input size, then
upsampled (cheap enough for the web page).

PSNR on BSDS500 val (never test) for N in --counts, against the network alone and Levin alone:

    python experiments/guided_residual_levin.py --model guided --limit 15
"""

from __future__ import annotations

import argparse
import glob
import statistics

import torch
from torch.nn import functional as F

from polychrome.color import lab_to_uint8, uint8_to_lab
from polychrome.data.images import load_rgb
from polychrome.hints import evaluation_hints, hint_planes
from polychrome.levin import levin_colorize
from polychrome.pipeline import ColorizationPipeline, lightness_of, load_model, model_input
from polychrome.settings import data_root


def psnr(colour: torch.Tensor, truth: torch.Tensor) -> float:
    return float(10 * torch.log10(255**2 / (colour.float() - truth.float()).pow(2).mean()))


def spread_residual(lightness: torch.Tensor, ab: torch.Tensor, hint_ab: torch.Tensor, mask: torch.Tensor):
    """ab + Levin's propagation of (hint_ab - ab) from the hinted pixels (mask (1, H, W) > 0)."""
    residual = torch.where(mask > 0, hint_ab - ab, torch.zeros_like(ab))
    return ab + levin_colorize(lightness, residual, mask[0] > 0)


def colourings(pipeline: ColorizationPipeline, rgb: torch.Tensor, hints) -> dict[str, torch.Tensor]:
    """Each method's ab (2, H, W) for one photo: network, levin, network + residual at full and at input size."""
    lightness = lightness_of(rgb)
    size, side = rgb.shape[-2:], pipeline.input_size
    hint_ab, mask = hint_planes(hints, tuple(size))
    network = pipeline.predict_full_ab([lightness], hints=[hints])[0]
    small = model_input([lightness], side)[0]
    small_ab, small_mask = hint_planes(hints, tuple(size), (side, side))
    inputs = pipeline.hint_inputs([hints], None, [tuple(size)], (side, side))
    low = spread_residual(small, pipeline.predict_ab(small[None], None, inputs)[0], small_ab, small_mask)
    return {
        "network": network,
        "levin": levin_colorize(lightness, hint_ab, mask[0] > 0),
        "network + residual (full)": spread_residual(lightness, network, hint_ab, mask),
        "network + residual (low)": F.interpolate(low[None], size=tuple(size), mode="bilinear")[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided")
    parser.add_argument("--limit", type=int, default=15)
    parser.add_argument("--counts", default="5,10,20")
    args = parser.parse_args(argv)
    pipeline = ColorizationPipeline(load_model(args.model), name=args.model)
    files = sorted(glob.glob(str(data_root() / "bsds500" / "images" / "val" / "*.jpg")))[: args.limit]
    for count in (int(c) for c in args.counts.split(",")):
        scores: dict[str, list[float]] = {}
        for index, file in enumerate(files):
            rgb = torch.from_numpy(load_rgb(file)).permute(2, 0, 1)
            hints = evaluation_hints(uint8_to_lab(rgb[None])[0], 0, index, count)
            for name, ab in colourings(pipeline, rgb, hints).items():
                colour = lab_to_uint8(torch.cat([lightness_of(rgb), ab])[None])[0]
                scores.setdefault(name, []).append(psnr(colour, rgb))
        print(count, "hints:", ", ".join(f"{k} {statistics.mean(v):.2f} dB" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
