"""The study page in a real browser (Debian's chromium through Playwright, the ``browser`` fixture of
conftest.py): a participant clicks through a short study, the database holds their answers, and the
admin's results page shows the fool rates.

``POLYCHROME_SCREENSHOTS=1`` uses real sample photos and saves the page to docs/screenshots/study.webp.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from polychrome import human_study as hs
from polychrome.serve.app import create_app
from tests.conftest import shared
from tests.serve import conftest
from tests.serve.conftest import running, save_screenshot
from tests.serve.test_human_study import PAIRS, PRACTICE, build_study, trials_of

SCREENSHOTS = os.environ.get("POLYCHROME_SCREENSHOTS") == "1"
DOCS = Path(__file__).parents[2] / "docs" / "screenshots"


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, hs.Store, list[str], Path]]:
    """The whole app on a free local port, with study "demo" (exposure 0: the pair stays until the
    answer) and study "flash" (shown for 1 s)."""
    sources = sorted(shared("sample-photos").glob("kodak_*.png"))[:6] if SCREENSHOTS else []
    store, data, models = build_study(tmp_path, exposure=0, sources=sources)
    hs.create_study(
        store, "flash", tmp_path / "photos", ["gray"], pairs=1, practice=0, exposure=1.0, data_dir=data, max_side=64
    )
    with running(create_app(models=[models[1]], db=store, study_data=data, admin_token="t")) as url:
        yield url, store, models, tmp_path


def participant_of(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "polychrome_participant")


def test_a_participant_completes_the_study_by_clicking(server, browser):
    from playwright.sync_api import expect

    url, store, models, tmp_path = server
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
            save_screenshot(page, DOCS / "study.webp" if SCREENSHOTS else tmp_path / "study.webp")
        page.keyboard.press("ArrowRight") if i % 2 else page.click("#study-pick-right")
    expect(page.locator("#study-done")).to_be_visible()
    expect(page.locator("#study-feedback")).not_to_contain_text("real one")  # test pairs get no feedback

    participant = participant_of(page)
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
        expect(row.locator("td").nth(1)).to_have_text(
            f"{100 * sum(t.real_side == 'left' for t in judged) / len(judged):.1f}%"
        )
        expect(row.locator("td").nth(4)).to_have_text(str(len(judged)))
    expect(page.locator("img.study-figure")).to_be_visible()
    assert all(re.match(re.escape(url) + "/|data:", address) for address in requested), requested


def test_a_participant_whose_cookie_is_lost_carries_on(server, browser):
    from playwright.sync_api import expect

    url, store, _, _ = server
    page = browser.new_page()
    page.goto(f"{url}/study/demo")
    page.click("#study-start")
    page.click("#study-pick-left")  # practice pair 1, with feedback
    participant = participant_of(page)
    page.context.clear_cookies()
    page.click("#study-continue")  # the server no longer knows this browser: the page resumes its participant
    expect(page.locator("#study-progress")).to_have_text(f"Practice pair 2 of {PRACTICE}")
    page.click("#study-pick-right")
    expect(page.locator("#study-feedback")).to_contain_text("photo is the real one")
    assert participant_of(page) == participant
    assert [t.answer for t in trials_of(store, participant)][:2] == ["left", "right"]

    page.context.clear_cookies()  # lost again, and this time the page cannot resume them: it offers Start again
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM trials WHERE participant_id = ?", (participant,))
        connection.exec_driver_sql("DELETE FROM participants WHERE id = ?", (participant,))
    page.click("#study-continue")
    expect(page.locator("#study-lost")).to_be_visible()
    expect(page.locator("#study-start")).to_have_text("Start again")
    page.click("#study-start")
    expect(page.locator("#study-progress")).to_have_text(f"Practice pair 1 of {PRACTICE}")
    assert participant_of(page) != participant


def test_a_missing_chromium_skips_on_a_developers_machine_and_fails_where_required(monkeypatch, tmp_path):
    missing = tmp_path / "chromium"
    for variable in ("POLYCHROME_REQUIRE_BROWSER", "POLYCHROME_REQUIRE_DATA"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=re.escape(f"needs Debian's chromium at {missing} (apt-get install chromium)")
    ):
        conftest.chromium_path(missing)
    for variable in ("POLYCHROME_REQUIRE_BROWSER", "POLYCHROME_REQUIRE_DATA"):
        monkeypatch.setenv(variable, "1")
        with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
            conftest.chromium_path(missing)
        monkeypatch.delenv(variable)
