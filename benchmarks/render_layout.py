"""What the pipeline's render chose for speed, each against the alternative, side by side in one run:

- the merge (``pipeline.merge``: ab upsampled and joined with L, Lab -> uint8 sRGB) in stripes of
  ``pipeline.STRIPE_PIXELS`` pixels against stripes of 2^20, at the guided page's display size (1024 x 683)
  and at a 12-megapixel photo's own size (``polychrome colorize``'s full-resolution render);
- the merge's Lab -> uint8 sRGB (``color.lightness_ab_to_uint8``: CIE's cube written without a mask, a matmul
  laid out as its result, no concatenation of L and ab) against the textbook form it replaced (``torch.where``
  on the cube's threshold, an einsum, L and ab concatenated), at display size;
- the networks' forward pass with channels-last weights (what ``ColorizationPipeline`` sets on the CPU) against
  contiguous ones: the bundled guided model at its 128 x 128 input with two hints (one click on the page) and
  the bundled automatic model on batches of 1 and 8.

Each pair runs alternately, ``--rounds`` rounds of ``--repeats`` calls, on one torch thread (as ``polychrome
serve`` and ``colorize`` give the network); the table gives each side's median and the ratio. The stripes give the
same bits; the layouts the same output to within float32 rounding (the largest difference is printed); the two
Lab forms differ by one level at a few dark pixels (how many is printed).

    python benchmarks/render_layout.py
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import polychrome
from polychrome import pipeline as pipeline_module
from polychrome.color import lab as lab_module
from polychrome.hints import parse_hints


def timed(run: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls."""
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        spent.append((time.perf_counter() - started) * 1e3)
    return spent


def side_by_side(label: str, runs: dict[str, Callable[[], object]], rounds: int, repeats: int) -> None:
    """Both runs alternately, after a warm-up; prints each median and the first's over the second's."""
    spent: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        timed(run, 2)
    for _ in range(rounds):
        for name, run in runs.items():
            spent[name] += timed(run, repeats)
    (first, a), (second, b) = ((name, float(np.median(ms))) for name, ms in spent.items())
    print(f"{label:<52}{first} {a:7.1f} ms   {second} {b:7.1f} ms   {second}/{first} {b / a:5.2f}x")


def with_stripes(pixels: int, lightness: torch.Tensor, ab: torch.Tensor) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        kept, pipeline_module.STRIPE_PIXELS = pipeline_module.STRIPE_PIXELS, pixels
        try:
            return pipeline_module.merge(lightness, ab)
        finally:
            pipeline_module.STRIPE_PIXELS = kept

    return run


def merges(rounds: int, repeats: int) -> None:
    generator = torch.Generator().manual_seed(0)
    ab = torch.randn(2, 128, 128, generator=generator) * 30
    chosen = pipeline_module.STRIPE_PIXELS
    for name, (height, width) in {"display 1024x683": (683, 1024), "full 4240x2832": (2832, 4240)}.items():
        lightness = torch.rand(1, height, width, generator=generator) * 100
        runs = {"stripes": with_stripes(chosen, lightness, ab), "one-MP": with_stripes(1 << 20, lightness, ab)}
        assert torch.equal(runs["stripes"](), runs["one-MP"]()), "stripes must give the same bits"
        side_by_side(f"merge, {name}", runs, rounds, max(1, repeats // (10 if name.startswith("full") else 1)))


def textbook_merge(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """``pipeline.merge`` as it was before 2026-12-07: the same stripes, Lab -> uint8 in the textbook form."""
    height, width = lightness.shape[-2:]
    ab = torch.nn.functional.interpolate(ab[None], size=(ab.shape[-2], width), mode="bilinear", align_corners=False)[0]
    out = torch.empty((3, height, width), dtype=torch.uint8)
    for top, bottom in pipeline_module._stripes(height, width):
        lab = torch.cat([lightness[:, top:bottom], pipeline_module._bilinear_rows(ab, height, top, bottom)])[None]
        fy = (lab[:, 0] + 16) / 116
        f = torch.stack([fy + lab[:, 1] / 500, fy, (fy - lab[:, 2] / 200).clamp(min=0)], dim=1)
        xyz = torch.where(f > 6 / 29, f.pow(3), f.mul(1 / 7.787).sub_(4 / 29 / 7.787))
        linear = torch.einsum("ij,njhw->nihw", lab_module._XYZ_TO_RGB.to(xyz), xyz).clamp_(0, 1)
        index = linear.mul_(lab_module._GAMMA_STEPS - 1).add_(0.5).int()
        out[:, top:bottom] = lab_module._GAMMA.index_select(0, index.flatten()).view(index.shape)[0]
    return out


def lab_forms(rounds: int, repeats: int) -> None:
    generator = torch.Generator().manual_seed(0)
    ab = torch.randn(2, 128, 128, generator=generator) * 30
    lightness = torch.rand(1, 683, 1024, generator=generator) * 100
    runs = {"maskless": lambda: pipeline_module.merge(lightness, ab), "textbook": lambda: textbook_merge(lightness, ab)}
    differing = (runs["maskless"]() != runs["textbook"]()).sum().item()
    side_by_side(f"merge's Lab form, display ({differing} of 2.1M differ)", runs, rounds, repeats)


@torch.no_grad()
def networks(rounds: int, repeats: int) -> None:
    generator = torch.Generator().manual_seed(0)
    guided = polychrome.load_colorizer("guided")  # channels-last, as the pipeline sets it on the CPU
    clicks = [{"x": 10, "y": 20, "rgb": [200, 30, 30]}, {"x": 100, "y": 50, "rgb": [20, 200, 30]}]
    photo = guided.prepare(np.zeros((128, 128, 3), np.uint8))
    hints = guided._hint_inputs([parse_hints(clicks, (128, 128))], [None], [photo])
    cases = [("guided, 1 x 128 x 128, two hints", "guided", torch.rand(1, 1, 128, 128, generator=generator) * 100)]
    cases += [
        (f"default, {n} x 64 x 64", "default", torch.rand(n, 1, 64, 64, generator=generator) * 100) for n in (1, 8)
    ]
    for label, name, lightness in cases:
        inputs = (lightness, *hints) if name == "guided" else (lightness,)
        last = polychrome.load_colorizer(name).model
        plain = polychrome.load_colorizer(name).model.to(memory_format=torch.contiguous_format)
        runs = {"channels-last": lambda last=last, inputs=inputs: last(*inputs)}
        runs["contiguous"] = lambda plain=plain, inputs=inputs: plain(*inputs)
        difference = (runs["channels-last"]() - runs["contiguous"]()).abs().max().item()
        side_by_side(f"{label} (max diff {difference:.1e})", runs, rounds, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("$ python benchmarks/render_layout.py " + shlex.join(sys.argv[1:]))
    merges(args.rounds, args.repeats)
    lab_forms(args.rounds, args.repeats)
    networks(args.rounds, args.repeats)


if __name__ == "__main__":
    main()
