"""The guided page in a real browser: Debian's chromium driven by Playwright, against uvicorn.

Colours must move to the hints, so the hints go to Levin's model (it keeps them exactly); a tiny untrained
U-Net taking local and global hints stands in for the bundled guided model where only the controls matter
(the reference photo). With POLYCHROME_SCREENSHOTS=1 the screenshot goes to docs/screenshots/guided.webp.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polychrome.cli import main
from polychrome.color import rgb_to_lab
from polychrome.hints import load_hint_file
from polychrome.models import build_model, save_weights
from polychrome.serve import create_app
from tests.conftest import shared
from tests.serve.conftest import running, save_screenshot

REPOSITORY = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 96, 64
RED, BLUE = [200, 30, 40], [30, 60, 200]

# The colour on show at pixel (x, y) of the result (the picture canvas holds it at display size).
SHOWN = """([x, y]) => {
  const context = document.getElementById("picture").getContext("2d");
  return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
}"""
# The whole image on show as [height, width, rgb] rows.
EVERY_PIXEL = """() => {
  const canvas = document.getElementById("picture"), context = canvas.getContext("2d");
  return [canvas.height, canvas.width, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
}"""
# True once the image on show was rendered from hints of these colours (in order).
RENDERED = """(colours) => {
  const state = document.getElementById("picture").dataset.hints;
  return state !== undefined && JSON.stringify(JSON.parse(state).hints.map((h) => h.rgb)) === JSON.stringify(colours);
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("unet_guided", channels=(4, 8, 16), head="regression")
    tiny = save_weights(model, tmp_path_factory.mktemp("weights") / "guided.safetensors", input_size=32)
    with running(create_app(["levin", str(tiny)])) as url:
        yield url


@pytest.fixture
def page(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server + "/guided")
    yield page
    context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """Two gray halves, lighter on the left: Levin keeps a hint's colour over its half."""
    rgb = np.full((HEIGHT, WIDTH, 3), 150, np.uint8)
    rgb[:, WIDTH // 2 :] = 70
    path = tmp_path_factory.mktemp("photos") / "halves.png"
    Image.fromarray(rgb).save(path)
    return path


def ab_of(rgb) -> np.ndarray:
    values = torch.tensor(np.asarray(rgb, dtype=np.float64) / 255).view(3, 1, 1)
    return rgb_to_lab(values)[1:, 0, 0].numpy()


def open_photo(page, path) -> None:
    page.set_input_files("#file", str(path))
    page.wait_for_function(RENDERED, arg=[])


def click_pixel(page, x: int, y: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
    box = page.locator("#picture").bounding_box()
    page.mouse.click(box["x"] + (x + 0.5) / size[0] * box["width"], box["y"] + (y + 0.5) / size[1] * box["height"])


def shown_ab(page) -> np.ndarray:
    """The ab (2, H, W) of the image on show."""
    height, width, data = page.evaluate(EVERY_PIXEL)
    rgb = torch.tensor(data, dtype=torch.float64).view(height, width, 4)[..., :3].permute(2, 0, 1) / 255
    return rgb_to_lab(rgb)[1:].numpy()


def test_two_hints_move_the_colours_then_undo_and_downloads(page, photo, tmp_path):
    open_photo(page, photo)
    points = [(10, 20), (80, 40)]
    before = [page.evaluate(SHOWN, list(point)) for point in points]

    for index, ((x, y), colour) in enumerate(zip(points, (RED, BLUE), strict=True)):
        click_pixel(page, x, y)
        if index == 0:  # a hint starts as the colour on show there (nothing rendered since ``before``)
            assert page.input_value("#picker") == "#{:02x}{:02x}{:02x}".format(*before[0])
        page.fill("#picker", "#{:02x}{:02x}{:02x}".format(*colour))
    page.wait_for_function(RENDERED, arg=[RED, BLUE])
    for point, colour, was in zip(points, (RED, BLUE), before, strict=True):
        now = page.evaluate(SHOWN, list(point))
        distance_before = np.linalg.norm(ab_of(was) - ab_of(colour))
        distance_now = np.linalg.norm(ab_of(now) - ab_of(colour))
        assert distance_now < distance_before / 4, (point, was, now, colour)
    assert page.inner_text("#count") == "2 hints."
    page.wait_for_selector(".swatch >> nth=7")  # the palette at the last hint, asked for once its render is shown
    assert page.locator(".swatch").count() == 8
    assert "colours the automatic model finds likely here" in page.get_attribute(".swatch >> nth=0", "title")

    with page.expect_download() as download:
        page.click("#download-hints")
    saved = tmp_path / "hints.json"
    download.value.save_as(saved)
    loaded = load_hint_file(saved, (HEIGHT, WIDTH))
    assert [(h.x, h.y, list(h.rgb)) for h in loaded.local] == [(10, 20, RED), (80, 40, BLUE)]
    assert loaded.reference is None and set(json.loads(saved.read_text())) == {"hints"}
    with page.expect_download() as download:
        page.click("#download")
    download.value.save_as(tmp_path / "result.png")
    downloaded = np.asarray(Image.open(tmp_path / "result.png"))
    assert downloaded.shape == (HEIGHT, WIDTH, 3)
    # The command line reproduces the download from the downloaded hints.
    out = tmp_path / "cli"
    assert main(["colorize", str(photo), "--hints", str(saved), "--model", "levin", "--out", str(out), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(out / f"{photo.stem}.png")), downloaded)

    page.locator("#board").focus()
    page.keyboard.press("Control+z")  # placing a hint and picking its colour are one step
    page.wait_for_function(RENDERED, arg=[RED])
    assert page.inner_text("#count") == "1 hint."
    page.click("#undo")
    page.wait_for_function(RENDERED, arg=[])
    assert page.is_disabled("#undo")


def test_move_recolour_from_the_palette_and_delete_a_hint(page, photo):
    open_photo(page, photo)
    click_pixel(page, 10, 20)
    page.fill("#picker", "#c81e28")
    page.wait_for_function(RENDERED, arg=[RED])
    marker = page.locator(".hint-marker").bounding_box()
    box = page.locator("#picture").bounding_box()
    page.mouse.move(marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 30.5 / WIDTH * box["width"], box["y"] + 50.5 / HEIGHT * box["height"], steps=5)
    page.mouse.up()
    page.wait_for_function("JSON.parse(document.getElementById('picture').dataset.hints).hints[0].x === 30")
    assert json.loads(page.get_attribute("#picture", "data-hints"))["hints"] == [
        {"x": 30, "y": 50, "rgb": RED, "patch": 1}
    ]
    page.wait_for_selector("#palette-caption:has-text('Suggested at (30, 50)')")  # the moved hint's palette
    swatch = [int(v) for v in page.get_attribute(".swatch >> nth=2", "data-rgb").split(",")]
    page.click(".swatch >> nth=2")
    page.wait_for_function(RENDERED, arg=[swatch])
    page.locator("#board").focus()
    page.keyboard.press("Delete")
    page.wait_for_function(RENDERED, arg=[])
    assert page.inner_text("#count") == "No hints yet."


def test_a_refused_render_is_shown_and_the_hints_are_kept(page, photo):
    open_photo(page, photo)
    page.route("**/render", lambda route: route.fulfill(status=400, json={"error": "hints[0]: refused for the test"}))
    click_pixel(page, 10, 20)
    page.wait_for_selector("#status.error")
    assert page.inner_text("#status") == "hints[0]: refused for the test (your hints are kept)"
    assert page.inner_text("#count") == "1 hint." and page.locator(".hint-marker").count() == 1


def test_a_reference_photo_for_a_model_taking_global_hints(page, photo, tmp_path):
    assert page.is_hidden("#reference-box")  # levin, the first model, takes no reference
    open_photo(page, photo)
    page.select_option("#model", index=1)
    page.wait_for_selector("#reference-box", state="visible")
    reference = tmp_path / "sunset.png"
    Image.new("RGB", (40, 30), (230, 120, 40)).save(reference)
    page.set_input_files("#reference-file", str(reference))
    page.wait_for_selector("#reference-status:has-text('Reference: sunset.png')")
    page.wait_for_selector("#status:has-text('reference sunset.png')")
    with page.expect_download() as download:
        page.click("#download-hints")
    download.value.save_as(tmp_path / "hints.json")
    assert load_hint_file(tmp_path / "hints.json", (HEIGHT, WIDTH)).reference == reference  # read beside the file
    page.click("#remove-reference")
    page.wait_for_selector("#remove-reference", state="hidden")
    page.select_option("#model", "levin")
    page.wait_for_selector("#reference-note:has-text('levin takes no reference photo')")


def test_true_colours_as_hints_bring_a_real_photo_closer_to_its_colours(page, tmp_path):
    """A person who knows the colours: eight clicks with the photo's true colours, and the colourisation on
    show comes closer to the truth (Levin's propagation of them); the screenshot for the docs."""
    screenshots = REPOSITORY / "docs" / "screenshots" if os.environ.get("POLYCHROME_SCREENSHOTS") == "1" else tmp_path
    path = shared("sample-photos", "kodak_kodim23_half.png")
    truth = np.asarray(Image.open(path).convert("RGB"))
    height, width = truth.shape[:2]
    true_ab = rgb_to_lab(torch.from_numpy(truth.copy()).permute(2, 0, 1).double() / 255)[1:].numpy()
    open_photo(page, path)
    error_before = np.abs(shown_ab(page) - true_ab).mean()
    points = [(x * width // 5, y * height // 3) for y in (1, 2) for x in (1, 2, 3, 4)]
    colours = [truth[y, x].tolist() for x, y in points]
    for (x, y), colour in zip(points, colours, strict=True):
        click_pixel(page, x, y, (width, height))
        page.fill("#picker", "#{:02x}{:02x}{:02x}".format(*colour))
    page.wait_for_function(RENDERED, arg=colours)
    error_after = np.abs(shown_ab(page) - true_ab).mean()
    assert error_after < 0.9 * error_before, (error_before, error_after)
    save_screenshot(page, screenshots / "guided.webp")
