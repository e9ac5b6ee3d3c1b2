"""The ONNX export reproduces the PyTorch model, at any batch size and temperature, and bad files fail clearly."""

from __future__ import annotations

import json
import sys

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from polychrome.colorize import load_colorizer  # noqa: E402
from polychrome.models import build_model  # noqa: E402
from polychrome.onnx_backend import OnnxModelError, export_onnx, load_onnx  # noqa: E402
from polychrome.pipeline import ColorizationPipeline  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module", params=["eccv16", "eccv16_regress"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(request.param, width=0.125).eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx", SIZE)
    return model, load_onnx(path)


def pipeline_ab(model, lightness, temperature=None):
    """The pipeline's ab for a batch of L (N, 1, SIZE, SIZE): what every caller gets from the model."""
    pipeline = ColorizationPipeline(model)
    photos = [pipeline.prepare_lightness(plane) for plane in lightness]
    return torch.stack([p.ab for p in pipeline.predict(photos, temperature=temperature)])


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("temperature", [0.38, 1.0])
def test_matches_pytorch(exported, batch, temperature):
    model, onnx_model = exported
    lightness = torch.rand(batch, 1, SIZE, SIZE) * 100
    with torch.no_grad():
        expected = model.network.predict_ab(lightness, temperature)
    got = pipeline_ab(onnx_model, lightness, temperature)
    assert got.shape == expected.shape
    difference = (got - expected).abs().max().item()
    print(f"{model.card.head}, batch {batch}, T={temperature}: max |ab difference| = {difference:.2e}")
    assert difference < 1e-2


def test_the_card_travels_in_the_metadata(exported):
    model, onnx_model = exported
    path = onnx_model.card.weights
    expected = model.card.replace(input_size=SIZE, weights=path, weights_sha256=onnx_model.card.weights_sha256)
    assert onnx_model.card == expected  # name, options, head, gamut, temperature, inputs
    assert len(onnx_model.card.weights_sha256) == 64
    assert torch.equal(onnx_model.bins, model.bins)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["head"] == model.card.head and props["input_size"] == str(SIZE)
    assert ("bins" in props) == (model.card.head == "classification")
    if model.card.head == "classification":
        assert json.loads(props["bins"]) == model.bins.tolist()


def test_runs_on_the_cpu_only_and_says_what_shape_it_takes(exported, tmp_path):
    _, onnx_model = exported
    with pytest.raises(ValueError, match="CPU only"):
        load_colorizer(onnx_model.card.weights, device="cuda", backend="onnx")
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        onnx_model(torch.zeros(1, 1, 64, 64))


def test_recorded_temperature_is_the_default(tmp_path):
    model = build_model("eccv16", width=0.125).eval()
    onnx_model = load_onnx(export_onnx(model, tmp_path / "model.onnx", SIZE, temperature=0.0))
    lightness = torch.rand(2, 1, SIZE, SIZE) * 100
    with torch.no_grad():
        mode = model.network.predict_ab(lightness, 0.0)
    assert onnx_model.card.temperature == 0.0
    assert torch.allclose(pipeline_ab(onnx_model, lightness), mode, atol=1e-2)


def test_a_file_exported_before_model_cards_still_loads(tmp_path):
    path = export_onnx(build_model("eccv16", width=0.125).eval(), tmp_path / "model.onnx", SIZE)
    proto = onnx.load(str(path))
    kept = {p.key: p.value for p in proto.metadata_props if p.key in ("head", "input_size", "bins")}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, kept)
    onnx.save(proto, str(path))
    card = load_onnx(path).card
    assert (card.name, card.head, card.input_size, card.temperature, card.inputs) == (
        "",
        "classification",
        SIZE,
        0.38,
        ("L",),
    )


def test_bad_files_fail_clearly(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(OnnxModelError, match="not an ONNX model") as error:
        load_onnx(text)
    assert str(text) in str(error.value) and "\n" not in str(error.value)

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "identity.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), str(foreign))
    with pytest.raises(OnnxModelError, match="no polychrome metadata") as error:
        load_onnx(foreign)
    assert str(foreign) in str(error.value)

    with pytest.raises(OnnxModelError, match="no ONNX model at"):
        load_onnx(tmp_path / "missing.onnx")


def test_missing_onnxruntime_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "polychrome\[onnx\]"'):
        load_onnx(tmp_path / "model.onnx")
