"""The colourise API through FastAPI's test client, with a tiny untrained model so every test is quick."""

import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import polychrome
from polychrome.models import create_model, save_weights
from polychrome.serve import create_app


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    torch.manual_seed(0)
    return str(save_weights(create_model("eccv16", width=0.125), tmp_path_factory.mktemp("weights") / "tiny.safetensors", input_size=16))


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
    for asset in ("/static/style.css", "/static/colorize.js"):
        assert asset in page and client.get(asset).status_code == 200


def test_each_model_is_loaded_once(tiny, monkeypatch):
    loads = []
    real = polychrome.load_colorizer
    monkeypatch.setattr(polychrome, "load_colorizer", lambda name: loads.append(name) or real(name))
    with TestClient(create_app([tiny, "gray"])) as client:
        for model in (tiny, "gray", tiny, "gray"):
            predict(client, model)
        client.get("/api/models")
    assert sorted(loads) == sorted([tiny, "gray"])


@pytest.mark.parametrize("data", [b"not an image at all", png()[:60], b""])
def test_an_unreadable_upload_is_422(client, data):
    assert "cannot use this image" in error_of(client.post("/api/colorize", files=upload(data)), 422)


def test_missing_or_malformed_fields_are_json_errors(client):
    assert "image" in error_of(client.post("/api/colorize", data={"model": "gray"}), 422)
    assert "x" in error_of(client.get(f"/api/distribution/{predict(client, 'gray')['token']}?x=left&y=1"), 422)


def test_an_upload_above_the_limit_is_413(tiny):
    with TestClient(create_app([tiny], upload_limit=1000)) as client:
        big = png((64, 64))
        assert "limit of 1,000 bytes" in error_of(client.post("/api/colorize", files=upload(big)), 413)
        # The declared length alone is refused before anything is read ...
        declared = client.post("/api/colorize", content=b"x", headers={"content-length": "5000", "content-type": "multipart/form-data; boundary=b"})
        assert "5,000 bytes" in error_of(declared, 413)
        # ... and a chunked upload (no length declared) is counted as it arrives.
        chunked = client.post("/api/colorize", content=iter([b"x" * 600] * 3), headers={"content-type": "multipart/form-data; boundary=b"})
        assert "larger than this server's limit" in error_of(chunked, 413)


@pytest.mark.parametrize("value", ["warm", "0", "-1", "nan", "inf", "11"])
def test_a_bad_temperature_is_400(client, tiny, value):
    assert repr(value) in error_of(client.post("/api/colorize", files=upload(png()), data={"temperature": value}), 400)
    token = predict(client, tiny)["token"]
    assert "temperature must be" in error_of(client.get(f"/api/render/{token}", params={"temperature": value}), 400)


def test_an_unknown_model_is_400(client, tiny):
    message = error_of(client.post("/api/colorize", files=upload(png()), data={"model": "nope"}), 400)
    assert "'nope'" in message and tiny in message and "gray" in message


def test_too_many_pixels_are_refused(tiny):
    with TestClient(create_app([tiny], max_pixels=500)) as client:
        message = error_of(client.post("/api/colorize", files=upload(png((37, 23)))), 422)
    assert "851 pixels, above the limit of 500" in message


def test_a_request_that_waits_past_the_queue_timeout_gets_503(tiny):
    app = create_app([tiny], queue_timeout=0.05)
    with TestClient(app) as client:
        client.portal.call(app.state.gate.slot.acquire)  # the network is busy with someone else's photo
        response = client.post("/api/colorize", files=upload(png()))
        assert "busy" in error_of(response, 503) and response.headers["retry-after"] == "1"
        client.portal.call(app.state.gate.slot.release)
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

    assert main(["serve", "--model", str(tmp_path / "missing.ckpt"), "--db", str(tmp_path / "s.sqlite"), "--study-data", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "missing.ckpt" in error and error.count("\n") == 1
