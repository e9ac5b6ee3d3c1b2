"""The bundled guided model on the page as a person uses it (Debian's chromium through Playwright, against
uvicorn): a click colours its own region and stops at strong edges (issue 32's done-when, docs/guided.md
"Keeping a click in its region")."""

import numpy as np
import pytest
import torch
from PIL import Image

from polychrome.color import rgb_to_lab
from polychrome.serve import create_app
from tests.conftest import shared
from tests.serve.conftest import running
from tests.serve.test_guided_browser import EVERY_PIXEL, RENDERED, click_pixel, open_photo

# BSDS500 test 97010: a clear sky above a red barn, grass below. The click goes in the sky, the barn's wall is the
# region across the roof line (both in the photo's 481 x 321 pixels; x0, y0, x1, y1 for the wall).
BARN = "97010.jpg"
SKY_CLICK = (380, 20)
WALL = (40, 130, 160, 200)


@pytest.fixture(scope="module")
def server():
    with running(create_app(["guided"])) as url:
        yield url


@pytest.fixture
def page(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server + "/guided")
    yield page
    context.close()


def shown_ab(page) -> np.ndarray:
    """The ab (2, H, W) of the image on show, at its natural size."""
    height, width, data = page.evaluate(EVERY_PIXEL)
    rgb = torch.tensor(data, dtype=torch.float64).view(height, width, 4)[..., :3].permute(2, 0, 1) / 255
    return rgb_to_lab(rgb)[1:].numpy()


def test_one_click_in_the_sky_leaves_the_barn_across_the_roof_line_as_it_was(page):
    # The shipped correction (decay 0) moved the wall by 14 ab units on average with this click (a blue barn);
    # the network alone by 0.4. A person's click must stay in its region: within a few units.
    path = shared("bsds500", "images", "test", BARN)
    truth = np.asarray(Image.open(path).convert("RGB"))
    height, width = truth.shape[:2]
    open_photo(page, path)
    before = shown_ab(page)
    colour = truth[SKY_CLICK[1], SKY_CLICK[0]].tolist()
    click_pixel(page, *SKY_CLICK, (width, height))
    page.fill("#picker", "#{:02x}{:02x}{:02x}".format(*colour))
    page.wait_for_function(RENDERED, arg=[colour])
    after = shown_ab(page)
    scale = before.shape[2] / width  # the page shows a large photo smaller; this one is shown whole
    x0, y0, x1, y1 = (round(v * scale) for v in WALL)
    moved = np.linalg.norm(after[:, y0:y1, x0:x1] - before[:, y0:y1, x0:x1], axis=0).mean()
    assert moved < 3.0, f"the click in the sky moved the barn's wall by {moved:.1f} ab units"
    true_ab = rgb_to_lab(torch.tensor(colour, dtype=torch.float64).view(3, 1, 1) / 255)[1:, 0, 0].numpy()
    x, y = round(SKY_CLICK[0] * scale), round(SKY_CLICK[1] * scale)
    assert np.linalg.norm(after[:, y, x] - true_ab) < 5.0, "the click did not take its colour"
    assert np.linalg.norm(after[:, y, x] - before[:, y, x]) > 5.0, "the sky was already the click's colour"
