"""What every colourisation model in polychrome is: L in, logits over ab bins or ab itself out."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polychrome.color import DEFAULT_TEMPERATURE, ab_gamut, decode_annealed_mean

HEADS = ("classification", "regression")
AB_SCALE = 110.0  # regression heads predict tanh(x) * 110, covering the ab range of sRGB
LOCAL_HINT_INPUTS = ("ab_hints", "hint_mask")
GLOBAL_HINT_INPUTS = ("global_hints",)
# A global hint as a network sees it: Zhang's 313-bin ab distribution, the mean chroma / 100, and 1 where a
# hint is given (0: none, and the other entries are 0 too). polychrome.hints.global_hint_vector builds it.
GLOBAL_HINT_WIDTH = 313 + 2


def normalize_l(lightness: Tensor) -> Tensor:
    """L in [0, 100] -> about [-0.5, 0.5], Zhang et al.'s input scaling."""
    return (lightness - 50.0) / 100.0


class Colorizer(nn.Module):
    """Base of every model: ``forward(L)`` gives logits (N, Q, h, w) or ab (N, 2, h, w).

    A model built with ``local_hints`` also takes Zhang et al. 2017's local hints,
    ``forward(L, ab_hints, hint_mask)`` (ab (N, 2, H, W) in Lab units, 0 where no hint; mask (N, 1, H, W),
    1 under a hint); one built with ``global_hints`` also takes ``global_hints`` (N, GLOBAL_HINT_WIDTH), a
    reference photo's bin distribution, saturation and a given-flag (``polychrome.hints.global_hint_vector``).
    A hint left out (None) means none given. ``inputs`` names what a model takes, for its card.

    ``predict_ab`` turns the output into ab at the output resolution, decoding logits with the annealed
    mean. Subclasses set ``head`` and build their layers.
    """

    bins: Tensor  # (Q, 2) bin centres of a classification head; (0, 2) for regression
    # True for a model that works at the photo's own resolution (Levin's optimisation) instead of at an input
    # size of its own: the pipeline then gives it the photo's L and hints unresized, one photo at a time.
    full_resolution = False

    def __init__(
        self, head: str = "classification", gamut: str = "zhang", local_hints: bool = False, global_hints: bool = False
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        self.head = head
        self.gamut = gamut
        self.local_hints = local_hints
        self.global_hints = global_hints
        bins = ab_gamut(gamut) if head == "classification" else torch.zeros(0, 2)
        self.register_buffer("bins", bins, persistent=False)

    @property
    def out_channels(self) -> int:
        return len(self.bins) if self.head == "classification" else 2

    @property
    def in_channels(self) -> int:
        """The planes the first layer sees: L, and the two ab hint planes and the mask with local hints."""
        return 4 if self.local_hints else 1

    @property
    def inputs(self) -> tuple[str, ...]:
        """What ``forward`` takes, in order (the model card's ``inputs``)."""
        return (
            ("L",) + (LOCAL_HINT_INPUTS if self.local_hints else ()) + (GLOBAL_HINT_INPUTS if self.global_hints else ())
        )

    def input_planes(
        self,
        lightness: Tensor,
        ab_hints: Tensor | None = None,
        hint_mask: Tensor | None = None,
        global_hints: Tensor | None = None,
    ) -> Tensor:
        """The first layer's input: normalised L, then (with local hints) ab / 110 and the mask, zeros where
        no hints are given. Hints of a kind the model was built without are refused, not ignored."""
        if global_hints is not None and not self.global_hints:
            raise ValueError(f"{type(self).__name__} was built without global_hints and takes no reference")
        planes = normalize_l(lightness)
        if not self.local_hints:
            if ab_hints is not None or hint_mask is not None:
                raise ValueError(f"{type(self).__name__} was built without local_hints and takes no colour hints")
            return planes
        n, _, h, w = lightness.shape
        ab_hints = lightness.new_zeros(n, 2, h, w) if ab_hints is None else ab_hints
        hint_mask = lightness.new_zeros(n, 1, h, w) if hint_mask is None else hint_mask
        if ab_hints.shape != (n, 2, h, w) or hint_mask.shape != (n, 1, h, w):
            raise ValueError(
                f"hint planes must be (N, 2, H, W) and (N, 1, H, W) like L {tuple(lightness.shape)}, "
                f"got {tuple(ab_hints.shape)} and {tuple(hint_mask.shape)}"
            )
        return torch.cat([planes, ab_hints.to(planes) / AB_SCALE, hint_mask.to(planes)], dim=1)

    def predict_ab(self, lightness: Tensor, temperature: float = DEFAULT_TEMPERATURE, *hints: Tensor | None) -> Tensor:
        """L (N, 1, H, W) in [0, 100] (then the hints the model takes) -> ab (N, 2, h, w) in Lab units, at the
        network's output resolution."""
        return decode_output(self(lightness, *hints), self.head, self.bins, temperature)


def decode_output(output: Tensor, head: str, bins: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """A network's output -> ab (N, 2, h, w): logits (N, Q, h, w) over ``bins`` (Q, 2) decoded by the
    annealed mean at ``temperature`` (Zhang et al. 2016) for a classification head; a regression head's
    output is ab already. The one place decoding by head happens (PyTorch, ONNX, the web page)."""
    if head == "regression":
        return output
    return decode_annealed_mean(output.float(), bins.to(output.device), temperature, from_logits=True)


def upsample_ab(ab: Tensor, size: tuple[int, ...]) -> Tensor:
    """Bilinear upsampling of ab to ``size`` (as the official demo joins it with full-resolution L)."""
    return ab if ab.shape[-2:] == tuple(size) else F.interpolate(ab, size=size, mode="bilinear", align_corners=False)


class GlobalHintInjection(nn.Module):
    """Zhang et al. 2017's global hints entering mid-network: the hint vector (N, GLOBAL_HINT_WIDTH) through
    two 1x1 layers to one value per channel, added at every position of a feature map (N, C, h, w).
    Without a hint (None) the map passes unchanged."""

    def __init__(self, channels: int, hidden: int = 256):
        super().__init__()
        self.project = nn.Sequential(
            nn.Linear(GLOBAL_HINT_WIDTH, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def forward(self, features: Tensor, global_hints: Tensor | None) -> Tensor:
        if global_hints is None:
            return features
        if global_hints.shape != (features.shape[0], GLOBAL_HINT_WIDTH):
            raise ValueError(
                f"global hints must be (N, {GLOBAL_HINT_WIDTH}) for N = {features.shape[0]}, got {tuple(global_hints.shape)}"
            )
        # A row whose flag (the last entry) is 0 carries no hint: it adds nothing, as None does.
        added = self.project(global_hints.to(features)) * global_hints[:, -1:].to(features)
        return features + added[:, :, None, None]
