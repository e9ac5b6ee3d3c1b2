"""The server stays up for everyone: slow work (Levin, large photos) runs in its own lane, a request that would
wait too long is refused at once with 503 and Retry-After, a render's hints are bounded and parsed off the event
loop. Slow jobs are test doubles that block until released, so every test takes about a second."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from polychrome.levin import MAX_PIXELS
from polychrome.serve import create_app, guided
from polychrome.serve.guided_routes import MAX_HINTS, MAX_RENDER_BYTES
from polychrome.serve.prediction_cache import Busy, Gate
from tests.serve.conftest import running

HINT: dict[str, Any] = {"x": 3, "y": 4, "rgb": [200, 30, 40]}


def upload(width: int = 40, height: int = 30, value: int | None = None) -> dict:
    rng = np.random.default_rng(0)
    shape = (height, width, 3)
    rgb = np.full(shape, value, np.uint8) if value is not None else rng.integers(0, 256, shape, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return {"image": ("photo.png", buffer.getvalue(), "image/png")}


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    message = response.json()["error"]
    assert "\n" not in message
    return message


def timed(ask) -> tuple[requests.Response, float]:
    start = time.monotonic()
    response = ask()
    return response, time.monotonic() - start


def blocking(monkeypatch, name: str) -> tuple[threading.Event, threading.Event]:
    """``guided.<name>`` replaced by a test double that says it started and blocks until released (at most 30 s),
    then does the real work: a stand-in for a 25-second job."""
    started, release = threading.Event(), threading.Event()
    real = getattr(guided, name)

    def slow(*args):
        started.set()
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(guided, name, slow)
    return started, release


def test_healthz_and_a_small_colourisation_answer_while_a_slow_job_runs_and_a_full_slow_lane_says_when_to_retry(
    monkeypatch,
):
    started, release = blocking(monkeypatch, "render_guided")
    app = create_app(["levin", "gray"])
    with running(app) as url, ThreadPoolExecutor(1) as pool:
        colorize = lambda: requests.post(url + "/api/colorize", files=upload(), data={"model": "gray"}, timeout=5)  # noqa: E731
        assert colorize().status_code == 200  # the model loaded before the clock starts
        token = requests.post(url + "/api/guided", files=upload(), data={"model": "levin"}, timeout=5).json()["token"]
        render = f"{url}/api/guided/{token}/render?full=true"
        download = pool.submit(requests.post, render, json={"hints": [HINT]}, timeout=60)
        try:
            assert started.wait(10)
            for ask in (lambda: requests.get(url + "/healthz", timeout=5), colorize):
                response, seconds = timed(ask)
                assert response.status_code == 200 and seconds < 1, (response.text, seconds)
            app.state.lanes.slow.max_waiting = 0  # the slow lane's queue is full: another Levin render is refused
            response, seconds = timed(lambda: requests.post(render, json={"hints": []}, timeout=5))
            assert "busy" in error_of(response, 503) and seconds < 1
            assert int(response.headers["retry-after"]) >= 1
        finally:
            release.set()
        assert download.result().status_code == 200


async def until(condition) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.01)


def test_a_full_queue_or_a_long_expected_wait_is_refused_at_once_with_the_wait_to_retry_after():
    async def scenario(max_waiting: int, typical: float, ran: float = 0.0) -> tuple[Busy, float]:
        """A third job for a lane running a long one (for ``ran`` seconds so far) with another waiting, its recent
        jobs having taken ``typical`` seconds: its refusal, and how long that took."""
        gate, release = Gate("slow lane", timeout=30, max_waiting=max_waiting), threading.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(gate.run, release.wait, 10)
            await until(lambda: gate.started is not None)
            tasks.start_soon(gate.run, lambda: None)
            await until(lambda: gate.waiting == 1)
            gate.typical = typical
            gate.started = time.monotonic() - ran
            start = time.monotonic()
            try:
                await gate.run(lambda: None)
            except Busy as refusal:
                return refusal, time.monotonic() - start
            finally:
                release.set()
        raise AssertionError("the third job was admitted")

    refusal, seconds = anyio.run(scenario, 1, 0.0)
    assert seconds < 0.5 and refusal.retry_after == 1
    assert str(refusal) == "the server is busy: the slow lane has 1 request waiting already; try again in about 1 s"
    refusal, seconds = anyio.run(scenario, 5, 20.0)  # room in the queue, but two 20-second jobs ahead
    assert seconds < 0.5 and refusal.retry_after in (40, 41)
    assert str(refusal).startswith(
        "the server is busy: the slow lane would keep you waiting about 40 s, above the limit of 30 s; try again in"
    )
    # The lane's first job, no average yet, has run 20 s: guessed to need as long again, and the waiter as long.
    refusal, seconds = anyio.run(scenario, 5, 0.0, 20.0)
    assert seconds < 0.5 and refusal.retry_after in (40, 41)


def test_a_render_request_is_parsed_off_the_event_loop(monkeypatch):
    started, release = blocking(monkeypatch, "read_hints")
    app = create_app(["levin"])
    with running(app) as url, ThreadPoolExecutor(1) as pool:
        token = requests.post(url + "/api/guided", files=upload(), data={"model": "levin"}, timeout=5).json()["token"]
        render = pool.submit(requests.post, f"{url}/api/guided/{token}/render", json={"hints": [HINT]}, timeout=60)
        try:
            assert started.wait(10)  # the hints are being parsed (slowly: 20,000 of them take 2.7 s)
            response, seconds = timed(lambda: requests.get(url + "/healthz", timeout=5))
            assert response.status_code == 200 and seconds < 1
        finally:
            release.set()
        assert render.result().status_code == 200


def test_too_many_hints_or_too_large_a_render_request_is_refused_in_one_line():
    with TestClient(create_app(["levin"])) as client:
        token = client.post("/api/guided", files=upload(), data={"model": "levin"}).json()["token"]
        address = f"/api/guided/{token}/render"
        assert client.post(address, json={"hints": [HINT] * MAX_HINTS}).status_code == 200
        message = error_of(client.post(address, json={"hints": [HINT] * (MAX_HINTS + 1)}), 400)
        assert message == "1,001 hints in one request, above this server's limit of 1,000; send fewer hints"
        stroke = {"stroke": [[0, 0]] * MAX_HINTS, "width": 1, "rgb": [1, 2, 3]}  # each point counts as a hint
        message = error_of(client.post(address, json={"hints": [HINT, stroke]}), 400)
        assert message == "1,001 hints in one request, above this server's limit of 1,000; send fewer hints"
        padded = b'{"hints": []' + b" " * MAX_RENDER_BYTES + b"}"
        message = error_of(client.post(address, content=padded, headers={"content-type": "application/json"}), 413)
        assert message.startswith("the render request is 256.0 KiB (262,157 bytes), above the limit of 256.0 KiB")
        assert message.endswith("(room for 1,000 hints); send fewer hints")
        assert "not JSON" in error_of(client.post(address, content=b"{hints"), 400)
        assert error_of(client.post(address, json=[HINT]), 400) == 'the request body must be {"hints": [...]}, got list'


def test_a_levin_download_above_its_pixel_limit_is_refused_naming_the_limit():
    width, height = 1500, MAX_PIXELS // 1500 + 1  # just above the limit; flat, so it encodes in no time
    with TestClient(create_app(["levin"])) as client:
        token = client.post("/api/guided", files=upload(width, height, 128), data={"model": "levin"}).json()["token"]
        response = client.post(f"/api/guided/{token}/render?full=true", json={"hints": [HINT]})
    message = error_of(response, 422)
    assert message.startswith(f"Levin's optimisation is limited to {MAX_PIXELS:,} pixels")
    assert f"this photo is {width}x{height} = {width * height:,} pixels" in message
    assert "resize it to at most 2.1 megapixels" in message


def test_large_photos_and_levin_go_to_the_slow_lane():
    lanes = create_app(["gray"], fast_pixels=1000).state.lanes
    assert lanes.choose(1000) is lanes.fast and lanes.choose(None) is lanes.fast
    assert lanes.choose(1001) is lanes.slow and lanes.choose(10, solve=True) is lanes.slow


@pytest.mark.parametrize("pixels", [(40, 30), (41, 30)])
def test_an_upload_goes_to_the_lane_its_pixels_choose(pixels, monkeypatch):
    app = create_app(["gray"], fast_pixels=1200)
    used: list[str] = []
    for lane in ("fast", "slow"):
        gate = getattr(app.state.lanes, lane)

        def recording(job, *args, lane=lane, run=gate.run):
            used.append(lane)
            return run(job, *args)

        monkeypatch.setattr(gate, "run", recording)
    with TestClient(app) as client:
        assert client.post("/api/colorize", files=upload(*pixels)).status_code == 200
    assert used == (["fast"] if pixels[0] * pixels[1] <= 1200 else ["slow"])
