"""Zhang et al. 2016's colourisation CNN, with every ablation of the study as a config field.

The ``eccv16`` config is the paper's network exactly (it loads the released weights, see official.py):
blocks conv1..conv7 of 2,2,3,3,3,3,3 3x3 convs with 64..512 channels, the last conv of conv1-3 strided,
dilation 2 in conv5-6, ReLU after every conv and BatchNorm closing each block; conv8 = a 4x4 transposed
conv (x2) and two 3x3 convs; a 1x1 conv to Q = 313 logits. Output stride 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from polychrome.models.base import AB_SCALE, Colorizer, GlobalHintInjection
from polychrome.models.registry import register

ECCV16_CHANNELS = (64, 128, 256, 512, 512, 512, 512)
ECCV16_CONVS = (2, 2, 3, 3, 3, 3, 3)
DOWNSAMPLE_MODES = ("stride", "maxpool")
UPSAMPLE_MODES = ("transposed", "bilinear", "nearest")


@dataclass
class ZhangConfig:
    width: float = 1.0  # multiplies every channel count
    blocks: int = 7  # conv blocks before the decoder; beyond 7, more 512-channel blocks
    convs: int | None = None  # convs per block ("thickness"); None = ECCV16's 2,2,3,3,3,3,3
    dilation: int = 2  # rate in the dilated blocks; 1 turns dilation off
    dilated_blocks: tuple[int, ...] = (4, 5)  # conv5 and conv6 (0-based)
    batchnorm: bool = True  # BatchNorm closing each block
    downsample: str = "stride"  # how resolution goes down: "stride" (last conv of a block) or "maxpool"
    downsamples: int = 3  # how many times (in the first blocks); 0 keeps full resolution
    upsample: str = "transposed"  # how it comes back: "transposed" (4x4, stride 2), "bilinear"/"nearest" + 3x3 conv
    upsamples: int = 1  # how many times; output stride = 2 ** (downsamples - upsamples)
    decoder_channels: int = 256
    decoder_convs: int = 2  # 3x3 convs after the upsampling
    head: str = "classification"  # logits over the gamut's Q bins, or "regression" to ab (tanh x 110)
    gamut: str = "zhang"
    local_hints: bool = False  # also take Zhang 2017's local hints (ab planes + mask beside L)
    global_hints: bool = False  # also take a global hint, added to the output of block ``global_block``
    # The encoder block (0-based) whose output takes the global hint: 3 = conv4, where Zhang et al. 2017 add their
    # global hints network's output (512 channels, conv4's width). Networks built before this field existed took it
    # after block blocks // 2 - 1 (conv3 of ECCV16); global_block=2 rebuilds those.
    global_block: int = 3

    def __post_init__(self):
        if self.downsample not in DOWNSAMPLE_MODES:
            raise ValueError(f"downsample must be one of {', '.join(DOWNSAMPLE_MODES)}, got {self.downsample!r}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {self.upsample!r}")
        if not 0 <= self.downsamples <= self.blocks:
            raise ValueError(f"downsamples must be between 0 and blocks ({self.blocks}), got {self.downsamples}")
        if not 0 <= self.upsamples <= self.downsamples:
            raise ValueError(f"upsamples must be between 0 and downsamples ({self.downsamples}), got {self.upsamples}")
        if self.blocks < 1 or self.width <= 0 or (self.convs is not None and self.convs < 1):
            raise ValueError("blocks and convs must be at least 1, width positive")
        if self.global_hints and not 0 <= self.global_block < self.blocks:
            raise ValueError(
                f"global_block must be between 0 and blocks - 1 ({self.blocks - 1}) for a network with global_hints, "
                f"got {self.global_block} (blocks={self.blocks}); the global hint enters after that encoder block "
                "(3 = conv4, Zhang et al. 2017): lower global_block or use more blocks"
            )
        self.dilated_blocks = tuple(self.dilated_blocks)

    @property
    def output_stride(self) -> int:
        return 2 ** (self.downsamples - self.upsamples)


def scaled_channels(channels: int, width: float) -> int:
    """A layer's channels at width multiplier ``width`` (at least one): the architectures' one way to narrow."""
    return max(1, round(channels * width))


def _block(
    in_channels: int, out_channels: int, convs: int, dilation: int, stride: int, maxpool: bool, batchnorm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        last = i == convs - 1
        layers += [
            nn.Conv2d(
                in_channels if i == 0 else out_channels,
                out_channels,
                3,
                stride=stride if last else 1,
                padding=dilation,
                dilation=dilation,
            ),
            nn.ReLU(inplace=True),
        ]
    if batchnorm:
        layers.append(nn.BatchNorm2d(out_channels))
    if maxpool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ZhangNet(Colorizer):
    """Encoder of conv blocks, a decoder that brings resolution back up, and a 1x1 head."""

    def __init__(self, config: ZhangConfig):
        super().__init__(config.head, config.gamut, config.local_hints, config.global_hints)
        self.config = config
        blocks, widths, in_channels = [], [], self.in_channels
        for i in range(config.blocks):
            out_channels = scaled_channels(ECCV16_CHANNELS[min(i, len(ECCV16_CHANNELS) - 1)], config.width)
            convs = config.convs if config.convs is not None else ECCV16_CONVS[min(i, len(ECCV16_CONVS) - 1)]
            dilation = config.dilation if i in config.dilated_blocks else 1
            down = i < config.downsamples
            blocks.append(
                _block(
                    in_channels,
                    out_channels,
                    convs,
                    dilation,
                    stride=2 if down and config.downsample == "stride" else 1,
                    maxpool=down and config.downsample == "maxpool",
                    batchnorm=config.batchnorm,
                )
            )
            widths.append(out_channels)
            in_channels = out_channels
        self.encoder = nn.Sequential(*blocks)
        self.global_block = config.global_block  # the block whose output takes the global hint (in range: checked)
        if config.global_hints:
            self.global_injection = GlobalHintInjection(widths[self.global_block])

        decoder_channels = scaled_channels(config.decoder_channels, config.width)
        layers: list[nn.Module] = []
        for _ in range(config.upsamples):
            if config.upsample == "transposed":
                layers.append(nn.ConvTranspose2d(in_channels, decoder_channels, 4, stride=2, padding=1))
            else:
                layers += [
                    nn.Upsample(scale_factor=2, mode=config.upsample),
                    nn.Conv2d(in_channels, decoder_channels, 3, padding=1),
                ]
            layers.append(nn.ReLU(inplace=True))
            in_channels = decoder_channels
        for _ in range(config.decoder_convs):
            layers += [nn.Conv2d(in_channels, decoder_channels, 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = decoder_channels
        self.decoder = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(in_channels, self.out_channels, 1)

    def forward(
        self,
        lightness: Tensor,
        ab_hints: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hints: Tensor | None = None,
    ) -> Tensor:
        """L (N, 1, H, W) in [0, 100] (and the hints the model takes, see Colorizer) -> logits
        (N, Q, H/s, W/s) or ab (N, 2, H/s, W/s), s the output stride."""
        features = self.input_planes(lightness, ab_hints, hint_mask, global_hints)
        for index, block in enumerate(self.encoder):
            features = block(features)
            if index == self.global_block and self.global_hints:
                features = self.global_injection(features, global_hints)
        output = self.classifier(self.decoder(features))
        return output if self.head == "classification" else output.tanh() * AB_SCALE


def zhang(**options) -> ZhangNet:
    return ZhangNet(ZhangConfig(**options))


register("eccv16", zhang, ZhangConfig, "Zhang et al. 2016 (ECCV), classification over 313 bins")
register("eccv16_regress", zhang, ZhangConfig, "ECCV16 body, regression head (tanh x 110)", head="regression")
register("eccv16_nobn", zhang, ZhangConfig, "ECCV16 without BatchNorm", batchnorm=False)
register("eccv16_nodilation", zhang, ZhangConfig, "ECCV16 without dilation", dilation=1)
register(
    "eccv16_maxpool", zhang, ZhangConfig, "ECCV16 downsampling by max-pool instead of strides", downsample="maxpool"
)
register("eccv16_bilinear", zhang, ZhangConfig, "ECCV16 upsampling by bilinear + conv", upsample="bilinear")
register("eccv16_tiny", zhang, ZhangConfig, "ECCV16 at width 0.25, a size a CPU can train", width=0.25)
