"""Does the server stay up for everyone while slow work runs? A live server (uvicorn on localhost, real sockets)
gets a full-size Levin download of a 2-megapixel photo (10 hints), and while it runs: ``/healthz`` and a plain
``/api/colorize`` of a small photo (the bundled model), timed; more Levin downloads from other visitors (what
each gets, how soon, and its Retry-After); a render request with 20,000 hints and one of 25 MB (refused, how
soon, with ``/healthz`` timed meanwhile).

    python benchmarks/serve_lanes.py
"""

from __future__ import annotations

import argparse
import io
import shlex
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
import uvicorn
from PIL import Image

from polychrome.serve import create_app
from polychrome.settings import data_root


def png_of(path: Path, width: int | None = None, height: int | None = None) -> bytes:
    image = Image.open(path).convert("RGB")
    if width and height:
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def serve(app) -> str:
    """``app`` on a free loopback port in a daemon thread; its base URL once it listens."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def timed(ask) -> tuple[requests.Response, float]:
    start = time.perf_counter()
    response = ask()
    return response, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=data_root() / "sample-photos" / "kodak_kodim23_half.png")
    parser.add_argument("--size", default="1732x1155", help="the Levin download's size (default 2 megapixels)")
    parser.add_argument("--others", type=int, default=3, help="Levin downloads other visitors ask for meanwhile")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    big, small = png_of(args.photo, width, height), png_of(args.photo)
    url = serve(create_app(["default", "levin"]))
    print(f"$ python {shlex.join(sys.argv)}")

    colorize = lambda: requests.post(url + "/api/colorize", files={"image": ("s.png", small)}, timeout=120)  # noqa: E731
    healthz = lambda: requests.get(url + "/healthz", timeout=120)  # noqa: E731
    colorize()  # the model loaded first
    alone = [timed(colorize)[1] for _ in range(5)]
    token = requests.post(url + "/api/guided", files={"image": ("b.png", big)}, data={"model": "levin"}).json()["token"]
    rng = np.random.default_rng(0)
    hints: list[Any] = [
        {"x": int(rng.integers(width)), "y": int(rng.integers(height)), "rgb": [200, 30, 40]} for _ in range(10)
    ]
    download = f"{url}/api/guided/{token}/render?full=true"
    with ThreadPoolExecutor(1 + args.others) as pool:
        first = pool.submit(timed, lambda: requests.post(download, json={"hints": hints}, timeout=600))
        time.sleep(1)
        health = [timed(healthz)[1] for _ in range(5)]
        during = [timed(colorize)[1] for _ in range(5)]
        others = []
        for index in range(args.others):  # each a different hint state, so each needs its own solve
            body = {"hints": hints[: index + 1]}
            others.append(pool.submit(timed, lambda body=body: requests.post(download, json=body, timeout=600)))
            time.sleep(0.5)
        many: dict[str, Any] = {"hints": [{"x": 1, "y": 1, "rgb": [1, 2, 3]}] * 20_000}
        refused_many, many_seconds = timed(lambda: requests.post(download, json=many, timeout=120))
        huge = b'{"hints": [' + b" " * (25 * 2**20 - 20) + b"]}"
        refused_huge, huge_seconds = timed(lambda: requests.post(download, data=huge, timeout=120))
        health_after = timed(healthz)[1]
        response, seconds = first.result()
        print(f"Levin download {width}x{height}, 10 hints: {response.status_code} in {seconds:.1f} s")
        print(
            f"/api/colorize alone         p50 {statistics.median(alone) * 1e3:6.0f} ms  max {max(alone) * 1e3:6.0f} ms"
        )
        print(
            f"/api/colorize during it     p50 {statistics.median(during) * 1e3:6.0f} ms  max {max(during) * 1e3:6.0f} ms"
        )
        print(
            f"/healthz during it          p50 {statistics.median(health) * 1e3:6.0f} ms  max {max(health) * 1e3:6.0f} ms"
        )
        for index, future in enumerate(others, 1):
            answer, waited = future.result()
            retry = answer.headers.get("retry-after", "-")
            print(f"another Levin download #{index}: {answer.status_code} after {waited:.1f} s (Retry-After {retry})")
        print(
            f"20,000 hints: {refused_many.status_code} in {many_seconds * 1e3:.0f} ms: {refused_many.json()['error']}"
        )
        print(
            f"25 MB request: {refused_huge.status_code} in {huge_seconds * 1e3:.0f} ms; /healthz then {health_after * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
