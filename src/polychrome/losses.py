"""Training losses on ab, computed at the network's output resolution (targets downsampled to it).

- ``mse`` / ``sse`` / ``l1`` / ``huber``: regression on ab (Lab units), for regression heads.
- ``ce``: cross-entropy against soft-encoded targets (Zhang et al. 2016, eq. 2).
- ``rebalanced_ce``: the same, each pixel weighted by the class-rebalancing weight of its ground-truth
  bin (eq. 3-4).

Pixels of grayscale images (Zhang's rule) contribute nothing: they are masked out, and the loss is the
mean over the remaining pixels (``sse`` is the sum over them, averaged over images).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.nn import functional as F

from polychrome.color import encode_hard, encode_soft

REGRESSION_LOSSES = ("mse", "sse", "l1", "huber")
CLASSIFICATION_LOSSES = ("ce", "rebalanced_ce")
LOSSES = REGRESSION_LOSSES + CLASSIFICATION_LOSSES


@dataclass
class LossConfig:
    kind: str = "rebalanced_ce"
    neighbours: int = 5  # soft-encoding: k nearest bins (Zhang: 5; their released code: 10)
    sigma: float = 5.0  # soft-encoding Gaussian
    mix: float = 0.5  # rebalancing: lambda, the uniform share
    prior_sigma: float = 5.0  # rebalancing: smoothing of the empirical prior
    huber_delta: float = 10.0  # huber: where it turns from quadratic to linear (Lab units)

    def __post_init__(self):
        if self.kind not in LOSSES:
            raise ValueError(f"loss kind must be one of {', '.join(LOSSES)}, got {self.kind!r}")


def downsample_ab(ab: Tensor, size: tuple[int, ...]) -> Tensor:
    """Average ab over each output cell (area interpolation), as the targets at output resolution."""
    return ab if ab.shape[-2:] == tuple(size) else F.interpolate(ab, size=size, mode="area")


def colour_loss(
    output: Tensor,
    ab: Tensor,
    colour: Tensor,
    config: LossConfig,
    bins: Tensor | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """The loss of ``output`` (logits (N, Q, h, w) or ab (N, 2, h, w)) against true ab (N, 2, H, W).

    ``colour`` (N,) bool marks the images that count (not grayscale). ``bins`` (Q, 2) are needed by the
    classification losses and ``weights`` (Q,) by ``rebalanced_ce``.
    """
    if not colour.any():
        return output.sum() * 0.0  # keeps the graph (and DDP) happy, contributes nothing
    output, target = output[colour], downsample_ab(ab[colour], output.shape[-2:])
    if config.kind in REGRESSION_LOSSES:
        if output.shape[1] != 2:
            raise ValueError(f"loss {config.kind!r} needs a regression head (2 channels), got {output.shape[1]}")
        if config.kind == "mse":
            return F.mse_loss(output.float(), target)
        if config.kind == "sse":
            return F.mse_loss(output.float(), target, reduction="sum") / len(output)
        if config.kind == "l1":
            return F.l1_loss(output.float(), target)
        return F.huber_loss(output.float(), target, delta=config.huber_delta)
    if bins is None or output.shape[1] != len(bins):
        raise ValueError(
            f"loss {config.kind!r} needs a classification head over the bins, got {output.shape[1]} channels"
        )
    encoding = encode_soft(target, bins, config.neighbours, config.sigma)
    log_q = F.log_softmax(output.float(), dim=1)
    per_pixel = -(encoding.weight * log_q.gather(1, encoding.index)).sum(dim=1)  # (n, h, w)
    if config.kind == "ce":
        return per_pixel.mean()
    if weights is None:
        raise ValueError("rebalanced_ce needs the class-rebalancing weights of the training prior")
    pixel_weights = weights.to(per_pixel)[encode_hard(target, bins)]
    return (per_pixel * pixel_weights).mean()
