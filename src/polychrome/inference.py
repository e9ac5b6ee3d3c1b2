"""From a model to colour at the image's own resolution, the way Zhang et al.'s demo does it.

The model sees the image's L resized to its input size; its ab is upsampled back to the image's size
and joined with the image's own full-resolution L, so colourisation only ever adds colour.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from polychrome.color import lab_to_uint8, uint8_to_lab
from polychrome.models import Colorizer, upsample_ab


def model_input(lightness: list[Tensor], size: int) -> Tensor:
    """Each L (1, H, W) resized (bilinear, antialiased) to size x size, stacked: (N, 1, size, size)."""
    return torch.cat([
        F.interpolate(l[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False) for l in lightness
    ])


@torch.no_grad()
def predict_full_ab(model: Colorizer, lightness: list[Tensor], size: int, temperature: float = 0.38) -> list[Tensor]:
    """ab (2, H, W) for each L (1, H, W) in [0, 100], predicted at ``size`` and upsampled to (H, W)."""
    if not lightness:
        return []
    predicted = model.predict_ab(model_input(lightness, size), temperature).float()
    return [upsample_ab(ab[None], l.shape[-2:])[0] for ab, l in zip(predicted, lightness)]


@torch.no_grad()
def colorize_images(model: Colorizer, images: list[Tensor], size: int, temperature: float = 0.38) -> list[Tensor]:
    """uint8 RGB (3, H, W) images -> colourised uint8 RGB (3, H, W): their own L, the model's ab."""
    device = next(iter(model.buffers()), torch.empty(0)).device
    lab = [uint8_to_lab(image[None].to(device))[0] for image in images]
    abs_ = predict_full_ab(model, [x[:1] for x in lab], size, temperature)
    return [lab_to_uint8(torch.cat([x[:1], ab])[None])[0].cpu() for x, ab in zip(lab, abs_)]
