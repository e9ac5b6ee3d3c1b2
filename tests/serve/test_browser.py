"""The colourise page in a real browser: Debian's chromium driven by Playwright, against uvicorn.

With POLYCHROME_SCREENSHOTS=1 the screenshot goes to docs/screenshots/colorize.png (to regenerate the
README's picture); otherwise into the test's temporary folder.
"""

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

import polychrome
from polychrome.serve import create_app
from tests.conftest import shared

CHROMIUM = Path("/usr/bin/chromium")
REPOSITORY = Path(__file__).resolve().parents[2]

# The page's result image as a checksum of its decoded pixels, to tell two renderings apart.
PIXELS = """() => {
  const image = document.getElementById("result"), canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  return context.getImageData(0, 0, canvas.width, canvas.height).data.reduce((sum, v, i) => (sum + v * (i % 7 + 1)) % 1000000007, 0);
}"""
# How many pixels of the distribution canvas are neither blank nor white.
DRAWN = """() => {
  const canvas = document.getElementById("distribution");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 0; i < data.length; i += 4) drawn += data[i + 3] > 0 && (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250);
  return drawn;
}"""


@pytest.fixture
def server():
    """The app on a free loopback port (bound here, so no other process can take it first)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uvicorn_server = uvicorn.Server(uvicorn.Config(create_app(["default", "gray"]), log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(10)
    sock.close()


def test_colourise_a_photo_change_the_temperature_and_inspect_a_pixel(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    photo = shared("sample-photos", "kodak_kodim05_half.png")
    screenshots = REPOSITORY / "docs" / "screenshots" if os.environ.get("POLYCHROME_SCREENSHOTS") == "1" else tmp_path

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(20_000)
            elsewhere = []
            page.on("request", lambda request: request.url.startswith((server, "blob:", "data:")) or elsewhere.append(request.url))
            page.goto(server + "/")

            page.set_input_files("#file", photo)
            page.wait_for_function("(document.getElementById('result').dataset.temperature || '') !== ''")
            own = float(page.eval_on_selector("#result", "image => image.dataset.temperature"))
            assert own == polychrome.load_colorizer("default").temperature  # the slider starts at the model's own
            assert page.eval_on_selector("#result", "image => [image.naturalWidth, image.naturalHeight]") == [384, 256]
            assert page.is_visible("#compare") and page.is_visible("#download")
            first = page.evaluate(PIXELS)

            page.fill("#temperature", "0.2")
            page.wait_for_function("document.getElementById('result').dataset.temperature === '0.2'")
            assert page.evaluate(PIXELS) != first

            page.click("#compare", position={"x": 420, "y": 150})
            page.wait_for_selector("#dist-top:has-text('most likely ab')")
            assert page.evaluate(DRAWN) > 1000
            page.screenshot(path=str(screenshots / "colorize.png"), full_page=True)

            page.select_option("#model", "gray")
            page.wait_for_selector("#note:has-text('regression')")
            assert page.is_disabled("#temperature")
            assert elsewhere == []  # the page works offline
        finally:
            browser.close()
