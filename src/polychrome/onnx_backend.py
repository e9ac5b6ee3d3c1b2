"""Running a trained model without PyTorch model code: export to ONNX, infer with onnxruntime.

The graph holds only the network's raw output (logits over the ab bins, or ab), with a dynamic batch
axis and a fixed input size. Decoding logits stays outside it, so one exported file serves every
temperature; what decoding needs (head, input size, the bins) travels in the file's metadata. Exporting
uses the TorchScript-based exporter, which needs only ``onnx``; the newer one also needs ``onnxscript``.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polychrome.color import DEFAULT_TEMPERATURE, decode_annealed_mean
from polychrome.files import atomic_path
from polychrome.models.base import HEADS, Colorizer
from polychrome.models.weights import WeightsError

OPSET = 18


class OnnxModelError(WeightsError):
    """A file that is not an ONNX model exported by polychrome; the message names it and says why."""


def _require(module: str):
    """Import onnx or onnxruntime, which are optional: the error says how to install them."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f'{module} is not installed: pip install "polychrome[onnx]"') from None


def export_onnx(model: Colorizer, path: str | Path, input_size: int, temperature: float | None = None) -> Path:
    """Write ``model``'s forward (L (N, 1, input_size, input_size) -> logits or ab) to an ONNX file.

    ``temperature`` is recorded as the file's default for decoding logits; it has no effect on
    regression models, whose output is ab already. The file appears whole or not at all.
    """
    onnx = _require("onnx")
    if input_size < 1:
        raise ValueError(f"input_size must be positive, got {input_size}")
    if temperature is not None and temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    path = Path(path).expanduser()
    device = next(iter(model.parameters()), torch.empty(0)).device
    lightness = torch.full((1, 1, input_size, input_size), 50.0, device=device)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Both deprecations come from choosing this exporter, which is deliberate (see the module docstring).
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            model, (lightness,), buffer, input_names=["lightness"], output_names=["output"],
            dynamic_axes={"lightness": {0: "batch"}, "output": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )
    proto = onnx.load_model_from_string(buffer.getvalue())
    metadata = {"head": model.head, "input_size": str(input_size)}
    if model.head == "classification":
        metadata["bins"] = json.dumps(model.bins.tolist())
        if temperature is not None:
            metadata["temperature"] = repr(float(temperature))
    onnx.helper.set_model_props(proto, metadata)

    with atomic_path(path) as temporary:
        onnx.save_model(proto, str(temporary))
    return path


class OnnxColorizer:
    """An exported model run by onnxruntime on the CPU, usable where inference expects a Colorizer.

    ``predict_ab`` keeps ``Colorizer.predict_ab``'s contract; logits are decoded with the same torch
    function, so results match the PyTorch model up to float rounding.
    """

    def __init__(self, path: str | Path):
        ort = _require("onnxruntime")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise OnnxModelError(f"no ONNX model at {self.path}")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's own exception types are not part of its public API
            reason = " ".join(str(error).split())[:200]
            raise OnnxModelError(f"{self.path} is not an ONNX model onnxruntime can load ({reason})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if "head" not in metadata or "input_size" not in metadata:
            raise OnnxModelError(
                f"{self.path} has no polychrome metadata (head, input_size): export it with polychrome.onnx_backend.export_onnx"
            )
        try:
            self.head = metadata["head"]
            if self.head not in HEADS:
                raise ValueError(f"unknown head {self.head!r}")
            self.input_size = int(metadata["input_size"])
            self.temperature = float(metadata.get("temperature", DEFAULT_TEMPERATURE))
            bins = json.loads(metadata["bins"]) if self.head == "classification" else []
            self.bins = torch.tensor(bins, dtype=torch.float32).reshape(-1, 2)
            if self.head == "classification" and not len(self.bins):
                raise ValueError("a classification model needs bins")
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            raise OnnxModelError(f"{self.path} has malformed polychrome metadata ({error})") from None
        self._input_name = self.session.get_inputs()[0].name

    def __call__(self, lightness: Tensor) -> Tensor:
        """L (N, 1, S, S) in [0, 100], S the input size -> logits (N, Q, h, w) or ab (N, 2, h, w)."""
        expected = (1, self.input_size, self.input_size)
        if lightness.dim() != 4 or tuple(lightness.shape[1:]) != expected:
            raise ValueError(f"{self.path.name} takes L of shape (N, {', '.join(map(str, expected))}), got {tuple(lightness.shape)}")
        array = np.ascontiguousarray(lightness.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.session.run(None, {self._input_name: array})[0])

    def predict_ab(self, lightness: Tensor, temperature: float | None = None) -> Tensor:
        """L (N, 1, S, S) in [0, 100] -> ab (N, 2, h, w); ``None`` decodes at the file's temperature (default 0.38)."""
        output = self(lightness)
        if self.head == "regression":
            return output
        return decode_annealed_mean(output, self.bins, self.temperature if temperature is None else temperature, from_logits=True)

    def eval(self) -> OnnxColorizer:
        return self

    def to(self, device: str | torch.device) -> OnnxColorizer:
        """Only the CPU is supported: onnxruntime runs here with its CPU provider."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"an ONNX model runs on the CPU only, not on {device}")
        return self

    def buffers(self):
        """The bins, so inference finds the device (the CPU) the way it does for a Colorizer."""
        return iter((self.bins,))
