"""The colourise API through FastAPI's test client, with a tiny untrained model so every test is quick."""

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import polychrome
from polychrome.models import build_model, save_weights
from polychrome.serve import create_app
from polychrome.serve.prediction_cache import Models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    torch.manual_seed(0)
    return str(
        save_weights(
            build_model("eccv16", width=0.125), tmp_path_factory.mktemp("weights") / "tiny.safetensors", input_size=16
        )
    )


@pytest.fixture
def client(tiny):
    with TestClient(create_app([tiny, "gray"])) as client:
        yield client


def png(size=(37, 23), mode="RGB") -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.png") -> dict:
    return {"image": (name, data, "image/png")}


def image_of(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    return response.json()["error"]


def predict(client, model: str, data: bytes | None = None) -> dict:
    response = client.post("/api/predict", files=upload(data or png()), data={"model": model})
    assert response.status_code == 200, response.text
    return response.json()


def test_colorize_returns_a_png_at_the_inputs_size_and_keeps_alpha(client, tiny):
    assert image_of(client.post("/api/colorize", files=upload(png()))).size == (37, 23)
    rgba = png((30, 41), "RGBA")
    out = image_of(client.post("/api/colorize", files=upload(rgba), data={"model": "gray", "temperature": "0.5"}))
    assert out.size == (30, 41) and out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(Image.open(io.BytesIO(rgba)))[..., 3])


def test_models_healthz_and_the_page(client, tiny):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/api/models").json() == [
        {"name": tiny, "head": "classification", "input_size": 16, "temperature": 0.38},
        {"name": "gray", "head": "regression", "input_size": 256, "temperature": None},
    ]
    page = client.get("/").text
    assert f'<option value="{tiny}">' in page and '<option value="gray">' in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from another host
    for asset in ("/static/style.css", "/static/common.js", "/static/colorize.js"):
        assert asset in page and client.get(asset).status_code == 200


def test_each_model_is_loaded_once_when_first_requests_for_it_arrive_together(monkeypatch):
    """The page asks for the model list and a prediction at once, each in a worker thread: a request that arrives
    while a model is loading must wait for that load, not start a second (a second copy of the network in memory,
    and the first one's work wasted). Eight threads ask for two models at the same moment while each load takes
    0.3 s, so without Models' lock every thread finds its model missing and loads it."""
    loads, lock = [], threading.Lock()

    class Loaded(str):
        def interactive(self):  # what the server asks of each pipeline it loads
            return self

    def slow_load(name):
        with lock:
            loads.append(name)
        time.sleep(0.3)
        return Loaded(f"pipeline of {name} #{len(loads)}")

    monkeypatch.setattr(polychrome, "load_colorizer", slow_load)
    models, start = Models(["default", "gray"]), threading.Barrier(8)

    def ask(name):
        start.wait()
        return models.get(name)

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, ["default", "gray"] * 4))
    assert sorted(loads) == ["default", "gray"]
    assert len(set(got[0::2])) == 1 and len(set(got[1::2])) == 1 and got[0] != got[1]


def test_the_app_keeps_each_model_it_loads(tiny, monkeypatch):
    loads = []
    real = polychrome.load_colorizer
    monkeypatch.setattr(polychrome, "load_colorizer", lambda name: loads.append(name) or real(name))
    with TestClient(create_app([tiny, "gray"])) as client:
        for model in (tiny, "gray", tiny, "gray"):
            predict(client, model)
        client.get("/api/models")
    assert sorted(loads) == sorted([tiny, "gray"])


@pytest.mark.parametrize("data", [b"not an image at all", png()[:60]])
def test_an_unreadable_upload_is_422(client, data):
    assert "cannot use this image" in error_of(client.post("/api/colorize", files=upload(data)), 422)


def test_an_empty_file_is_called_empty(client):
    message = error_of(client.post("/api/colorize", files=upload(b"")), 422)
    assert "the file is empty (0 bytes)" in message and "Pillow" not in message


def test_missing_or_malformed_fields_are_json_errors(client):
    assert "image" in error_of(client.post("/api/colorize", data={"model": "gray"}), 422)
    assert "x" in error_of(client.get(f"/api/distribution/{predict(client, 'gray')['token']}?x=left&y=1"), 422)


def padded_png(size: int) -> bytes:
    """A readable PNG of exactly ``size`` bytes (Pillow ignores what follows the image's end)."""
    data = png((8, 8))
    assert len(data) <= size
    return data + bytes(size - len(data))


def test_the_limit_counts_the_file_not_the_request(tiny):
    with TestClient(create_app([tiny], upload_limit=2048)) as client:
        image_of(client.post("/api/colorize", files=upload(padded_png(2048))))  # exactly the limit: accepted
        message = error_of(client.post("/api/colorize", files=upload(padded_png(2049))), 413)
    assert (
        message
        == "the file is 2.0 KiB (2,049 bytes), above this server's limit of 2.0 KiB (2,048 bytes); send a smaller file"
    )


def test_a_request_far_above_the_limit_is_413_before_or_while_it_is_read(tiny):
    with TestClient(create_app([tiny], upload_limit=1000)) as client:
        # The declared length alone is refused before the app reads anything ...
        declared = client.post(
            "/api/colorize",
            content=b"x",
            headers={"content-length": "500000", "content-type": "multipart/form-data; boundary=b"},
        )
        assert error_of(declared, 413).startswith(
            "the upload is 488.3 KiB (500,000 bytes), above this server's limit of 1,000 bytes"
        )
        # ... and a chunked upload (no length declared) is counted as it arrives.
        chunked = client.post(
            "/api/colorize",
            content=iter([b"x" * 60_000] * 3),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert "larger than this server's limit of 1,000 bytes" in error_of(chunked, 413)


@pytest.fixture(scope="module")
def live_server(tiny):
    """The app on a real uvicorn server (the default 25 MiB limit), for what only real sockets show."""
    from tests.serve.conftest import running

    with running(create_app([tiny])) as url:
        yield url


# A 30 MB upload as a browser would send it, sent whole without waiting for "100 Continue".
PART = b'--b\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
OVERSIZED = PART + bytes(30_000_000 - len(PART) - 9) + b"\r\n--b--\r\n"
MULTIPART = {"Content-Type": "multipart/form-data; boundary=b"}


def test_urllib_sending_30_mb_at_once_reads_the_413(live_server):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(live_server + "/api/colorize", data=OVERSIZED, headers=MULTIPART)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert "above this server's limit of 25.0 MiB (26,214,400 bytes)" in json.loads(refused.value.read())["error"]


def test_requests_sending_30_mb_at_once_reads_the_413(live_server):
    requests = pytest.importorskip("requests")
    for _ in range(3):  # the reset was a race with the client's sending; a few tries make a pass mean something
        response = requests.post(live_server + "/api/colorize", data=OVERSIZED, headers=MULTIPART, timeout=30)
        assert "the upload is 28.6 MiB (30,000,000 bytes)" in error_of(response, 413)


def test_a_chunked_30_mb_upload_reads_the_413(live_server):
    import requests

    chunks = (OVERSIZED[i : i + 2**20] for i in range(0, len(OVERSIZED), 2**20))  # no length declared
    response = requests.post(live_server + "/api/colorize", data=chunks, headers=MULTIPART, timeout=30)
    assert "larger than this server's limit of 25.0 MiB" in error_of(response, 413)


def test_a_small_upload_still_works_on_the_real_server(live_server):
    import requests

    response = requests.post(live_server + "/api/colorize", files=upload(png()), timeout=30)
    assert image_of(response).size == (37, 23)


@pytest.mark.parametrize("value", ["warm", "0", "-1", "nan", "inf", "11"])
def test_a_bad_temperature_is_400(client, tiny, value):
    assert repr(value) in error_of(client.post("/api/colorize", files=upload(png()), data={"temperature": value}), 400)
    token = predict(client, tiny)["token"]
    assert "temperature must be" in error_of(client.get(f"/api/render/{token}", params={"temperature": value}), 400)


def test_an_unknown_model_is_400(client, tiny):
    message = error_of(client.post("/api/colorize", files=upload(png()), data={"model": "nope"}), 400)
    assert "'nope'" in message and tiny in message and "gray" in message


def test_too_many_pixels_are_refused_in_words_for_the_person_uploading(tiny, caplog):
    caplog.set_level("INFO", logger="polychrome.serve")
    with TestClient(create_app([tiny], max_pixels=500)) as client:
        message = error_of(client.post("/api/colorize", files=upload(png((37, 23)))), 422)
    assert message == (
        "this photo has too many pixels: 37x23 is 851 pixels, above this server's limit of 500 "
        "(0.0005 megapixels); send a smaller photo"
    )
    assert "polychrome serve --max-pixels" in caplog.text  # the advice goes to whoever runs the server


def test_pages_get_an_html_error_page_and_the_api_json(client):
    for address in ("/no/such/page", "/static/missing.css"):
        page = client.get(address)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "<h1>Not Found</h1>" in page.text
    assert error_of(client.get("/api/no-such-thing"), 404) == "Not Found"
    assert "upload the photo again" in error_of(client.get("/api/render/no-such-token"), 404)


def test_a_request_that_waits_past_the_queue_timeout_gets_503(tiny):
    app = create_app([tiny], queue_timeout=0.05)
    with TestClient(app) as client:
        client.portal.call(app.state.lanes.fast.slot.acquire)  # the network is busy with someone else's photo
        response = client.post("/api/colorize", files=upload(png()))
        assert "busy" in error_of(response, 503) and response.headers["retry-after"] == "1"
        client.portal.call(app.state.lanes.fast.slot.release)
        image_of(client.post("/api/colorize", files=upload(png())))


def test_render_decodes_the_cached_prediction_at_any_temperature_without_a_forward_pass(client, tiny):
    token = predict(client, tiny)["token"]
    forwards = []
    client.app.state.models.get(tiny).model.register_forward_hook(lambda *_: forwards.append(1))
    vivid = image_of(client.get(f"/api/render/{token}", params={"temperature": "0.05"}))
    mean = image_of(client.get(f"/api/render/{token}", params={"temperature": "1"}))
    assert vivid.size == mean.size == (37, 23)
    assert not np.array_equal(np.asarray(vivid), np.asarray(mean))
    assert forwards == []
    assert "upload the photo again" in error_of(client.get("/api/render/no-such-token"), 404)


def test_the_distribution_at_a_pixel_sums_to_one(client, tiny):
    answer = predict(client, tiny)
    shown = client.get(f"/api/distribution/{answer['token']}", params={"x": 36, "y": 0}).json()
    assert len(shown["bins"]) == len(shown["p"]) == len(shown["colors"]) == 313
    assert sum(shown["p"]) == pytest.approx(1, abs=1e-5)
    assert shown["top"] == shown["bins"][int(np.argmax(shown["p"]))]
    assert "outside the 37x23 image" in error_of(client.get(f"/api/distribution/{answer['token']}?x=37&y=0"), 400)
    gray = predict(client, "gray")["token"]
    assert "regression" in error_of(client.get(f"/api/distribution/{gray}?x=0&y=0"), 400)


def test_an_unexpected_error_is_a_json_500_without_details(client, tiny, monkeypatch):
    def broken(*_):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(client.app.state.models.get(tiny), "render", broken)
    response = client.post("/api/colorize", files=upload(png()))
    assert "server's log" in error_of(response, 500) and "secret" not in response.text


def test_serve_refuses_an_unknown_model_at_start_in_one_line(tmp_path, capsys):
    from polychrome.cli import main

    assert (
        main(
            [
                "serve",
                "--model",
                str(tmp_path / "missing.ckpt"),
                "--db",
                str(tmp_path / "s.sqlite"),
                "--study-data",
                str(tmp_path),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "missing.ckpt" in error and error.count("\n") == 1
