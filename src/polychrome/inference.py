"""From a model to colour at the image's own resolution, the way Zhang et al.'s demo does it.

The model sees the image's L resized to its input size; its ab is upsampled back to the image's size
and joined with the image's own full-resolution L, so colourisation only ever adds colour. For photos
(``colorize_images``) the full-resolution work goes in horizontal stripes of about a megapixel, so a
50-megapixel photo needs its uint8 pixels, one float L plane and the uint8 result, not a dozen float
copies (benchmarks/colorize.py measures it).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from polychrome.color import lab_to_uint8, uint8_to_lightness
from polychrome.models import Colorizer, create_model, list_models, load_official, load_weights, upsample_ab
from polychrome.models.weights import BUNDLED, bundled_weights

BASELINES_NEEDING_DATA = ("random", "mean")
OFFICIAL_INPUT_SIZE = 256  # both official networks were trained on 256x256 crops
STRIPE_PIXELS = 1 << 20  # pixels per stripe of the full-resolution merge


def load_model(name_or_path: str, fit_data: str | None = None, size: int = 64, fit_images: int = 2048) -> Colorizer:
    """Any model by name, in eval mode, with ``input_size`` set when it is known:

    - ``default``: the bundled trained model (see README, "The bundled model");
    - a weights file ``*.safetensors`` written by ``polychrome export-weights``;
    - a registered name (``gray``; ``random`` / ``mean`` fitted on ``fit_images`` of ``fit_data`` at ``size``);
    - ``eccv16-official:PATH`` / ``siggraph17-official:PATH``: the released weights (input size 256);
    - a checkpoint file or run directory (input size: the size it was trained at).
    """
    if name_or_path in BUNDLED:
        return load_weights(bundled_weights(name_or_path))
    if name_or_path.endswith(".safetensors"):
        return load_weights(name_or_path)
    kind, sep, path = name_or_path.partition("-official:")
    if sep:
        model = load_official(kind, path)
        model.input_size = OFFICIAL_INPUT_SIZE
        return model
    if name_or_path in list_models():
        model = create_model(name_or_path, **({"size": size} if name_or_path in BASELINES_NEEDING_DATA else {}))
        if name_or_path in BASELINES_NEEDING_DATA:
            _fit(model, fit_data, size, fit_images, name_or_path)
        return model.eval()
    from polychrome.checkpoints import load_checkpoint

    model, config = load_checkpoint(name_or_path)
    model.input_size = config["data"]["size"]
    return model


def _fit(model: Colorizer, fit_data: str | None, size: int, fit_images: int, name: str) -> None:
    from torch.utils.data import DataLoader, Subset

    from polychrome.data import SkipUnreadable, collate_images, eval_transform, open_dataset

    if fit_data is None:
        raise ValueError(f"baseline {name!r} needs training images to fit on: give --fit-data SPEC "
                         "(for cifar10, places365 and imagenet the training split is the default)")
    dataset = open_dataset(fit_data, eval_transform(size))
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:fit_images].tolist()
    loader = DataLoader(SkipUnreadable(Subset(dataset, chosen)), batch_size=256, collate_fn=collate_images)
    model.fit(batch.images for batch in loader if len(batch.images))


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


def _stripes(height: int, width: int):
    rows = max(1, STRIPE_PIXELS // max(1, width))
    for top in range(0, height, rows):
        yield top, min(height, top + rows)


def lightness_of(image: Tensor) -> Tensor:
    """uint8 RGB (3, H, W) -> L (1, H, W) in [0, 100], converted stripe by stripe."""
    out = torch.empty((1, *image.shape[-2:]), device=image.device)
    for top, bottom in _stripes(*image.shape[-2:]):
        out[:, top:bottom] = uint8_to_lightness(image[None, :, top:bottom])[0]
    return out


def _bilinear_rows(ab: Tensor, height: int, top: int, bottom: int) -> Tensor:
    """Rows top..bottom of ab (2, h, W) upsampled bilinearly to ``height`` rows, as F.interpolate
    (align_corners=False) computes them for the whole image."""
    h = ab.shape[1]
    source = ((torch.arange(top, bottom, device=ab.device, dtype=torch.float32) + 0.5) * (h / height) - 0.5).clamp(min=0)
    above = source.floor().long().clamp(max=h - 1)
    below = (above + 1).clamp(max=h - 1)
    weight = (source - above)[None, :, None]
    return ab[:, above] * (1 - weight) + ab[:, below] * weight


def merge(lightness: Tensor, ab: Tensor) -> Tensor:
    """The image's own L (1, H, W) joined with ab (2, h, w) upsampled bilinearly to (H, W): uint8 RGB (3, H, W)."""
    height, width = lightness.shape[-2:]
    ab = F.interpolate(ab[None].float(), size=(ab.shape[-2], width), mode="bilinear", align_corners=False)[0]  # (2, h, W)
    out = torch.empty((3, height, width), dtype=torch.uint8, device=lightness.device)
    for top, bottom in _stripes(height, width):
        lab = torch.cat([lightness[:, top:bottom], _bilinear_rows(ab, height, top, bottom)])
        out[:, top:bottom] = lab_to_uint8(lab[None])[0]
    return out


@torch.no_grad()
def colorize_images(model: Colorizer, images: list[Tensor], size: int, temperature: float = 0.38) -> list[Tensor]:
    """uint8 RGB (3, H, W) images -> colourised uint8 RGB (3, H, W): their own L, the model's ab."""
    if not images:
        return []
    device = next(iter(model.buffers()), torch.empty(0)).device
    planes = [lightness_of(image.to(device)) for image in images]
    predicted = model.predict_ab(model_input(planes, size), temperature).float()
    return [merge(plane, ab).cpu() for plane, ab in zip(planes, predicted)]
