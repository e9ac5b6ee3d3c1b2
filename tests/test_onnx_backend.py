"""The ONNX export reproduces the PyTorch model, at any batch size and temperature, and bad files fail clearly."""

from __future__ import annotations

import json
import sys

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from polychrome.models import create_model  # noqa: E402
from polychrome.onnx_backend import OnnxColorizer, OnnxModelError, export_onnx  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module", params=["eccv16", "eccv16_regress"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(request.param, width=0.125).eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx", SIZE)
    return model, OnnxColorizer(path)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("temperature", [0.38, 1.0])
def test_matches_pytorch(exported, batch, temperature):
    model, onnx_model = exported
    lightness = torch.rand(batch, 1, SIZE, SIZE) * 100
    with torch.no_grad():
        expected = model.predict_ab(lightness, temperature)
    got = onnx_model.predict_ab(lightness, temperature)
    assert got.shape == expected.shape
    difference = (got - expected).abs().max().item()
    print(f"{model.head}, batch {batch}, T={temperature}: max |ab difference| = {difference:.2e}")
    assert difference < 1e-2


def test_metadata_describes_decoding(exported):
    model, onnx_model = exported
    assert (onnx_model.head, onnx_model.input_size) == (model.head, SIZE)
    assert torch.equal(onnx_model.bins, model.bins)
    props = {p.key: p.value for p in onnx.load(str(onnx_model.path)).metadata_props}
    assert props["head"] == model.head and props["input_size"] == str(SIZE)
    assert ("bins" in props) == (model.head == "classification")
    if model.head == "classification":
        assert json.loads(props["bins"]) == model.bins.tolist()


def test_stands_in_for_a_colorizer(exported):
    _, onnx_model = exported
    assert onnx_model.to("cpu").eval() is onnx_model
    assert next(onnx_model.buffers()).device.type == "cpu"
    with pytest.raises(ValueError, match="CPU only"):
        onnx_model.to("cuda")
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        onnx_model.predict_ab(torch.zeros(1, 1, 64, 64))


def test_recorded_temperature_is_the_default(tmp_path):
    model = create_model("eccv16", width=0.125).eval()
    onnx_model = OnnxColorizer(export_onnx(model, tmp_path / "model.onnx", SIZE, temperature=0.0))
    lightness = torch.rand(2, 1, SIZE, SIZE) * 100
    with torch.no_grad():
        mode = model.predict_ab(lightness, 0.0)
    assert onnx_model.temperature == 0.0
    assert torch.allclose(onnx_model.predict_ab(lightness), mode, atol=1e-2)


def test_bad_files_fail_clearly(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(OnnxModelError, match="not an ONNX model") as error:
        OnnxColorizer(text)
    assert str(text) in str(error.value) and "\n" not in str(error.value)

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "identity.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), str(foreign))
    with pytest.raises(OnnxModelError, match="no polychrome metadata") as error:
        OnnxColorizer(foreign)
    assert str(foreign) in str(error.value)

    with pytest.raises(OnnxModelError, match="no ONNX model at"):
        OnnxColorizer(tmp_path / "missing.onnx")


def test_missing_onnxruntime_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "polychrome\[onnx\]"'):
        OnnxColorizer(tmp_path / "model.onnx")
