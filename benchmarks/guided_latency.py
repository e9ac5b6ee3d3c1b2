"""Latency of one hint change on the guided page: a 2-megapixel photo, p50 and p95 over ``--changes`` changes.

The app runs in-process (FastAPI's TestClient: the route, its JSON, its lane and worker thread,
exactly what the page calls) with the bundled guided model (``--model``: any model that takes hints). Each change places or moves one hint (seeded), as a person does, and asks
for the display-size render (``POST /api/guided/TOKEN/render``). Then the same changes again through the
server-side pieces that render calls, each timed on its own (hint parsing, the network at its input size,
the merge at display size, the JPEG), so the table says which part costs what. Target: p95 under 150 ms.

    python benchmarks/guided_latency.py            # 1732x1155 from a shared sample photo, 30 changes
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image

from polychrome.serve import create_app, guided
from polychrome.serve.guided import GuidedEntry
from polychrome.settings import data_root


def photo_png(path: Path, width: int, height: int) -> bytes:
    """The photo resized to width x height (a smooth synthetic one when the shared photo is absent), as PNG."""
    if path.is_file():
        image = Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    else:
        y, x = np.mgrid[0:height, 0:width]
        pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
        image = Image.fromarray(pixels.astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def hint_states(width: int, height: int, changes: int, seed: int) -> list[list[dict]]:
    """``changes`` successive hint lists: each places a hint (up to 10) or then moves one, seeded."""
    rng = np.random.default_rng(seed)
    hints: list[dict] = []
    states = []
    for _ in range(changes):
        point = {"x": int(rng.integers(width)), "y": int(rng.integers(height))}
        if len(hints) < 10:
            hints = [*hints, {**point, "rgb": [int(v) for v in rng.integers(0, 256, 3)], "patch": 3}]
        else:
            moved = int(rng.integers(len(hints)))
            hints = [hint | point if index == moved else hint for index, hint in enumerate(hints)]
        states.append(hints)
    return states


def percentiles(seconds: list[float]) -> str:
    p50, p95 = np.percentile(np.array(seconds) * 1e3, [50, 95])
    return f"p50 {p50:6.1f} ms   p95 {p95:6.1f} ms"


def through_the_app(client: TestClient, token: str, states: list[list[dict]], pause: float) -> list[float]:
    times = []
    for hints in states:
        time.sleep(pause)
        start = time.perf_counter()
        response = client.post(f"/api/guided/{token}/render", json={"hints": hints})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return times


def by_part(entry: GuidedEntry, states: list[list[dict]], pause: float) -> dict[str, list[float]]:
    """The pieces ``guided.render_guided`` runs, each timed (the network, and the hint propagation its card names,
    on a hint state it has not seen)."""
    card = entry.pipeline.card
    network = f"network at {card.input_size}" + ("" if card.hint_propagation == "none" else " + propagation")
    parts: dict[str, list[float]] = {"parse hints": [], network: [], "merge at display size": [], "JPEG": []}
    for hints in states:
        entry.last = None
        time.sleep(pause)
        marks = [time.perf_counter()]
        local = guided.read_hints(entry, hints)
        marks.append(time.perf_counter())
        prediction = guided.guided_prediction(entry, local, full=False)
        marks.append(time.perf_counter())
        rgb = entry.pipeline.render(prediction, onto=entry.shown).permute(1, 2, 0).numpy()
        marks.append(time.perf_counter())
        guided.encode(rgb, entry.shown.alpha, png=False)
        marks.append(time.perf_counter())
        for name, begin, end in zip(parts, marks, marks[1:], strict=False):
            parts[name].append(end - begin)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1732)
    parser.add_argument("--height", type=int, default=1155)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--photo", type=Path, default=None, help="default: sample-photos/kodak_kodim23_half.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="guided", help="a model that takes hints, as load_colorizer names it")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between changes (a person's: about 1)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    photo = args.photo or data_root() / "sample-photos" / "kodak_kodim23_half.png"
    states = hint_states(args.width, args.height, args.changes, args.seed)
    with TestClient(create_app([args.model])) as client:
        files = {"image": ("photo.png", photo_png(photo, args.width, args.height), "image/png")}
        answer = client.post("/api/guided", files=files).json()
        through_the_app(client, answer["token"], states[:3], args.pause)  # warm-up: first calls allocate
        app_times = through_the_app(client, answer["token"], states, args.pause)
        entry = client.app.state.cache.get(answer["token"], GuidedEntry)
        parts = by_part(entry, states, args.pause)
        start = time.perf_counter()
        client.post(f"/api/guided/{answer['token']}/render?full=true", json={"hints": states[-1]})
        download = time.perf_counter() - start
    print("$ python benchmarks/guided_latency.py " + shlex.join(sys.argv[1:]))
    source = photo.name if photo.is_file() else "synthetic gradient"
    print(
        f"{args.width}x{args.height} photo ({source}), shown at {answer['display_width']}x{answer['display_height']}; "
        f"model {args.model} at {entry.pipeline.input_size}; torch threads {torch.get_num_threads()}; "
        f"{args.changes} hint changes; load average before {load:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(f"{'one hint change (POST render)':<32}{percentiles(app_times)}")
    for name, seconds in parts.items():
        print(f"  {name:<30}{percentiles(seconds)}")
    print(f"{'download (full-resolution PNG)':<32}{download * 1e3:6.1f} ms (once, network output reused)")


if __name__ == "__main__":
    main()
