"""The guided page's memory over many clicks: the app in-process (as ``benchmarks/guided_latency.py`` runs it)
with ``--photos`` photos open at once, their clicks interleaved (each photo's hints grow to 12, then the oldest
is dropped as a new one comes), the process's resident memory printed every 50 renders and once more after the
correction thread has been idle long enough to end (``--idle``; ``ColorizationPipeline.interactive``: it keeps the
last few grids' factors while clicks come and drops them a minute after they stop). To compare with another
version of the code, run this script with ``PYTHONPATH`` at that version's ``src``.

    python benchmarks/guided_memory.py --renders 450
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np
from fastapi.testclient import TestClient
from guided_latency import photo_png  # benchmarks/ is the script's folder

from polychrome.serve import create_app
from polychrome.settings import data_root


def resident_megabytes() -> float:
    """This process's resident set (Linux: /proc/self/statm's second field, in pages)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=450)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.25, help="seconds between renders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--idle", type=float, default=65.0, help="seconds to wait at the end (the thread's 60 + 5)")
    args = parser.parse_args()
    print("$ python benchmarks/guided_memory.py " + shlex.join(sys.argv[1:]))
    photo = data_root() / "sample-photos" / "kodak_kodim23_half.png"
    rng = np.random.default_rng(args.seed)
    with TestClient(create_app(["guided"])) as client:
        tokens = []
        for index in range(args.photos):  # different sizes: different photos to the server
            files = {"image": ("photo.png", photo_png(photo, 800 + 40 * index, 600), "image/png")}
            tokens.append(client.post("/api/guided", files=files).json()["token"])
        hints: dict[str, list[dict]] = {token: [] for token in tokens}
        for render in range(args.renders):
            token = tokens[render % len(tokens)]
            point = {"x": int(rng.integers(800)), "y": int(rng.integers(600)), "patch": 1}
            hints[token] = [*hints[token][-11:], {**point, "rgb": [int(v) for v in rng.integers(0, 256, 3)]}]
            response = client.post(f"/api/guided/{token}/render", json={"hints": hints[token]})
            assert response.status_code == 200, response.text
            if render % 50 == 0:
                print(f"after {render + 1:4d} renders: {resident_megabytes():6.0f} MB resident")
            time.sleep(args.pause)
        print(f"after {args.renders:4d} renders: {resident_megabytes():6.0f} MB resident")
        time.sleep(args.idle)
        print(f"idle {args.idle:.0f} s later:      {resident_megabytes():6.0f} MB resident")


if __name__ == "__main__":
    main()
