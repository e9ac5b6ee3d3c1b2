"""The guided page's API through FastAPI's test client: Levin's model (it keeps hints exactly, so colours
must move to them) and a tiny untrained U-Net taking local and global hints (a stand-in for the bundled
guided model: an untrained network does not follow hints, so it is used only where any output will do)."""

import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import polychrome
from polychrome.color import rgb_to_lab
from polychrome.models import build_model, save_weights
from polychrome.serve import create_app
from polychrome.serve.guided import DISPLAY_SIDE, PALETTE_SIZE, PALETTE_SOURCE, GuidedEntry, display_size
from polychrome.serve.prediction_cache import Entry, PredictionCache


@pytest.fixture(scope="module")
def tiny_guided(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = build_model("unet_guided", channels=(4, 8, 16), head="regression")
    return str(save_weights(model, tmp_path_factory.mktemp("weights") / "guided.safetensors", input_size=32))


@pytest.fixture(scope="module")
def client(tiny_guided):
    with TestClient(create_app(["levin", tiny_guided, "gray"])) as client:
        yield client


def photo(width: int = 48, height: int = 32) -> np.ndarray:
    """Two flat gray halves (Levin keeps a hint's colour over the half it is in) with a little noise."""
    rng = np.random.default_rng(0)
    rgb = np.full((height, width, 3), 150, np.uint8)
    rgb[:, width // 2 :] = 70
    return (rgb + rng.integers(0, 3, rgb.shape)).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(rgb: np.ndarray, name: str = "photo.png") -> dict:
    return {"image": (name, png(rgb), "image/png")}


def open_photo(client, model: str, rgb: np.ndarray) -> dict:
    response = client.post("/api/guided", files=upload(rgb), data={"model": model})
    assert response.status_code == 200, response.text
    return response.json()


def render(client, token: str, hints: list, full: bool = False) -> np.ndarray:
    response = client.post(f"/api/guided/{token}/render" + ("?full=true" if full else ""), json={"hints": hints})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ("image/png" if full else "image/jpeg")
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    message = response.json()["error"]
    assert "\n" not in message
    return message


def ab_of(rgb) -> np.ndarray:
    """The ab of sRGB colours (..., 3) in 0-255."""
    values = torch.tensor(np.asarray(rgb, dtype=np.float64) / 255).reshape(-1, 3).T[:, :, None]
    return rgb_to_lab(values)[1:, :, 0].T.numpy()


def test_hints_move_the_colours_at_the_hinted_points_towards_the_hint_colours(client):
    token = open_photo(client, "levin", photo())["token"]
    hints = [{"x": 5, "y": 6, "rgb": [200, 30, 40]}, {"x": 40, "y": 20, "rgb": [30, 60, 200]}]
    before = render(client, token, [])
    after = render(client, token, hints)
    for hint in hints:
        target = ab_of(hint["rgb"])[0]
        was, now = (np.linalg.norm(ab_of(image[hint["y"], hint["x"]])[0] - target) for image in (before, after))
        assert now < was / 4, (hint, was, now)


def test_the_download_is_the_full_resolution_colourisation_the_api_gives_for_the_same_hints(client, tiny_guided):
    rgb = photo(1100, 300)
    answer = open_photo(client, tiny_guided, rgb)
    assert (answer["width"], answer["height"]) == (1100, 300)
    assert (answer["display_width"], answer["display_height"]) == (DISPLAY_SIDE, 279) == display_size(300, 1100)[::-1]
    hints = [{"x": 1000, "y": 250, "rgb": [10, 200, 30], "patch": 5}]
    reference = photo(64, 64)
    reference[..., 0] = 220
    assert client.put(f"/api/guided/{answer['token']}/reference", files=upload(reference)).status_code == 200
    assert render(client, answer["token"], hints).shape == (279, DISPLAY_SIDE, 3)
    full = render(client, answer["token"], hints, full=True)
    expected = polychrome.load_colorizer(tiny_guided).colorize(rgb, hints=hints, reference=reference)
    assert np.array_equal(full, expected)


def test_the_network_runs_once_per_hint_state(client, tiny_guided, monkeypatch):
    pipeline = client.app.state.models.get(tiny_guided)
    calls = []
    original = pipeline.predict
    monkeypatch.setattr(pipeline, "predict", lambda *args: calls.append(1) or original(*args))
    token = open_photo(client, tiny_guided, photo())["token"]
    hints = [{"x": 3, "y": 4, "rgb": [200, 30, 40]}]
    render(client, token, hints)
    render(client, token, hints, full=True)  # the download of what is on show
    assert len(calls) == 1
    render(client, token, [*hints, {"x": 30, "y": 4, "rgb": [0, 0, 255]}])
    assert len(calls) == 2


def test_a_reference_steers_a_model_taking_global_hints_and_can_be_removed(client, tiny_guided):
    token = open_photo(client, tiny_guided, photo())["token"]
    plain = render(client, token, [])
    reference = photo()
    reference[..., 1] = 230
    answer = client.put(f"/api/guided/{token}/reference", files=upload(reference), data={"name": "ref.png"})
    assert answer.json() == {"reference": "ref.png", "saturation": pytest.approx(answer.json()["saturation"])}
    assert not np.array_equal(render(client, token, []), plain)
    assert client.delete(f"/api/guided/{token}/reference").json() == {"reference": None}
    assert np.array_equal(render(client, token, []), plain)


def test_bad_hints_are_refused_naming_the_entry(client):
    token = open_photo(client, "levin", photo())["token"]
    good = {"x": 1, "y": 1, "rgb": [1, 2, 3]}
    cases = [
        ([good, {"x": 48, "y": 3, "rgb": [1, 2, 3]}], "hints[1]: x=48 is outside the image (0 to 47)"),
        ([{"x": 3, "y": -1, "rgb": [1, 2, 3]}], "hints[0]: y=-1 is outside the image (0 to 31)"),
        ([good, good, {"x": 3, "y": 3, "rgb": [1, 2, 300]}], "hints[2]: rgb=[1, 2, 300] is out of range"),
        ([{"x": 3, "y": 3, "rgb": "red"}], "hints[0]: rgb='red' is not three values"),
        ("all of them", "hints must be a list of hints, got str"),
    ]
    for hints, expected in cases:
        message = error_of(client.post(f"/api/guided/{token}/render", json={"hints": hints}), 400)
        assert message.startswith(expected), message


def test_a_model_without_hints_refuses_in_one_line(client):
    message = error_of(client.post("/api/guided", files=upload(photo()), data={"model": "gray"}), 400)
    assert message.startswith("gray takes no colour hints; models that do: guided, levin")
    token = open_photo(client, "levin", photo())["token"]
    message = error_of(client.put(f"/api/guided/{token}/reference", files=upload(photo())), 400)
    assert message.startswith("levin takes no reference photo; models that do: guided")


def test_the_palette_is_the_automatic_models_most_likely_colours_at_the_point(client):
    token = open_photo(client, "levin", photo())["token"]
    answer = client.get(f"/api/guided/{token}/palette", params={"x": 5, "y": 6}).json()
    assert (answer["x"], answer["y"], answer["model"], answer["source"]) == (5, 6, "default", PALETTE_SOURCE)
    p = [colour["p"] for colour in answer["colors"]]
    assert len(p) == PALETTE_SIZE and p == sorted(p, reverse=True) and 0 < sum(p) <= 1
    assert all(len(c["rgb"]) == 3 and all(0 <= v <= 255 for v in c["rgb"]) for c in answer["colors"])
    message = error_of(client.get(f"/api/guided/{token}/palette", params={"x": 48, "y": 0}), 400)
    assert message == "pixel (48, 0) lies outside the 48x32 photo"


def test_a_regression_palette_model_is_refused(tiny_guided):
    with TestClient(create_app(["levin"], palette_model="gray")) as client:
        token = open_photo(client, "levin", photo())["token"]
        message = error_of(client.get(f"/api/guided/{token}/palette", params={"x": 1, "y": 1}), 400)
        assert message == "gray predicts ab directly: it has no distribution to suggest from"


def test_tokens_are_of_one_kind_and_unknown_ones_are_404(client):
    predicted = client.post("/api/predict", files=upload(photo()), data={"model": "gray"}).json()["token"]
    guided = open_photo(client, "levin", photo())["token"]
    assert "no guided photo" in error_of(client.post(f"/api/guided/{predicted}/render", json={"hints": []}), 404)
    assert "no colourisation" in error_of(client.get(f"/api/render/{guided}"), 404)
    assert "no guided photo" in error_of(client.delete("/api/guided/nonsense/reference"), 404)


def test_the_cache_counts_an_entry_at_the_size_it_grew_to():
    class Growing:
        nbytes = 10

    cache, first = PredictionCache(max_bytes=25), Growing()
    tokens = [cache.put(first), cache.put(Growing())]
    first.nbytes = 20  # it grew after it was put (a guided entry's palette), and the job that grew it says so
    cache.update(tokens[0])  # 30 bytes: the least recently used other entry goes, the grown one stays
    assert [cache.get(token, Growing) is not None for token in tokens] == [True, False]
    assert cache.nbytes == 20
    cache.update("no-longer-kept")  # an entry let go meanwhile is no error
    assert cache.get(tokens[0], Entry) is None  # a token of another kind is not found


def test_the_cache_bound_counts_the_palette_and_the_latest_prediction_a_guided_entry_keeps():
    with TestClient(create_app(["levin"])) as client:
        cache = client.app.state.cache
        token = open_photo(client, "levin", photo())["token"]
        entry = cache.get(token, GuidedEntry)
        opened = entry.nbytes
        assert client.get(f"/api/guided/{token}/palette", params={"x": 5, "y": 6}).status_code == 200
        render(client, token, [{"x": 5, "y": 6, "rgb": [200, 30, 40]}])
        logits, ab = entry.palette.prediction.output, entry.last[1].ab
        assert entry.nbytes >= opened + logits.numel() * logits.element_size() + ab.numel() * ab.element_size()
        assert cache.nbytes == entry.nbytes
        cache.max_bytes = 2 * opened  # room for two photos as uploaded, not for this one as it is now and another
        open_photo(client, "levin", photo())
        assert cache.get(token, GuidedEntry) is None


def test_the_page_offers_the_models_that_take_hints(client, tiny_guided):
    page = client.get("/guided").text
    assert '<option value="levin" data-reference="false">' in page
    assert f'<option value="{tiny_guided}" data-reference="true">' in page
    assert '<option value="gray"' not in page and "/static/guided.js" in page
    assert 'href="/guided"' in client.get("/").text
    with TestClient(create_app(["default", "gray"])) as plain:
        page = plain.get("/guided").text
    assert "None of this server's models takes colour hints (it offers default, gray)" in page
    assert "/static/guided.js" not in page


def test_a_render_says_how_long_each_step_took_in_server_timing(client):
    """The page's latency benchmark splits a click's wait between the server's steps and the way there and back
    by the answer's Server-Timing header (the W3C format: developer tools show it)."""
    import re
    import time

    token = open_photo(client, "levin", photo())["token"]
    started = time.perf_counter()
    response = client.post(f"/api/guided/{token}/render", json={"hints": [{"x": 3, "y": 4, "rgb": [200, 30, 40]}]})
    elapsed = (time.perf_counter() - started) * 1e3
    assert response.status_code == 200
    entries = response.headers["server-timing"].split(", ")
    steps = dict(re.fullmatch(r"(\w+);dur=(-?\d+\.\d)", entry).groups() for entry in entries)
    assert list(steps) == ["hints", "wait", "predict", "merge", "encode"]
    milliseconds = {step: float(value) for step, value in steps.items()}
    assert milliseconds["predict"] > 0 and milliseconds["merge"] > 0 and milliseconds["encode"] > 0
    assert sum(milliseconds.values()) <= elapsed + 0.5
