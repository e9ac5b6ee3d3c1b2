"""The rows every comparison table needs: ``gray``, ``random`` and ``mean`` (Zhang et al. 2016, Table 1).

They have no trainable weights. ``random`` and ``mean`` are fitted from training images with ``fit``
(buffers, so they travel in checkpoints); ``gray`` needs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from polychrome.color import uint8_to_lab
from polychrome.levin import levin_colorize
from polychrome.models.base import Colorizer, upsample_ab
from polychrome.models.registry import register


class Gray(Colorizer):
    """ab = 0 everywhere: the photo left gray."""

    def __init__(self):
        super().__init__(head="regression")

    def forward(self, lightness: Tensor) -> Tensor:
        return lightness.new_zeros(lightness.shape[0], 2, *lightness.shape[2:])


class FittedBaseline(Colorizer):
    """A baseline whose colours come from training images (``fit``), not from learned weights."""

    def __init__(self, size: int):
        super().__init__(head="regression")
        self.size = size

    def fit(self, batches: Iterable) -> FittedBaseline:
        """Fit from uint8 RGB batches (N, 3, size, size), or (images, labels) pairs."""
        ab = [uint8_to_lab(b[0] if isinstance(b, (tuple, list)) else getattr(b, "images", b))[:, 1:] for b in batches]
        self._fit(torch.cat(ab))
        return self

    @property
    def fitted(self) -> bool:
        raise NotImplementedError

    def _fit(self, ab: Tensor) -> None:
        """Keep what the baseline needs of the training images' ab (N, 2, size, size)."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(
                f"{type(self).__name__.lower()} baseline is not fitted: call .fit(training batches) first"
            )


class RandomColours(FittedBaseline):
    """The ab channels of a random training image (resized to the input), as in Zhang's Table 1."""

    bank: Tensor  # (B, 2, size, size) ab of the chosen training images; empty until fitted

    def __init__(self, size: int = 64, bank: int = 512, seed: int = 0):
        super().__init__(size)
        self.bank_size = bank
        self.seed = seed
        self.register_buffer("bank", torch.zeros(0, 2, size, size))

    @property
    def fitted(self) -> bool:
        return len(self.bank) > 0

    def _fit(self, ab: Tensor) -> None:
        pick = torch.randperm(len(ab), generator=torch.Generator().manual_seed(self.seed))[: self.bank_size]
        self.bank = ab[pick].to(self.bank)

    def forward(self, lightness: Tensor) -> Tensor:
        self._check_fitted()
        # The same input gets the same colours: the choice is seeded by the image's own L.
        keys = (lightness.flatten(1).sum(1) * 1000).long() + self.seed
        index = torch.remainder(keys * 2654435761, len(self.bank))
        return upsample_ab(self.bank[index], lightness.shape[-2:])


class MeanColours(FittedBaseline):
    """The training set's mean ab at each pixel position."""

    mean: Tensor  # (1, 2, size, size); empty until fitted

    def __init__(self, size: int = 64):
        super().__init__(size)
        self.register_buffer("mean", torch.zeros(0, 2, size, size))

    @property
    def fitted(self) -> bool:
        return len(self.mean) > 0

    def _fit(self, ab: Tensor) -> None:
        self.mean = ab.mean(dim=0, keepdim=True).to(self.mean)

    def forward(self, lightness: Tensor) -> Tensor:
        self._check_fitted()
        return upsample_ab(self.mean, lightness.shape[-2:]).expand(lightness.shape[0], -1, -1, -1)


register("gray", lambda: Gray(), None, "baseline: ab = 0")
register(
    "random",
    lambda size=64, bank=512, seed=0: RandomColours(size, bank, seed),
    None,
    "baseline: ab of a random training image",
)
register("mean", lambda size=64: MeanColours(size), None, "baseline: per-pixel mean ab of the training set")


class Levin(Colorizer):
    """Levin, Lischinski & Weiss 2004 ("Colorization using Optimization") as a model: the local hints spread
    along L by a sparse linear solve (``polychrome.levin``), the anchor every guided method is compared with.
    Nothing is learned; it runs at whatever resolution it is given, and the pipeline gives it the photo's
    own (``full_resolution``). No hints give ab = 0, the gray photo."""

    full_resolution = True

    def __init__(self, solver: str = "splu"):
        super().__init__(head="regression", local_hints=True)
        self.solver = solver

    def forward(self, lightness: Tensor, ab_hints: Tensor | None = None, hint_mask: Tensor | None = None) -> Tensor:
        """L (N, 1, H, W) in [0, 100], hint ab (N, 2, H, W) and mask (N, 1, H, W) -> ab (N, 2, H, W)."""
        self.input_planes(lightness, ab_hints, hint_mask)  # checks the shapes
        if ab_hints is None or hint_mask is None:
            return lightness.new_zeros(lightness.shape[0], 2, *lightness.shape[2:])
        return torch.stack(
            [
                levin_colorize(plane, ab, mask[0] > 0, solver=self.solver)  # type: ignore[arg-type]
                for plane, ab, mask in zip(lightness, ab_hints, hint_mask, strict=True)
            ]
        )


register("levin", Levin, None, "Levin et al. 2004: local hints propagated by optimisation (no learning)")
