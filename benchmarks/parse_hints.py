"""Parsing a render request's hints (``polychrome.hints.parse_hints``, what the guided page's every change runs on
all its hints): ``--hints`` seeded clicks of random colours, parsed once with no colour seen before and once more
with every colour seen (``hints.ab_of_rgb`` keeps a colour's Lab once computed).

    python benchmarks/parse_hints.py --hints 1000
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from polychrome.hints import ab_of_rgb, parse_hints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hints", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("$ python benchmarks/parse_hints.py " + shlex.join(sys.argv[1:]))
    rng = np.random.default_rng(args.seed)
    hints = [
        {"x": int(rng.integers(1732)), "y": int(rng.integers(1155)), "rgb": [int(v) for v in rng.integers(0, 256, 3)]}
        for _ in range(args.hints)
    ]
    ab_of_rgb.cache_clear()
    for label in ("new colours", "seen colours"):
        started = time.perf_counter()
        parse_hints(hints, (1155, 1732))
        seconds = time.perf_counter() - started
        print(f"{args.hints} hints, {label}: {seconds * 1e3:.1f} ms, {seconds * 1e3 / args.hints:.3f} ms a hint")


if __name__ == "__main__":
    main()
