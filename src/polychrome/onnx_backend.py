"""Running a trained model without PyTorch model code: export to ONNX, infer with onnxruntime.

The graph holds only the network's raw output (logits over the ab bins, or ab), with a dynamic batch
axis and a fixed input size. Decoding logits stays outside it (``decode_output``, as for PyTorch), so one
exported file serves every temperature; the model's card (name, options, head, input size, temperature,
gamut) and the bins travel in the file's metadata. Exporting uses the TorchScript-based exporter, which
needs only ``onnx``; the newer one also needs ``onnxscript``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from polychrome.files import atomic_path
from polychrome.models.base import HEADS, Colorizer
from polychrome.models.card import LoadedModel, ModelCard, as_loaded, sha256_of
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


def export_onnx(
    model: LoadedModel | Colorizer, path: str | Path, input_size: int | None = None, temperature: float | None = None
) -> Path:
    """Write ``model``'s forward (L (N, 1, input_size, input_size) -> logits or ab) to an ONNX file, with
    its card in the metadata; ``input_size`` and ``temperature`` replace the card's.

    The temperature is the file's default for decoding logits; it has no effect on regression models,
    whose output is ab already. The file appears whole or not at all.
    """
    onnx = _require("onnx")
    model = as_loaded(model)
    card = model.card.replace(
        **{k: v for k, v in {"input_size": input_size, "temperature": temperature}.items() if v is not None}
    )
    path = Path(path).expanduser()
    device = next(iter(model.network.parameters()), torch.empty(0)).device
    lightness = torch.full((1, 1, card.input_size, card.input_size), 50.0, device=device)
    with atomic_path(path) as temporary, warnings.catch_warnings():
        # Both deprecations come from choosing this exporter, which is deliberate (see the module docstring).
        warnings.filterwarnings(
            "ignore", message="You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            model.network,
            (lightness,),
            str(temporary),
            input_names=["lightness"],
            output_names=["output"],
            dynamic_axes={"lightness": {0: "batch"}, "output": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load_model(str(temporary))
        onnx.helper.set_model_props(proto, _card_metadata(card, model.bins))
        onnx.save_model(proto, str(temporary))
    return path


def _card_metadata(card: ModelCard, bins: Tensor) -> dict[str, str]:
    """The card as the file's text metadata; a classification head's bins too, so decoding needs nothing else."""
    metadata = {
        "head": card.head,
        "input_size": str(card.input_size),
        "model": card.name,
        "options": json.dumps(dict(card.options)),
        "gamut": card.gamut,
        # The graph is traced on L alone: a hint-taking model exports its automatic mode (no hints).
        "inputs": "L",
    }
    if card.head == "classification":
        metadata["bins"] = json.dumps(bins.tolist())
        metadata["temperature"] = repr(float(card.temperature))
    return metadata


def load_onnx(path: str | Path) -> LoadedModel:
    """An exported model run by onnxruntime on the CPU, with the card its metadata holds."""
    network = OnnxNetwork(path)
    return LoadedModel(network, network.card)


class OnnxNetwork(nn.Module):
    """An exported network run by onnxruntime on the CPU: called like the PyTorch network it came from
    (L -> logits or ab), with the ``bins`` its logits are over (a plain attribute, not a buffer: it holds
    no tensors ``.to`` would move). Files exported before model cards were written lack name, options,
    gamut and inputs: their card says "", {}, "" and ("L",) there."""

    def __init__(self, path: str | Path):
        super().__init__()
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
            self.card, self.bins = self._read_card(metadata)
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            raise OnnxModelError(f"{self.path} has malformed polychrome metadata ({error})") from None
        self._input_name = self.session.get_inputs()[0].name

    def _read_card(self, metadata: dict[str, str]) -> tuple[ModelCard, Tensor]:
        head = metadata["head"]
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}")
        bins = torch.tensor(
            json.loads(metadata["bins"]) if head == "classification" else [], dtype=torch.float32
        ).reshape(-1, 2)
        if head == "classification" and not len(bins):
            raise ValueError("a classification model needs bins")
        card = ModelCard(
            metadata.get("model", ""),
            head,
            metadata.get("gamut", ""),
            int(metadata["input_size"]),
            options=json.loads(metadata.get("options", "{}")),
            inputs=tuple(metadata.get("inputs", "L").split(",")),
            weights=str(self.path),
            weights_sha256=sha256_of(self.path),
        )
        if "temperature" in metadata:
            card = card.replace(temperature=float(metadata["temperature"]))
        return card, bins

    def forward(self, lightness: Tensor) -> Tensor:
        """L (N, 1, S, S) in [0, 100], S the input size -> logits (N, Q, h, w) or ab (N, 2, h, w)."""
        expected = (1, self.card.input_size, self.card.input_size)
        if lightness.dim() != 4 or tuple(lightness.shape[1:]) != expected:
            raise ValueError(
                f"{self.path.name} takes L of shape (N, {', '.join(map(str, expected))}), got {tuple(lightness.shape)}"
            )
        array = np.ascontiguousarray(lightness.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.session.run(None, {self._input_name: array})[0])
