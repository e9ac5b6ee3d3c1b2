"""How torch's thread count changes one guided colourisation, the unit of work the server runs: on idle cores
and beside two training-like torch jobs (a machine someone shares). Each setting in a fresh process, timed
in turn; the median and the slowest of ``--repeat`` renders after two warm-up ones.

A render is what the guided page asks for per click: the bundled guided model at its input size with a hint,
its hint correction, and the merge with a 1024x768 photo's L. ``polychrome serve`` and ``polychrome colorize``
give the network half the cores' threads (``polychrome.cli.inference_threads``); this is why.

    python benchmarks/threads.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

from colorize import busy_neighbours

RENDER = """
import json, sys, time
import numpy as np, torch
from polychrome.colorize import load_colorizer
from polychrome.hints import LocalHint
torch.set_num_threads(int(sys.argv[1]))
torch.set_flush_denormal(True)
pipeline = load_colorizer("guided")
photo = pipeline.prepare(np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8))
seconds = []
for click in range(int(sys.argv[2]) + 2):
    start = time.perf_counter()
    prediction = pipeline.predict([photo], [[LocalHint.from_rgb(10 + click, 20, (200, 30, 30))]])[0]
    pipeline.render(prediction)
    seconds.append(time.perf_counter() - start)
print(json.dumps(seconds[2:]))
"""


def renders(threads: int, repeat: int) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", RENDER, str(threads), str(repeat)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="timed renders per setting")
    args = parser.parse_args()
    print("| torch threads | idle: median / slowest | beside two torch jobs: median / slowest |\n|---:|---:|---:|")
    for threads in (1, 2):
        cells = []
        for busy in (False, True):
            with busy_neighbours() if busy else nullcontext():
                time.sleep(0.5)
                seconds = renders(threads, args.repeat)
            cells.append(f"{statistics.median(seconds):.3f} s / {max(seconds):.3f} s")
        print(f"| {threads} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
