"""The Fusion encoder-decoder of Baldassarre et al. 2017 ("Deep Koalarization").

A CNN encoder on L (to H/8), a global feature vector of the whole image from a frozen classifier
tiled over the H/8 x W/8 grid and concatenated, a 1x1 "fusion" conv to 256 channels, then a decoder
that upsamples back. The classifier is pluggable:

- ``backbone="timm:NAME"``: any timm model, weights from a local file (``backbone_weights``), fed the
  gray image copied to 3 channels at ``backbone_size`` (the paper: inception_resnet_v2 at 299, its
  1000 logits). A classifier polychrome trains itself (``polychrome train-classifier``) is a timm model
  too, so it plugs in the same way.
- ``backbone="none"``: no global features, the ablation.

``head="regression"`` (the paper) predicts ab at full resolution (tanh x 110); ``head="classification"``
predicts logits over the Q bins at half resolution, so fusion can be compared with Zhang's network under
the same losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polychrome.classifier import BackboneError, load_timm_backbone, normalize, timm_mean_std
from polychrome.color import lab_to_rgb
from polychrome.models.base import AB_SCALE, Colorizer, normalize_l
from polychrome.models.registry import register
from polychrome.models.zhang import scaled_channels

ENCODER = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (256, 1))  # (channels, stride)


@dataclass
class FusionConfig:
    width: float = 1.0
    backbone: str = "none"  # "none" or "timm:<model name>"
    backbone_weights: str | None = None  # local file: safetensors or a PyTorch state dict
    backbone_classes: int = 1000  # the classifier's outputs, the length of the fused vector
    backbone_size: int = 299  # side of the image the classifier sees
    head: str = "regression"  # the paper; "classification" for logits over the bins
    gamut: str = "zhang"


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]


class FusionNet(Colorizer):
    backbone_mean: Tensor  # (1, 3, 1, 1) the backbone's input normalisation, when there is a backbone
    backbone_std: Tensor

    def __init__(self, config: FusionConfig):
        super().__init__(config.head, config.gamut)
        self.config = config
        w = config.width
        layers, channels = [], 1
        for out_channels, stride in ENCODER:
            layers += _conv(channels, scaled_channels(out_channels, w), stride)
            channels = scaled_channels(out_channels, w)
        self.encoder = nn.Sequential(*layers)

        self.backbone: nn.Module | None = None
        embedding = 0
        if config.backbone != "none":
            kind, _, name = config.backbone.partition(":")
            if kind != "timm" or not name:
                raise BackboneError(f"backbone must be 'none' or 'timm:<model name>', got {config.backbone!r}")
            self.backbone = load_timm_backbone(name, config.backbone_weights, config.backbone_classes)
            mean, std = timm_mean_std(self.backbone)
            self.register_buffer("backbone_mean", mean, persistent=False)
            self.register_buffer("backbone_std", std, persistent=False)
            embedding = config.backbone_classes
        self.fusion = nn.Sequential(nn.Conv2d(channels + embedding, scaled_channels(256, w), 1), nn.ReLU(inplace=True))

        c = lambda n: scaled_channels(n, w)  # noqa: E731
        decoder = [
            *_conv(c(256), c(128)),
            nn.Upsample(scale_factor=2),
            *_conv(c(128), c(64)),
            *_conv(c(64), c(64)),
            nn.Upsample(scale_factor=2),
            *_conv(c(64), c(32)),
        ]
        self.decoder = nn.Sequential(*decoder)
        self.output = nn.Conv2d(c(32), self.out_channels, 3, padding=1)

    def train(self, mode: bool = True) -> FusionNet:
        super().train(mode)
        if self.backbone is not None:
            self.backbone.eval()  # frozen: BatchNorm statistics stay those of the classifier
        return self

    def global_features(self, lightness: Tensor) -> Tensor:
        """The classifier's outputs (N, backbone_classes) for the gray image as 3-channel RGB."""
        if self.backbone is None:
            raise RuntimeError("this fusion network has no backbone: build it with backbone=timm:NAME")
        gray = lab_to_rgb(torch.cat([lightness, torch.zeros_like(lightness).repeat(1, 2, 1, 1)], dim=1).float())
        gray = F.interpolate(gray, size=(self.config.backbone_size,) * 2, mode="bilinear", align_corners=False)
        with torch.no_grad():
            return self.backbone(normalize(gray, self.backbone_mean, self.backbone_std))

    def forward(self, lightness: Tensor) -> Tensor:
        """L (N, 1, H, W), sides multiples of 8 -> ab (N, 2, H, W) or logits (N, Q, H/2, W/2)."""
        features = self.encoder(normalize_l(lightness))
        if self.backbone is not None:
            embedding = self.global_features(lightness).to(features.dtype)
            features = torch.cat([features, embedding[:, :, None, None].expand(-1, -1, *features.shape[-2:])], dim=1)
        output = self.output(self.decoder(self.fusion(features)))
        if self.head == "classification":
            return output
        return F.interpolate(output.tanh() * AB_SCALE, scale_factor=2, mode="bilinear", align_corners=False)


def fusion(**options) -> FusionNet:
    return FusionNet(FusionConfig(**options))


register("fusion", fusion, FusionConfig, "Baldassarre et al. 2017 fusion encoder-decoder, no backbone (the ablation)")
register(
    "fusion_classify",
    fusion,
    FusionConfig,
    "fusion encoder-decoder with Zhang's classification head",
    head="classification",
)
register(
    "fusion_inception",
    fusion,
    FusionConfig,
    "Deep Koalarization: inception_resnet_v2 embedding (needs backbone_weights)",
    backbone="timm:inception_resnet_v2",
    backbone_weights=None,
)
