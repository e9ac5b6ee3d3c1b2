"""One path from photo to file: the Python API, ``polychrome colorize`` and the web page's HTTP API give the
same pixels for the same photo, hints, reference and temperature, for an automatic model, the bundled guided
model (clicks, a stroke and a reference, its card's hint correction included) and Levin et al.'s. Each goes through
``ColorizationPipeline``; this holds them to it, so no path can drift into other colours again."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import polychrome
from polychrome.cli import main
from polychrome.serve import create_app

HINTS = [
    {"x": 20, "y": 12, "rgb": [70, 130, 210]},
    {"x": 70, "y": 50, "rgb": [190, 60, 40], "patch": 3},
    {"stroke": [[40, 30], [55, 34], [60, 45]], "width": 4, "rgb": [60, 170, 80]},  # a painted stroke
]


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A photo with transparency (a crop of a shipped example, tinted so it is not gray), a reference photo and
    a hint file, as a person would hand them to each path."""
    folder = tmp_path_factory.mktemp("one-path")
    gray = Image.open("examples/photos/coffee-gray.jpg").convert("RGB").resize((96, 64), Image.Resampling.LANCZOS)
    rgb = np.asarray(gray).astype(np.int16) + np.array([25, 0, -25], np.int16)
    alpha = np.full((64, 96), 255, np.uint8)
    alpha[:8, :8] = 40
    photo = np.dstack([rgb.clip(0, 255).astype(np.uint8), alpha])
    Image.fromarray(photo, "RGBA").save(folder / "photo.png")
    reference = np.zeros((32, 32, 3), np.uint8)
    reference[..., 0], reference[..., 1] = 200, np.arange(32)[:, None] * 6
    Image.fromarray(reference).save(folder / "reference.png")
    (folder / "hints.json").write_text(json.dumps(HINTS))
    return folder


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(["default", "guided", "levin"])) as client:
        yield client


def command_line(files, tmp_path, *options: str) -> np.ndarray:
    out = tmp_path / "out"
    assert main(["colorize", str(files / "photo.png"), "--out", str(out), "--quiet", *options]) == 0
    return np.asarray(Image.open(out / "photo.png"))


def api(files, model: str, **guidance) -> np.ndarray:
    """The API's colours with the photo's own alpha, as the other two write it."""
    image = Image.open(files / "photo.png")
    colour = polychrome.load_colorizer(model).colorize(image, **guidance)
    return np.dstack([colour, np.asarray(image)[..., 3]])


def upload(files, name: str = "photo.png") -> dict:
    return {"image": (name, (files / name).read_bytes(), "image/png")}


def test_an_automatic_model_gives_the_same_pixels_on_every_path(files, client, tmp_path):
    expected = api(files, "default", temperature=0.5)
    assert np.array_equal(command_line(files, tmp_path, "--temperature", "0.5"), expected)
    page = client.post("/api/colorize", files=upload(files), data={"model": "default", "temperature": "0.5"})
    assert np.array_equal(decoded(page.content), expected)
    token = client.post("/api/predict", files=upload(files), data={"model": "default"}).json()["token"]
    assert np.array_equal(decoded(client.get(f"/api/render/{token}", params={"temperature": 0.5}).content), expected)


@pytest.mark.parametrize("model", ["guided", "levin"])
def test_a_guided_colourisation_gives_the_same_pixels_on_every_path(files, client, tmp_path, model):
    reference = {"reference": str(files / "reference.png")} if model == "guided" else {}
    expected = api(files, model, hints=HINTS, **reference)
    assert not np.array_equal(expected, api(files, model))  # the hints (and reference) change the colours
    options = ["--model", model, "--hints", str(files / "hints.json")]
    options += ["--reference", reference["reference"]] if reference else []
    assert np.array_equal(command_line(files, tmp_path, *options), expected)

    token = client.post("/api/guided", files=upload(files), data={"model": model}).json()["token"]
    if reference:
        answer = client.put(f"/api/guided/{token}/reference", files=upload(files, "reference.png"))
        assert answer.status_code == 200, answer.text
    download = client.post(f"/api/guided/{token}/render", params={"full": "true"}, json={"hints": HINTS})
    assert np.array_equal(decoded(download.content), expected)
