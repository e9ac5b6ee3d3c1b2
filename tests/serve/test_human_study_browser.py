"""The study page in a real browser (Debian's chromium through Playwright): a participant clicks through a
short study, the database holds their answers, and the admin's results page shows the fool rates.

``POLYCHROME_SCREENSHOTS=1`` uses real sample photos and saves the page to docs/screenshots/study.png.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from polychrome.serve import human_study as hs
from polychrome.serve.app import create_app
from tests.conftest import shared
from tests.serve.test_human_study import PAIRS, PRACTICE, build_study, trials_of

SCREENSHOTS = os.environ.get("POLYCHROME_SCREENSHOTS") == "1"
DOCS = Path(__file__).parents[2] / "docs" / "screenshots"


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, hs.Store, list[str], Path]]:
    """The whole app on a free local port, in a background thread, with study "demo" (exposure 0: the
    pair stays until the answer) and study "flash" (shown for 1 s)."""
    sources = sorted(shared("sample-photos").glob("kodak_*.png"))[:6] if SCREENSHOTS else []
    store, data, models = build_study(tmp_path, exposure=0, sources=sources)
    hs.create_study(store, "flash", tmp_path / "photos", ["gray"], pairs=1, practice=0, exposure=1.0, data_dir=data, max_side=64)
    app = create_app(models=[models[1]], db=store, study_data=data, admin_token="t")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", store, models, tmp_path
    server.should_exit = True
    thread.join(timeout=5)


def test_a_participant_completes_the_study_by_clicking(server):
    url, store, models, tmp_path = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))

        page.goto(f"{url}/study/demo?exposure=0.5")  # the query cannot change the stored exposure (0)
        page.click("#study-start")
        for i in range(PRACTICE):
            expect(page.locator("#study-progress")).to_have_text(f"Practice pair {i + 1} of {PRACTICE}")
            page.click("#study-pick-left")
            expect(page.locator("#study-feedback")).to_contain_text("photo is the real one")
            page.click("#study-continue")
        for i in range(PAIRS):
            expect(page.locator("#study-progress")).to_have_text(f"Pair {i + 1} of {PAIRS}")
            page.wait_for_timeout(600 if i == 0 else 0)  # longer than the 0.5 s asked for in the URL
            expect(page.locator("#study-left")).to_be_visible()
            expect(page.locator("#study-right")).to_be_visible()
            if i == 0:
                page.screenshot(path=DOCS / "study.png" if SCREENSHOTS else tmp_path / "study.png")
            page.keyboard.press("ArrowRight") if i % 2 else page.click("#study-pick-right")
        expect(page.locator("#study-done")).to_be_visible()
        expect(page.locator("#study-feedback")).not_to_contain_text("real one")  # test pairs get no feedback

        participant = next(c["value"] for c in page.context.cookies() if c["name"] == "polychrome_participant")
        trials = trials_of(store, participant)
        assert [t.answer for t in trials] == ["left"] * PRACTICE + ["right"] * PAIRS
        assert all(t.answered_at >= t.shown_at and t.response_ms >= 0 for t in trials)
        assert trials_of(store, participant)[PRACTICE].response_ms >= 600

        page.goto(f"{url}/study/flash")  # a pair shown for 1 s is hidden afterwards, and can still be answered
        page.click("#study-start")
        expect(page.locator("#study-pick-left")).to_be_enabled()  # enabled once the pair is on screen
        expect(page.locator("#study-left")).to_be_hidden(timeout=3000)
        page.click("#study-pick-left")
        expect(page.locator("#study-done")).to_be_visible()

        page.goto(f"{url}/study/demo/results?token=t")
        for model in models:  # always "right" on test pairs: fooled exactly when the real photo was on the left
            judged = [t for t in trials if t.phase == "test" and t.model == model]
            row = page.locator("#fool-rates tbody tr").filter(has_text=model)
            expect(row.locator("td").nth(1)).to_have_text(f"{100 * sum(t.real_side == 'left' for t in judged) / len(judged):.1f}%")
            expect(row.locator("td").nth(4)).to_have_text(str(len(judged)))
        expect(page.locator("img.study-figure")).to_be_visible()
        browser.close()
    assert all(re.match(re.escape(url) + "/|data:", address) for address in requested), requested
