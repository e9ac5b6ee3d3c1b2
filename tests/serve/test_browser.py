"""The colourise page in a real browser: Debian's chromium driven by Playwright, against uvicorn.

One server and one browser serve the whole module; each test opens its own page (a fresh browser
context, so no state leaks between tests). The server's limits are small (UPLOAD_LIMIT, MAX_PIXELS)
so the tests can cross them with small files.

With POLYCHROME_SCREENSHOTS=1 the screenshot goes to docs/screenshots/colorize.webp (to regenerate the
README's picture); otherwise into the test's temporary folder.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import polychrome
from polychrome.serve import create_app
from tests.conftest import shared
from tests.serve.conftest import running, save_screenshot

REPOSITORY = Path(__file__).resolve().parents[2]
UPLOAD_LIMIT = 2 * 2**20
MAX_PIXELS = 1_000_000
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

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
# True once the page has finished with an upload: a new result shown, or an error said.
SETTLED = """(previous) => {
  const status = document.getElementById("status"), result = document.getElementById("result");
  if (status.classList.contains("error")) return true;
  return result.src !== previous && result.complete && result.naturalWidth > 0 && !status.textContent.startsWith("Colourising");
}"""


@pytest.fixture(scope="module")
def server():
    with running(create_app(["default", "gray"], upload_limit=UPLOAD_LIMIT, max_pixels=MAX_PIXELS)) as url:
        yield url


@pytest.fixture
def open_page(server, browser):
    """Opens the colourise page in a fresh context: ``open_page(viewport, **context_options)``."""
    contexts = []

    def open_(viewport=DESKTOP, **options):
        context = browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(server + "/")
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Test files: the parrots (384x256), an 1800x300 panorama, and a JPEG over MAX_PIXELS."""
    folder = tmp_path_factory.mktemp("photos")
    ramp = np.linspace(0, 255, 1800, dtype=np.uint8)
    Image.fromarray(np.tile(ramp, (300, 1))).save(folder / "panorama_1800x300.png")
    Image.new("RGB", (1500, 1000), "gray").save(folder / "over_pixels_1500x1000.jpg")
    return {
        "parrots": shared("sample-photos", "kodak_kodim23_half.png"),
        "panorama": folder / "panorama_1800x300.png",
        "over_pixels": folder / "over_pixels_1500x1000.jpg",
    }


def upload(page, path) -> None:
    """Choose ``path`` in the file chooser and wait until the page shows its result or an error."""
    previous = page.eval_on_selector("#result", "image => image.src")
    page.set_input_files("#file", path)
    page.wait_for_function(SETTLED, arg=previous)


def status(page) -> tuple[str, bool]:
    return page.inner_text("#status"), page.eval_on_selector("#status", "s => s.classList.contains('error')")


def test_colourise_a_photo_change_the_temperature_and_inspect_a_pixel(server, open_page, tmp_path):
    screenshots = REPOSITORY / "docs" / "screenshots" if os.environ.get("POLYCHROME_SCREENSHOTS") == "1" else tmp_path
    page = open_page(DESKTOP)
    elsewhere = []
    page.on(
        "request", lambda request: request.url.startswith((server, "blob:", "data:")) or elsewhere.append(request.url)
    )
    page.reload()

    upload(page, shared("sample-photos", "kodak_kodim05_half.png"))
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
    save_screenshot(page, screenshots / "colorize.webp")

    page.select_option("#model", "gray")
    page.wait_for_selector("#note:has-text('regression')")
    assert page.is_disabled("#temperature")
    assert elsewhere == []  # the page works offline


def test_a_rejected_upload_leaves_the_shown_photo_and_its_name_alone(open_page, photos):
    page = open_page(DESKTOP)
    upload(page, photos["parrots"])
    page.click("#compare", position={"x": 100, "y": 100})
    page.wait_for_selector("#dist-top:has-text('most likely ab')")

    upload(page, photos["over_pixels"])
    message, is_error = status(page)
    assert is_error and "over_pixels_1500x1000.jpg" in message and "kodak_kodim23_half.png" in message
    assert page.is_visible("#marker") and page.evaluate(DRAWN) > 1000  # the parrots' pixel, still inspected
    assert page.get_attribute("#download", "download") == "kodak_kodim23_half-colourised.png"

    page.fill("#temperature", "0.3")
    page.wait_for_function("document.getElementById('result').dataset.temperature === '0.3'")
    message, is_error = status(page)
    assert not is_error and "kodak_kodim23_half.png" in message
    with page.expect_download() as saving:
        page.click("#download")
    download = saving.value
    assert download.suggested_filename == "kodak_kodim23_half-colourised.png"
    with Image.open(download.path()) as saved:
        assert saved.size == (384, 256)

    page.eval_on_selector("#status", "s => { s.textContent = ''; s.classList.remove('error'); }")
    upload(page, photos["over_pixels"])  # the same file again is still a choice the page answers
    assert status(page)[1]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_photos_keep_their_aspect_ratio(open_page, photos, viewport):
    page = open_page(viewport)
    for name in ("panorama", "parrots"):
        upload(page, photos[name])
        shown = page.eval_on_selector(
            "#result",
            "image => { const box = image.getBoundingClientRect();"
            " return [box.width, box.height, image.naturalWidth, image.naturalHeight]; }",
        )
        width, height, natural_width, natural_height = shown
        assert abs(width - height * natural_width / natural_height) <= 1, f"{name} drawn {width}x{height}"
        assert width <= viewport["width"]


def test_the_upload_limit_counts_the_file_and_names_sizes_a_person_can_compare(open_page, tmp_path):
    page = open_page(DESKTOP)
    sent = []
    page.on("request", lambda request: "api/predict" in request.url and sent.append(request.url))
    at_limit, over_limit = tmp_path / "at_limit.jpg", tmp_path / "one_byte_over.jpg"
    at_limit.write_bytes(b"\0" * UPLOAD_LIMIT)
    over_limit.write_bytes(b"\0" * (UPLOAD_LIMIT + 1))

    upload(page, over_limit)
    message, is_error = status(page)
    assert is_error and sent == []
    assert message.startswith(
        f"one_byte_over.jpg is 2.0 MiB ({UPLOAD_LIMIT + 1:,} bytes), "
        f"above this server's limit of 2.0 MiB ({UPLOAD_LIMIT:,} bytes)"
    )

    upload(page, at_limit)  # within the limit: the page sends it, and the server judges it
    assert len(sent) == 1


def test_the_keyboard_reaches_the_file_chooser_visibly_and_inspects_pixels(open_page, photos):
    page = open_page(DESKTOP)
    outline = (
        "() => { const style = getComputedStyle(document.getElementById('drop'));"
        " return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0; }"
    )
    assert not page.evaluate(outline)
    page.focus("#file")
    assert page.evaluate(outline)  # the 1x1 input is invisible; its drop zone shows the focus

    upload(page, photos["parrots"])
    page.focus("#file")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "compare"
    page.keyboard.press("ArrowRight")  # the first key puts the marker in the middle
    page.wait_for_selector("#dist-top:has-text('most likely ab')")
    assert page.is_visible("#marker") and page.evaluate(DRAWN) > 1000
    assert page.inner_text("#dist-top").startswith("pixel (192, 128)")
    page.keyboard.press("ArrowRight")  # a fiftieth of the longer side: 384 / 50, about 8 pixels
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowLeft")  # one pixel
    x, y = 192 + 8 - 1, 128 + 8
    page.wait_for_selector(f"#dist-top:has-text('pixel ({x}, {y})')")
    marker = page.eval_on_selector("#marker", "m => [parseFloat(m.style.left), parseFloat(m.style.top)]")
    assert marker == pytest.approx([(x + 0.5) / 384 * 100, (y + 0.5) / 256 * 100])


def test_a_tap_on_a_phone_brings_the_distribution_into_view(open_page, photos):
    page = open_page(PHONE, has_touch=True, is_mobile=True)
    upload(page, photos["parrots"])
    page.tap("#compare")
    page.wait_for_selector("#dist-top:has-text('most likely ab')")
    page.wait_for_function("""() => {
      const box = document.getElementById("distribution").getBoundingClientRect();
      return box.top >= 0 && box.bottom <= window.innerHeight;
    }""")


def test_the_temperature_shown_is_the_selected_models_own_and_says_when_it_does_not_apply(open_page, photos):
    own = polychrome.load_colorizer("default").temperature
    page = open_page(DESKTOP)
    page.wait_for_function(f"document.getElementById('temperature-value').textContent === '{own:.2f}'")

    upload(page, photos["parrots"])
    assert page.inner_text("#temperature-value") == f"{own:.2f}"  # no jump on the first upload
    page.fill("#temperature", "0.2")
    page.wait_for_function("document.getElementById('result').dataset.temperature === '0.2'")

    page.select_option("#model", "gray")
    page.wait_for_selector("#note:has-text('regression')")
    assert page.is_disabled("#temperature")
    assert "does not apply" in page.inner_text("#temperature-value")

    page.select_option("#model", "default")
    page.wait_for_function(f"document.getElementById('result').dataset.temperature === '{own:g}'")
    assert page.inner_text("#temperature-value") == f"{own:.2f}"
    said = page.inner_text("#temperature-origin")
    assert f"{own:.2f}" in said and "default" in said


def test_a_model_chosen_while_a_photo_is_on_its_way_applies_to_that_photo(open_page, photos):
    page = open_page(DESKTOP)
    upload(page, photos["parrots"])
    page.set_input_files("#file", shared("sample-photos", "kodak_kodim05_half.png"))
    page.select_option("#model", "gray")
    page.wait_for_function("document.getElementById('status').textContent.endsWith(', gray')")
    assert page.inner_text("#status").startswith("kodak_kodim05_half.png:")
    assert page.get_attribute("#download", "download") == "kodak_kodim05_half-colourised.png"
