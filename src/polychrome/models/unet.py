"""A U-Net colouriser: an encoder that halves resolution level by level and a decoder that brings it back
to the input's, each level joined by a skip connection from the encoder at the same resolution.

Zhang et al. 2017's local-hints network has this shape (their shortcuts model3short8 .. model1short10,
see official.py): a hint is a colour at a point, and the skips carry the full-resolution L in which
its edges are, so the colour can spread along a region and stop at its border. ECCV16's decoder (``eccv16``)
stops at a quarter of the input and has no skips; this one predicts at every input pixel. Small enough to
train on a CPU at the default ``channels``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polychrome.models.base import AB_SCALE, Colorizer, GlobalHintInjection
from polychrome.models.registry import register


@dataclass
class UNetConfig:
    channels: tuple[int, ...] = (32, 64, 128, 256)  # per level, full resolution first; len - 1 halvings
    convs: int = 2  # 3x3 convs per level and per decoder stage
    batchnorm: bool = True
    head: str = "classification"  # logits over the gamut's Q bins, or "regression" to ab (tanh x 110)
    gamut: str = "zhang"
    local_hints: bool = False  # also take Zhang 2017's local hints (ab planes + mask beside L)
    global_hints: bool = False  # also take a global hint, added at the lowest resolution

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 2 or min(self.channels) < 1 or self.convs < 1:
            raise ValueError(
                f"a U-Net needs at least 2 levels of positive channels and 1 conv, got {self.channels}, convs {self.convs}"
            )

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (each level halves them)."""
        return 2 ** (len(self.channels) - 1)


def _convs(in_channels: int, out_channels: int, convs: int, batchnorm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=not batchnorm)
        )
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(Colorizer):
    """Levels of 3x3 convs with max-pool halvings; back up by bilinear upsampling, concatenation with the
    skip, and 3x3 convs; a 1x1 head at full resolution. Output stride 1."""

    def __init__(self, config: UNetConfig):
        super().__init__(config.head, config.gamut, config.local_hints, config.global_hints)
        self.config = config
        c, convs, bn = config.channels, config.convs, config.batchnorm
        self.down = nn.ModuleList(
            _convs(self.in_channels if i == 0 else c[i - 1], c[i], convs, bn) for i in range(len(c))
        )
        if config.global_hints:
            self.global_injection = GlobalHintInjection(c[-1])
        self.up = nn.ModuleList(_convs(c[i + 1] + c[i], c[i], convs, bn) for i in reversed(range(len(c) - 1)))
        self.classifier = nn.Conv2d(c[0], self.out_channels, 1)

    def forward(
        self,
        lightness: Tensor,
        ab_hints: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hints: Tensor | None = None,
    ) -> Tensor:
        """L (N, 1, H, W) in [0, 100], H and W multiples of ``config.multiple`` (and the hints the model takes,
        see Colorizer) -> logits (N, Q, H, W) or ab (N, 2, H, W)."""
        h, w = lightness.shape[-2:]
        if h % self.config.multiple or w % self.config.multiple:
            raise ValueError(f"this U-Net needs sides that are multiples of {self.config.multiple}, got {h}x{w}")
        features, skips = self.input_planes(lightness, ab_hints, hint_mask, global_hints), []
        for index, level in enumerate(self.down):
            features = level(features if index == 0 else F.max_pool2d(features, 2))
            skips.append(features)
        if self.global_hints:
            features = self.global_injection(features, global_hints)
        for level, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            upsampled = F.interpolate(features, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            features = level(torch.cat([upsampled, skip], dim=1))
        output = self.classifier(features)
        return output if self.head == "classification" else output.tanh() * AB_SCALE


def unet(**options) -> UNet:
    return UNet(UNetConfig(**options))


register("unet", unet, UNetConfig, "U-Net with skip connections, output at full input resolution")
register(
    "unet_guided",
    unet,
    UNetConfig,
    "U-Net regressing ab from L and local and global colour hints: the bundled guided model's architecture",
    channels=(16, 32, 64, 128, 256),
    head="regression",
    local_hints=True,
    global_hints=True,
)
