"""The networks of richzhang/colorization with their released weights, for comparison.

ECCV16 is our ``eccv16`` ZhangNet exactly; its state dict is mapped key by key. SIGGRAPH17 (Zhang et
al. 2017's local-hints network; automatic with zero ab hints and mask) has its own module below, named as the original so
its state dict loads as is. Weights come only from a local file the user supplies; loading is strict:
every key is used and every shape checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from polychrome.color import ab_gamut
from polychrome.models.base import AB_SCALE, Colorizer
from polychrome.models.card import LoadedModel, sha256_of
from polychrome.models.registry import build_model, register
from polychrome.models.weights import WeightsError, load_state_strict

RELEASES = {
    "eccv16": (
        "colorization_release_v2-9b330a0b.pth",
        "https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
    ),
    "siggraph17": ("siggraph17-df00044c.pth", "https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth"),
}
OFFICIAL_INPUT_SIZE = 256  # both official networks were trained on 256x256 crops


class OfficialWeightsError(WeightsError):
    """A released weights file that is missing or does not fit the network; the message says what to do."""


def _conv(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)


def _stack(
    in_channels: int, out_channels: int, convs: int, dilation: int = 1, relu_first: bool = False
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ReLU(inplace=True)] if relu_first else []
    for i in range(convs):
        layers += [_conv(in_channels if i == 0 else out_channels, out_channels, dilation), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.BatchNorm2d(out_channels))


class SIGGRAPH17Net(Colorizer):
    """Zhang et al. 2017 ("Real-Time User-Guided Image Colorization"): the local-hints network.

    All convs have stride 1; resolution halves by taking every second pixel before model2-4 and comes
    back through transposed convs with shortcuts (model3short8, model2short9, model1short10). The output
    is ab at full resolution (tanh x 110). ``model_class`` is in the released state dict but unused.
    """

    def __init__(self):
        super().__init__(head="regression", local_hints=True)
        self.model1 = _stack(4, 64, 2)
        self.model2 = _stack(64, 128, 2)
        self.model3 = _stack(128, 256, 3)
        self.model4 = _stack(256, 512, 3)
        self.model5 = _stack(512, 512, 3, dilation=2)
        self.model6 = _stack(512, 512, 3, dilation=2)
        self.model7 = _stack(512, 512, 3)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(_conv(256, 256))
        self.model8 = _stack(256, 256, 2, relu_first=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(_conv(128, 128))
        self.model9 = _stack(128, 128, 1, relu_first=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(_conv(64, 128))
        self.model10 = nn.Sequential(nn.ReLU(inplace=True), _conv(128, 128), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, 529, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, lightness: Tensor, ab_hints: Tensor | None = None, hint_mask: Tensor | None = None) -> Tensor:
        """L (N, 1, H, W) in [0, 100], H and W multiples of 8, and optionally local hints: ab (N, 2, H, W) in
        Lab units and mask (N, 1, H, W) (the released code's input_B and mask_B; ab / 110, mask as is) ->
        ab (N, 2, H, W). Without hints the network runs in its automatic mode."""
        h, w = lightness.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"SIGGRAPH17 needs sides that are multiples of 8, got {h}x{w}")
        conv1 = self.model1(self.input_planes(lightness, ab_hints, hint_mask))
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        conv7 = self.model7(self.model6(self.model5(self.model4(conv3[:, :, ::2, ::2]))))
        conv8 = self.model8(self.model8up(conv7) + self.model3short8(conv3))
        conv9 = self.model9(self.model9up(conv8) + self.model2short9(conv2))
        conv10 = self.model10(self.model10up(conv9) + self.model1short10(conv1))
        return self.model_out(conv10) * AB_SCALE


register(
    "siggraph17",
    lambda: SIGGRAPH17Net(),
    None,
    "Zhang et al. 2017, local hints (architecture; weights via load_official)",
)


def _eccv16_key(key: str) -> str:
    """Official ECCV16 names -> ZhangNet names: model1..7 are encoder blocks, model8 decoder + classifier."""
    block = re.match(r"model([1-7])\.(.*)", key)
    if block:
        return f"encoder.{int(block[1]) - 1}.{block[2]}"
    decoder = re.match(r"model8\.(\d+)\.(.*)", key)
    if decoder:
        index = int(decoder[1])
        return f"classifier.{decoder[2]}" if index == 6 else f"decoder.{index}.{decoder[2]}"
    return key


def _read_state_dict(kind: str, path: str | Path) -> dict[str, Tensor]:
    name, url = RELEASES[kind]
    path = Path(path).expanduser()
    if not path.is_file():
        raise OfficialWeightsError(
            f"{kind} weights not found at {path}: download {name} from {url} (richzhang/colorization) and pass its path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which, not a stack trace
        raise OfficialWeightsError(f"{path} is not a readable PyTorch state dict ({error}); expected {name}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise OfficialWeightsError(f"{path} does not hold a state dict of tensors; expected {name}")
    return state


def load_official(kind: str, path: str | Path) -> LoadedModel:
    """The ``eccv16`` or ``siggraph17`` network with the released weights from ``path``, in eval mode
    (its card: input size 256, the file and its hash)."""
    if kind not in RELEASES:
        raise ValueError(f"unknown official model {kind!r}; choose one of {', '.join(RELEASES)}")
    state = _read_state_dict(kind, path)
    model = build_model(kind)
    if kind == "eccv16":
        model_out = state.pop("model_out.weight", None)
        # model_out is the fixed 313 -> 2 projection onto the bin centres (divided by 110); we decode with
        # the same centres, so check it rather than keep a second copy.
        if model_out is None or model_out.shape != (2, 313, 1, 1):
            raise OfficialWeightsError(
                f"{path} has no model_out.weight of shape (2, 313, 1, 1); is it {RELEASES[kind][0]}?"
            )
        if not torch.allclose(model_out[:, :, 0, 0].T * AB_SCALE, ab_gamut("zhang"), atol=0.5):
            raise OfficialWeightsError(f"{path}: model_out does not project onto Zhang's 313 bins in order")
        state = {_eccv16_key(k): v for k, v in state.items()}
    load_state_strict(model.network, state, path, OfficialWeightsError)
    path = Path(path).expanduser()
    return model.with_card(input_size=OFFICIAL_INPUT_SIZE, weights=str(path), weights_sha256=sha256_of(path)).eval()
