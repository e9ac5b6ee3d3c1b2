"""Two memory layouts the pipeline chose for speed, each against the alternative, side by side in one run:

- the merge (``pipeline.merge``: ab upsampled and joined with L, Lab -> uint8 sRGB) in stripes of
  ``pipeline.STRIPE_PIXELS`` pixels against stripes of 2^20, at the guided page's display size (1024 x 683)
  and at a 12-megapixel photo's own size (``polychrome colorize``'s full-resolution render);
- the networks' forward pass with channels-last weights (what ``ColorizationPipeline`` sets on the CPU) against
  contiguous ones: the bundled guided model at its 128 x 128 input with two hints (one click on the page) and
  the bundled automatic model on batches of 1 and 8.

Each pair runs alternately, ``--rounds`` rounds of ``--repeats`` calls, on one torch thread (as ``polychrome
serve`` and ``colorize`` give the network); the table gives each side's median and the ratio. The stripes give the
same bits; the layouts the same output to within float32 rounding (the largest difference is printed).

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
    networks(args.rounds, args.repeats)


if __name__ == "__main__":
    main()
