"""What every colourisation model in polychrome is: L in, logits over ab bins or ab itself out."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from polychrome.color import DEFAULT_TEMPERATURE, ab_gamut, decode_annealed_mean

HEADS = ("classification", "regression")
AB_SCALE = 110.0  # regression heads predict tanh(x) * 110, covering the ab range of sRGB


def normalize_l(lightness: Tensor) -> Tensor:
    """L in [0, 100] -> about [-0.5, 0.5], Zhang et al.'s input scaling."""
    return (lightness - 50.0) / 100.0


class Colorizer(nn.Module):
    """Base of every model: ``forward(L)`` gives logits (N, Q, h, w) or ab (N, 2, h, w).

    ``predict_ab`` turns either into ab at the output resolution, decoding logits with the annealed
    mean. Subclasses set ``head`` and build their layers.
    """

    bins: Tensor  # (Q, 2) bin centres of a classification head; (0, 2) for regression

    def __init__(self, head: str = "classification", gamut: str = "zhang"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        self.head = head
        self.gamut = gamut
        bins = ab_gamut(gamut) if head == "classification" else torch.zeros(0, 2)
        self.register_buffer("bins", bins, persistent=False)

    @property
    def out_channels(self) -> int:
        return len(self.bins) if self.head == "classification" else 2

    def predict_ab(self, lightness: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
        """L (N, 1, H, W) in [0, 100] -> ab (N, 2, h, w) in Lab units, at the network's output resolution."""
        return decode_output(self(lightness), self.head, self.bins, temperature)


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
