"""What the web tests share: the app on a real uvicorn server, and Debian's chromium through Playwright.

Browser tests skip with the install command on a developer's machine without chromium (or without
Playwright), and fail instead where POLYCHROME_REQUIRE_BROWSER=1 or POLYCHROME_REQUIRE_DATA=1 (CI), so CI
never skips them.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")


def save_screenshot(page, path: Path) -> None:
    """The page, whole, as a lossless WebP (the docs' screenshots: the same pixels as Playwright's PNG in about
    60% of its bytes)."""
    Image.open(io.BytesIO(page.screenshot(full_page=True))).save(path, lossless=True, method=6)


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port (bound here, so no other process can take it
    first) in a background thread; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def browser_required() -> bool:
    return "1" in (os.environ.get("POLYCHROME_REQUIRE_BROWSER"), os.environ.get("POLYCHROME_REQUIRE_DATA"))


def missing_browser(reason: str) -> None:
    """Skip with ``reason``, or fail with it where the browser tests are required."""
    if browser_required():
        pytest.fail(f"{reason}; POLYCHROME_REQUIRE_BROWSER or POLYCHROME_REQUIRE_DATA is set, so this is an error")
    pytest.skip(reason)


def chromium_path(path: Path = CHROMIUM) -> Path:
    """Debian's chromium, or a skip (a failure where required) saying how to install it."""
    if not path.exists():
        missing_browser(f"needs Debian's chromium at {path} (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser():
    """A headless chromium driven by Playwright's sync API (Playwright never downloads a browser here), one
    for a test module (about 1.5 s a launch); tests open their own contexts or pages in it."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_browser("needs Playwright (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=["--no-sandbox"], headless=True)
        try:
            yield launched
        finally:
            launched.close()
