"""A bounded load test of ``polychrome serve`` on localhost: N concurrent clients post real photos to
/api/colorize, a fixed number of requests within a time limit. Reports failures, p50/p95 latency,
throughput and the server's peak memory (VmHWM of its process).

    python benchmarks/serve_load.py --clients 16 --requests 64 --model default
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from polychrome.settings import data_root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument(
        "--time-limit", type=float, default=300.0, help="seconds; requests not done by then count as failed"
    )
    parser.add_argument("--model", default="default")
    args = parser.parse_args()

    photos = sorted((data_root() / "sample-photos").glob("*.png"))
    payloads = [(p.name, p.read_bytes()) for p in photos]
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polychrome",
            "serve",
            "--model",
            args.model,
            "--port",
            str(port),
            "--db",
            "/tmp/polychrome-load.sqlite",
            "--study-data",
            "/tmp/polychrome-load",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        idle_mb = peak_rss_mb(server.pid)
        deadline = time.perf_counter() + args.time_limit

        def one(k: int) -> tuple[int, float]:
            name, data = payloads[k % len(payloads)]
            start = time.perf_counter()
            try:
                response = httpx.post(
                    f"{url}/api/colorize",
                    files={"image": (name, data, "image/png")},
                    timeout=max(1.0, deadline - start),
                )
                return response.status_code, time.perf_counter() - start
            except httpx.TransportError:
                return 0, time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - start
        latencies = sorted(t for status, t in results if status == 200)
        failed = sum(status != 200 for status, _ in results)
        print(
            f"{args.requests} requests from {args.clients} concurrent clients, model {args.model}, "
            f"{len(payloads)} sample photos ({sum(len(d) for _, d in payloads) / len(payloads) / 1e3:.0f} kB on average)"
        )
        print(
            f"failed: {failed}; p50 {statistics.median(latencies):.2f} s, p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s; "
            f"throughput {len(latencies) / wall:.2f} requests/s; server memory: {idle_mb:.0f} MB after start, "
            f"peak {peak_rss_mb(server.pid):.0f} MB"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
