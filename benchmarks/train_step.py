"""Training throughput of the options polychrome offers (channels-last, torch.compile) against the plain
model, measured one after the other in one run on the same batches.

    python benchmarks/train_step.py --model eccv16 --width 0.25 --size 32 --batch-size 64 --steps 30
"""

from __future__ import annotations

import argparse
import time

import torch

from polychrome.color import ab_gamut, is_grayscale, uint8_to_lab
from polychrome.losses import LossConfig, colour_loss
from polychrome.models import create_model


def images_per_second(model, batches, bins, weights, steps: int, channels_last: bool) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    for i in range(steps + 3):  # 3 warm-up steps (and compilation) are not timed
        if i == 3:
            start = time.perf_counter()
        lab = uint8_to_lab(batches[i % len(batches)])
        if channels_last:
            lab = lab.contiguous(memory_format=torch.channels_last)
        loss = colour_loss(
            model(lab[:, :1]), lab[:, 1:], ~is_grayscale(lab[:, 1:]), LossConfig("rebalanced_ce"), bins, weights
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * len(batches[0]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="eccv16")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on CPU)")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8, generator=generator)
        for _ in range(4)
    ]
    bins, weights = ab_gamut(), torch.ones(313)
    variants = {"plain": (False, False), "channels_last": (True, False)} | (
        {"compile": (False, True)} if args.compile else {}
    )
    results = {}
    for name, (channels_last, compiled) in variants.items():
        torch.manual_seed(0)
        model = create_model(args.model, width=args.width)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if compiled:
            model = torch.compile(model)
        results[name] = images_per_second(model, batches, bins, weights, args.steps, channels_last)
    for name, speed in results.items():
        print(f"{name:<14} {speed:8.1f} images/s   {speed / results['plain']:.2f}x plain")


if __name__ == "__main__":
    main()
