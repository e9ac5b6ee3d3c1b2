"""Training throughput of the options polychrome offers (channels-last, bf16 autocast as
``trainer.precision=bf16-mixed`` trains, torch.compile) against the plain float32 model, measured one after the
other in one run on the same batches; ``--rounds`` repeats the whole sequence, so a machine whose load changes
shows it as rounds that disagree.

    python benchmarks/train_step.py --model eccv16 --width 0.25 --size 32 --batch-size 64 --steps 30
    python benchmarks/train_step.py --size 64 --batch-size 32 --steps 20 --rounds 2
"""

from __future__ import annotations

import argparse
import time

import torch

from polychrome.color import ab_gamut, is_grayscale, uint8_to_lab
from polychrome.losses import LossConfig, colour_loss
from polychrome.models import create_model


def images_per_second(model, batches, bins, weights, steps: int, channels_last: bool, bf16: bool = False) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    for i in range(steps + 3):  # 3 warm-up steps (and compilation) are not timed
        if i == 3:
            start = time.perf_counter()
        lab = uint8_to_lab(batches[i % len(batches)])
        if channels_last:
            lab = lab.contiguous(memory_format=torch.channels_last)
        with autocast:
            output = model(lab[:, :1])
        loss = colour_loss(
            output.float(), lab[:, 1:], ~is_grayscale(lab[:, 1:]), LossConfig("rebalanced_ce"), bins, weights
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
    parser.add_argument("--rounds", type=int, default=1, help="repeat every variant this many times, interleaved")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8, generator=generator)
        for _ in range(4)
    ]
    bins, weights = ab_gamut(), torch.ones(313)
    variants = {
        "plain": (False, False, False),
        "channels_last": (True, False, False),
        "bf16": (False, False, True),
        "bf16+channels_last": (True, False, True),
    } | ({"compile": (False, True, False)} if args.compile else {})
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (channels_last, compiled, bf16) in variants.items():
            torch.manual_seed(0)
            model = create_model(args.model, width=args.width)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            if compiled:
                model = torch.compile(model)
            results[name].append(images_per_second(model, batches, bins, weights, args.steps, channels_last, bf16))
    print(
        f"{args.model} width {args.width}, {args.size} px, batch {args.batch_size}, {args.steps} steps, "
        f"torch threads {torch.get_num_threads()}, {args.rounds} round(s)"
    )
    for name, speeds in results.items():
        ratios = " ".join(f"{speed / plain:.2f}x" for speed, plain in zip(speeds, results["plain"], strict=True))
        print(f"{name:<20} {' '.join(f'{v:7.1f}' for v in speeds)} images/s   {ratios} plain")


if __name__ == "__main__":
    main()
