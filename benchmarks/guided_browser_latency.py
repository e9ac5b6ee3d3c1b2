"""Click -> painted on the guided page, in Chromium: a 2-megapixel photo, p50 and p95 over ``--clicks`` clicks.

``polychrome serve`` runs in its own process, as a person starts it, with the bundled guided model (``--model``)
and the automatic model for the palette; Debian's chromium (``/usr/bin/chromium``), driven by Playwright, opens the page, and each click
places a hint as a person does. guided.js times each click from its pointerup to the decoded result
(``window.guidedTimings``) and splits it: waiting to be sent, the server's answer (the render request up to its
response headers; of it, the route's own time and its steps, from its ``Server-Timing`` header), the transfer of the JPEG, and
its decode. ``--pause`` is the time from one click's paint to the next click: by default 300 ms, about the fastest
a person clicks again after seeing the result (a visual reaction takes 200-250 ms before any choice of point or
colour); the correction's grid for the next click is made in that time (``ColorizationPipeline.interactive``). The first click (the palette model's forward pass
on the whole photo, once per upload) is a warm-up and not counted. Target: p95 under 150 ms on 2 idle cores.

    python benchmarks/guided_browser_latency.py      # 1732x1155 from a shared sample photo, 30 clicks
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from guided_latency import photo_png  # benchmarks/ is the script's folder
from playwright.sync_api import sync_playwright

from polychrome.settings import data_root

CHROMIUM = "/usr/bin/chromium"
MARKER_CLEARANCE = 24  # display pixels between clicks: a hint's marker is 18 across (style.css .hint-marker)
# How often the driver looks for the next timing: every animation frame (the default) kept the page drawing frames
# on the two cores the server needs while a click was timed; guided.js times the click itself, so this adds nothing
# to what is measured.
POLL_MS = 50


@contextlib.contextmanager
def serving(models: list[str], threads: int | None) -> Iterator[str]:
    """``polychrome serve`` in its own process, as a person runs it (its own interpreter, so the browser's driver
    here shares no lock with it), on a free loopback port; yields its base URL once /healthz answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "polychrome", "serve", "--port", str(port)]
    command += [word for model in models for word in ("--model", model)]
    command += ["--threads", str(threads)] if threads else []
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError(
                    f"polychrome serve stopped: {server.stderr.read().decode() if server.stderr else ''}"
                )
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def away_from(placed: list[np.ndarray], rng: np.random.Generator, width: float, height: float) -> np.ndarray:
    """A seeded point (x, y) in the middle 90% of a width x height box, at least MARKER_CLEARANCE pixels from
    every point ``placed``: a click on a hint's marker selects that hint (it renders nothing), which made runs of
    60 or more clicks wait for ever for a render that was never asked for."""
    while True:
        point = rng.uniform(0.05, 0.95, 2) * np.array([width, height])
        if all(np.hypot(*(point - other)) >= MARKER_CLEARANCE for other in placed):
            return point


def percentiles(milliseconds: list[float]) -> str:
    p50, p95 = np.percentile(np.array(milliseconds), [50, 95])
    return f"p50 {p50:6.1f} ms   p95 {p95:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1732)
    parser.add_argument("--height", type=int, default=1155)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--photo", type=Path, default=None, help="default: sample-photos/kodak_kodim23_half.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="guided", help="a model that takes hints, as load_colorizer names it")
    parser.add_argument("--threads", type=int, default=None, help="the server's --threads (default: its own)")
    parser.add_argument("--each", action="store_true", help="also print every click's timings, in order")
    parser.add_argument("--pause", type=int, default=300, help="milliseconds from one click's paint to the next click")
    args = parser.parse_args()
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    photo = args.photo or data_root() / "sample-photos" / "kodak_kodim23_half.png"
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as folder, serving([args.model, "default"], args.threads) as url:
        path = Path(folder) / "photo.png"
        path.write_bytes(photo_png(photo, args.width, args.height))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url + "/guided")
            page.set_input_files("#file", str(path))
            page.wait_for_function("document.getElementById('picture').dataset.hints !== undefined")
            box = page.locator("#picture").bounding_box()
            placed: list[np.ndarray] = []
            for click in range(args.clicks + 1):
                point = away_from(placed, rng, box["width"], box["height"])
                placed.append(point)
                page.mouse.click(box["x"] + point[0], box["y"] + point[1])
                page.wait_for_function(f"window.guidedTimings.length === {click + 1}", polling=POLL_MS)
                page.wait_for_timeout(args.pause)
            timings = page.evaluate("window.guidedTimings")[1:]
            shown = page.evaluate(
                "[document.getElementById('picture').width, document.getElementById('picture').height]"
            )
            browser.close()
    print("$ python benchmarks/guided_browser_latency.py " + shlex.join(sys.argv[1:]))
    source = photo.name if photo.is_file() else "synthetic gradient"
    print(
        f"{args.width}x{args.height} photo ({source}), shown at {shown[0]}x{shown[1]}; model {args.model}; "
        f"server: polychrome serve --threads {args.threads or 'default'}; {args.clicks} clicks after one warm-up; "
        f"JPEG {np.median([t['bytes'] for t in timings]) / 1024:.0f} KiB (median); "
        f"load average before {load:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    if args.each:
        for number, t in enumerate(timings, start=2):
            steps = " ".join(f"{step} {ms:.0f}" for step, ms in t.get("steps", {}).items())
            print(f"click {number:2d}: {t['total']:.0f} ms painted, {t['server']:.0f} ms server ({steps})")
    print(f"{'click -> painted':<28}{percentiles([t['total'] for t in timings])}")
    for part in ("queued", "server", "transfer", "decode"):
        print(f"  {part:<26}{percentiles([t[part] for t in timings])}")
        if part == "server" and timings[0].get("steps"):  # the route's own Server-Timing (code before it has none)
            print(f"    {'of which the route':<24}{percentiles([sum(t['steps'].values()) for t in timings])}")
            for step in timings[0]["steps"]:
                print(f"      {step:<22}{percentiles([t['steps'].get(step, 0.0) for t in timings])}")


if __name__ == "__main__":
    main()
