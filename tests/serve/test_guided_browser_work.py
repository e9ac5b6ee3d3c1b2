"""The guided page's work in a real browser (Debian's chromium through Playwright, against uvicorn): strokes,
the work kept over a reload, a hint file loaded back, the keyboard, the busy line, a phone's layout, the palette
on a new photo and the reference's label after a refusal.

Colours must move to the hints, so the hints go to Levin's model (it keeps them exactly); the tiny untrained
guided U-Net of test_guided_browser.py stands in where a reference photo is needed. Photos are tiny.
"""

import json

import numpy as np
import pytest
from PIL import Image

from polychrome.hints import load_hint_file
from tests.serve.test_guided_browser import (  # noqa: F401  (server and photo are fixtures)
    BLUE,
    HEIGHT,
    RED,
    RENDERED,
    SHOWN,
    WIDTH,
    ab_of,
    click_pixel,
    open_photo,
    photo,
    server,
)

HINTS_ON_SHOW = "JSON.parse(document.getElementById('picture').dataset.hints || '{\"hints\": []}').hints"


@pytest.fixture
def page(server, browser):  # noqa: F811
    """A fresh context per test, so each starts with nothing kept in the browser (IndexedDB)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server + "/guided")
    yield page
    context.close()


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#picture").bounding_box()
    return box["x"] + (x + 0.5) / WIDTH * box["width"], box["y"] + (y + 0.5) / HEIGHT * box["height"]


def hex_of(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def on_show(page) -> list[dict]:
    return page.evaluate(HINTS_ON_SHOW)


def test_press_and_drag_paints_a_stroke_that_colours_along_it_and_is_deleted_undone_and_saved(
    page,
    photo,  # noqa: F811
    tmp_path,
):
    open_photo(page, photo)
    along = [(12, 10), (20, 30), (28, 50)]  # in the lighter left half
    before = [page.evaluate(SHOWN, list(point)) for point in along]
    page.mouse.move(*screen_point(page, 4, 10))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 20, 10), steps=6)
    page.mouse.move(*screen_point(page, 28, 50), steps=8)
    page.mouse.up()
    page.fill("#picker", hex_of(RED))  # the stroke just painted is selected
    page.wait_for_function(RENDERED, arg=[RED])
    (stroke,) = on_show(page)
    assert set(stroke) == {"stroke", "width", "rgb"} and stroke["width"] == 5 and stroke["rgb"] == RED
    assert len(stroke["stroke"]) >= 3 and stroke["stroke"][0] == [4, 10]
    assert stroke["stroke"][-1] == [28, 50]
    assert page.locator("#strokes polyline.stroke").count() == 1 and page.locator(".hint-marker").count() == 0
    assert page.inner_text("#count") == "0 hints, 1 stroke."
    for point, was in zip(along, before, strict=True):
        now = page.evaluate(SHOWN, list(point))
        assert np.linalg.norm(ab_of(now) - ab_of(RED)) < np.linalg.norm(ab_of(was) - ab_of(RED)) / 4, (point, was, now)

    with page.expect_download() as download:
        page.click("#download-hints")
    download.value.save_as(tmp_path / "hints.json")
    assert json.loads((tmp_path / "hints.json").read_text())["hints"] == [stroke]
    assert len(load_hint_file(tmp_path / "hints.json", (HEIGHT, WIDTH)).local) >= 40  # a patch per pixel along it

    click_pixel(page, 80, 40)  # a plain click is still a click hint
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 2 && 'x' in {HINTS_ON_SHOW}[1]")
    page.mouse.click(*screen_point(page, 12, 10))  # on the stroke: selects it
    page.keyboard.press("Delete")
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 1 && 'x' in {HINTS_ON_SHOW}[0]")
    page.click("#undo")
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 2 && 'stroke' in {HINTS_ON_SHOW}[0]")


def test_a_reload_restores_the_photo_and_hints_and_start_over_forgets_them(page, photo):  # noqa: F811
    open_photo(page, photo)
    click_pixel(page, 10, 20)
    page.fill("#picker", hex_of(RED))
    page.wait_for_function(RENDERED, arg=[RED])
    page.reload()
    page.wait_for_function(RENDERED, arg=[RED])
    assert page.inner_text("#count") == "1 hint." and page.locator(".hint-marker").count() == 1
    assert page.inner_text("#status").startswith("halves.png: 96\u00d764 px")
    with page.expect_navigation():
        page.click("#start-over")
    page.wait_for_load_state()
    page.wait_for_timeout(500)  # time enough to restore anything still kept
    assert page.is_hidden("#board") and page.inner_text("#count") == "No hints yet."
    kept = page.evaluate("""() => new Promise((resolve) => {
      const request = indexedDB.open("polychrome-guided", 1);
      request.onsuccess = () => {
        const get = request.result.transaction("work").objectStore("work").count();
        get.onsuccess = () => resolve(get.result);
      };
    })""")
    assert kept == 0


def test_a_hint_file_loads_back_and_a_bad_one_is_refused_naming_the_entry(page, photo, tmp_path):  # noqa: F811
    open_photo(page, photo)
    good = tmp_path / "good.json"
    stroke = {"stroke": [[4, 4], [30, 40]], "width": 3, "rgb": BLUE}
    good.write_text(json.dumps({"hints": [{"x": 10, "y": 20.7, "rgb": RED, "patch": 1}, stroke]}))
    page.set_input_files("#hints-file", str(good))
    page.wait_for_function(RENDERED, arg=[RED, BLUE])
    assert on_show(page) == [{"x": 10, "y": 20, "rgb": RED, "patch": 1}, stroke]
    assert page.locator(".hint-marker").count() == 1 and page.locator("#strokes polyline.stroke").count() == 1

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"x": 1, "y": 2, "rgb": RED}, {"x": 500, "y": 2, "rgb": RED}]))
    page.set_input_files("#hints-file", str(bad))
    page.wait_for_selector("#status.error")
    assert page.inner_text("#status") == (
        "bad.json: hints[1]: x=500 is outside the image (0 to 95); give a pixel inside the photo"
    )
    assert page.locator(".hint-marker").count() == 1 and page.inner_text("#count") == "1 hint, 1 stroke."
    (tmp_path / "broken.json").write_text("[{")
    page.set_input_files("#hints-file", str(tmp_path / "broken.json"))
    page.wait_for_selector("#status.error:has-text('broken.json: not valid JSON')")


def test_hints_are_placed_moved_recoloured_selected_and_deleted_from_the_keyboard(page, photo):  # noqa: F811
    open_photo(page, photo)
    page.locator("#board").focus()
    for key in ["ArrowRight"] * 2 + ["Shift+ArrowLeft", "ArrowUp"]:  # the cursor starts at the centre (48, 32)
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 1")
    assert (on_show(page)[0]["x"], on_show(page)[0]["y"]) == (40, 31)
    page.keyboard.press("Shift+ArrowDown")  # the selected hint moves
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"{HINTS_ON_SHOW}[0].x === 39 && {HINTS_ON_SHOW}[0].y === 41")
    page.wait_for_selector(".swatch >> nth=7")
    third = [int(v) for v in page.get_attribute(".swatch >> nth=2", "data-rgb").split(",")]
    page.keyboard.press("3")
    page.wait_for_function(RENDERED, arg=[third])
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # a second hint at the cursor, where the first one was moved to
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 2")
    page.keyboard.press("p")  # back to the first
    page.keyboard.press("Delete")
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 1")
    assert on_show(page)[0]["rgb"] != third
    assert "n / p select the next / previous hint" in page.text_content("#keys")


def test_a_slow_render_shows_colouring_and_the_status_does_not_claim_the_old_state(page, photo):  # noqa: F811
    open_photo(page, photo)
    held = []
    page.route("**/render", lambda route: held.append(route))
    click_pixel(page, 10, 20)
    page.wait_for_selector("#busy:has-text('colouring…')")
    assert page.inner_text("#status") == "Colouring halves.png with 1 hint…"
    for route in held:
        route.continue_()
    page.unroute("**/render")
    page.wait_for_function(f"{HINTS_ON_SHOW}.length === 1")
    assert page.inner_text("#busy") == "" and page.inner_text("#status").endswith("levin, 1 hint")


def test_on_a_phone_the_palette_and_picker_are_on_the_first_screen(server, browser, photo):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(server + "/guided")
        open_photo(page, photo)
        click_pixel(page, 10, 20)
        page.wait_for_selector(".swatch >> nth=7")
        for selector in ("#palette", "#picker"):
            box = page.locator(selector).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 844, (selector, box)
    finally:
        context.close()


def test_a_new_photo_resets_the_palette(page, photo, tmp_path):  # noqa: F811
    open_photo(page, photo)
    click_pixel(page, 10, 20)
    page.wait_for_selector(".swatch >> nth=7")
    other = tmp_path / "other.png"
    Image.new("RGB", (40, 30), (90, 90, 90)).save(other)
    page.set_input_files("#file", str(other))
    page.wait_for_selector("#status:has-text('other.png: 40\u00d730 px')")
    assert page.locator(".swatch").count() == 0
    assert page.inner_text("#palette-caption") == "Suggested colours appear here when you place or select a hint."


def test_a_refused_reference_keeps_the_label_of_the_one_in_use(page, photo, tmp_path):  # noqa: F811
    """The refusal stays on show even when the render the accepted reference asked for lands after it: the
    render is held until the refusal is said (on a loaded machine it came later by itself and hid the error)."""
    open_photo(page, photo)
    page.select_option("#model", index=1)
    page.wait_for_selector("#reference-box", state="visible")
    held = []

    def hold(route):
        held.append(route)

    page.route("**/render", hold)
    sunset = tmp_path / "sunset.png"
    Image.new("RGB", (40, 30), (230, 120, 40)).save(sunset)
    page.set_input_files("#reference-file", str(sunset))
    page.wait_for_selector("#reference-status:has-text('Reference: sunset.png')")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a photo")
    page.set_input_files("#reference-file", str(broken))
    page.wait_for_selector("#status.error:has-text('reference broken.png')")
    page.wait_for_selector("#busy:has-text('colouring')")  # the held render is in flight, and has said so
    assert held, "the accepted reference asked for no render"
    held[0].continue_()
    page.wait_for_function("() => document.getElementById('busy').textContent === ''")  # shown, and done
    assert "reference broken.png" in page.inner_text("#status")
    assert "error" in page.get_attribute("#status", "class")
    assert page.inner_text("#reference-status") == "Reference: sunset.png"


def test_a_clicks_palette_is_asked_for_once_its_render_is_shown(page, photo):  # noqa: F811
    """The palette's request waits for the click's render: sent beside it, it took the server's time from the
    render the person waits for (docs/web.md)."""
    open_photo(page, photo)
    held, asked = [], []

    def hold(route):
        held.append(route)

    page.route("**/render", hold)
    page.on("request", lambda request: asked.append(request.url))
    click_pixel(page, 10, 20)
    page.wait_for_selector("#busy:has-text('colouring')")  # the render is in flight and held
    page.wait_for_timeout(300)
    assert held and not [url for url in asked if "/palette" in url]
    held[0].continue_()
    page.wait_for_selector(".swatch >> nth=7")  # then the palette comes
    assert [url for url in asked if "/palette" in url]
