"""From a model to colour at the image's own resolution, the way Zhang et al.'s demo does it: the one
path L -> network -> decode -> merge that the Python API, ``polychrome colorize``, the web page, the ONNX
backend and ``evaluate`` all take (``ColorizationPipeline``), and ``load_model`` for every kind of model.

The model sees the image's L resized to its input size; its ab is upsampled back to the image's size
and joined with the image's own full-resolution L, so colourisation only ever adds colour. A model whose
card says ``hint_propagation="levin"`` has its prediction corrected towards the local hints at its own
resolution before that (``polychrome.levin.propagate_residual``). For photos
the full-resolution work goes in horizontal stripes of about a megapixel, so a 50-megapixel photo needs
its uint8 pixels, one float L plane and the uint8 result, not a dozen float copies
(benchmarks/colorize.py measures it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F

from polychrome.color import lab_to_uint8, uint8_to_lightness
from polychrome.data import to_rgba
from polychrome.hints import GlobalHint, LocalHint, global_hint_vector, hint_planes, parse_hints
from polychrome.levin import propagate_residual
from polychrome.models import (
    Colorizer,
    LoadedModel,
    ModelCard,
    as_loaded,
    build_model,
    decode_output,
    list_models,
    load_official,
    load_weights,
    upsample_ab,
)
from polychrome.models.baselines import FittedBaseline
from polychrome.models.weights import BUNDLED, bundled_weights

BASELINES_NEEDING_DATA = ("random", "mean")
HINT_MODELS = "guided, levin, siggraph17-official:PATH, or a model built with local_hints=true"
REFERENCE_MODELS = "guided, or a model built with global_hints=true"
STRIPE_PIXELS = 1 << 20  # pixels per stripe of the full-resolution merge


def load_model(name_or_path: str, fit_data: str | None = None, size: int = 64, fit_images: int = 2048) -> LoadedModel:
    """Any model by name, in eval mode, with its card:

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
        return load_official(kind, path)
    if name_or_path in list_models():
        model = build_model(name_or_path, **({"size": size} if name_or_path in BASELINES_NEEDING_DATA else {}))
        if name_or_path in BASELINES_NEEDING_DATA:
            if not isinstance(model.network, FittedBaseline):
                raise TypeError(f"{name_or_path} is listed as fitted from data but is a {type(model.network).__name__}")
            _fit(model.network, fit_data, size, fit_images, name_or_path)
        return model.eval()
    from polychrome.checkpoints import load_checkpoint_model

    return load_checkpoint_model(name_or_path)[0]


def _fit(model: FittedBaseline, fit_data: str | None, size: int, fit_images: int, name: str) -> None:
    from torch.utils.data import DataLoader, Subset

    from polychrome.data import SkipUnreadable, collate_images, eval_transform, length, open_dataset

    if fit_data is None:
        raise ValueError(
            f"baseline {name!r} needs training images to fit on: give --fit-data SPEC "
            "(for cifar10, places365 and imagenet the training split is the default)"
        )
    dataset = open_dataset(fit_data, eval_transform(size))
    chosen = torch.randperm(length(dataset), generator=torch.Generator().manual_seed(0))[:fit_images].tolist()
    loader = DataLoader(SkipUnreadable(Subset(dataset, chosen)), batch_size=256, collate_fn=collate_images)
    model.fit(batch.images for batch in loader if len(batch.images))


def model_input(lightness: list[Tensor], size: int | tuple[int, ...]) -> Tensor:
    """Each L (1, H, W) resized (bilinear, antialiased) to size x size (or to (h, w)), stacked: (N, 1, h, w)."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    return torch.cat(
        [
            plane[None]
            if plane.shape[-2:] == shape
            else F.interpolate(plane[None], size=shape, mode="bilinear", antialias=True, align_corners=False)
            for plane in lightness
        ]
    )


def side_of(plane: Tensor) -> tuple[int, int]:
    """The (H, W) of an image or plane (..., H, W)."""
    return int(plane.shape[-2]), int(plane.shape[-1])


def global_hint_of(reference) -> GlobalHint:
    """A reference for global hints: a ``GlobalHint`` as it is, a photo file's path, a PIL image or a uint8
    array (H, W, 3) or (H, W)."""
    if isinstance(reference, GlobalHint):
        return reference
    if isinstance(reference, (str, Path)):
        return GlobalHint.from_file(reference)
    return GlobalHint.from_rgb(chw_view(_as_rgb(reference)))


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
    source = ((torch.arange(top, bottom, device=ab.device, dtype=torch.float32) + 0.5) * (h / height) - 0.5).clamp(
        min=0
    )
    above = source.floor().long().clamp(max=h - 1)
    below = (above + 1).clamp(max=h - 1)
    weight = (source - above)[None, :, None]
    return ab[:, above] * (1 - weight) + ab[:, below] * weight


def merge(lightness: Tensor, ab: Tensor) -> Tensor:
    """The image's own L (1, H, W) joined with ab (2, h, w) upsampled bilinearly to (H, W): uint8 RGB (3, H, W)."""
    height, width = lightness.shape[-2:]
    ab = F.interpolate(ab[None].float(), size=(ab.shape[-2], width), mode="bilinear", align_corners=False)[
        0
    ]  # (2, h, W)
    out = torch.empty((3, height, width), dtype=torch.uint8, device=lightness.device)
    for top, bottom in _stripes(height, width):
        lab = torch.cat([lightness[:, top:bottom], _bilinear_rows(ab, height, top, bottom)])
        out[:, top:bottom] = lab_to_uint8(lab[None])[0]
    return out


@dataclass
class Prediction:
    """What the network said about one photo, kept so it can be decoded again at another temperature
    without a second forward pass (the web page's temperature slider)."""

    lightness: Tensor  # (1, H, W) the photo's own L in [0, 100]
    output: Tensor  # (Q, h, w) logits over the ab bins, or (2, h, w) ab for a regression model
    # With local hints, the network's L (1, 1, S, S) and hint planes, so that render can correct the decoded ab
    # towards the hints as the card's hint_propagation says; None and () otherwise.
    network_input: Tensor | None = None
    hints: tuple[Tensor | None, ...] = ()


class ColorizationPipeline:
    """A model and its card on a device: L -> network -> decode -> merge, the one way polychrome colours.

    ``temperature=None`` anywhere means the card's (chosen on validation data for the bundled model, else
    Zhang et al.'s ``DEFAULT_TEMPERATURE``); regression models ignore it. ``device=None`` keeps the model
    where it is. A bare network (no loader) gets ``card_of_network``'s card.
    """

    def __init__(self, model: LoadedModel | Colorizer, device: str | torch.device | None = "cpu", name: str = ""):
        self.model = as_loaded(model)
        self.device = _device_of(self.model) if device is None else torch.device(device)
        self.model.to(self.device).eval()
        self.name = name

    @property
    def card(self) -> ModelCard:
        return self.model.card

    @property
    def input_size(self) -> int:
        return self.card.input_size

    @property
    def temperature(self) -> float:
        return self.card.temperature

    @torch.no_grad()
    def forward(self, lightness: Tensor, hints: tuple[Tensor | None, ...] = ()) -> Tensor:
        """L (N, 1, S, S) in [0, 100] (and ``hint_inputs``'s planes at S) -> the network's float output,
        logits (N, Q, h, w) or ab (N, 2, h, w)."""
        hints = tuple(None if planes is None else planes.to(self.device) for planes in hints)
        return self.model(lightness.to(self.device), *hints).float()

    def check_hints(self, hints: bool, reference: bool) -> None:
        """A one-line ValueError when hints or a reference are given to a model that does not take them."""
        name = self.name or self.card.name
        if hints and "ab_hints" not in self.card.inputs:
            raise ValueError(f"{name} takes no colour hints; models that do: {HINT_MODELS}")
        if reference and "global_hints" not in self.card.inputs:
            raise ValueError(f"{name} takes no reference photo; models that do: {REFERENCE_MODELS}")

    def hint_inputs(
        self,
        hints: Sequence[Sequence[LocalHint]] | None,
        global_hints: Sequence[GlobalHint | None] | None,
        image_sizes: Sequence[tuple[int, int]],
        size: tuple[int, int],
    ) -> tuple[Tensor | None, ...]:
        """The hint inputs for a batch of photos of ``image_sizes`` (H, W) seen at ``size`` (h, w): () without
        any, else (ab (N, 2, h, w), mask (N, 1, h, w)[, global (N, Q + 2)]), None for a kind not given.
        ``hints[i]`` are photo i's local hints in its own pixels; ``global_hints[i]`` its global hint or None."""
        given_local = hints is not None and any(len(one) for one in hints)
        given_global = global_hints is not None and any(one is not None for one in global_hints)
        self.check_hints(given_local, given_global)
        if not given_local and not given_global:
            return ()
        planes: list[Tensor | None] = [None, None]
        if given_local:
            assert hints is not None
            pairs = [hint_planes(one, image, size) for one, image in zip(hints, image_sizes, strict=True)]
            planes = [torch.stack([ab for ab, _ in pairs]), torch.stack([mask for _, mask in pairs])]
        if given_global:
            assert global_hints is not None
            planes.append(global_hint_vector(global_hints))
        return tuple(planes)

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The network's output -> ab (N, 2, h, w): the annealed mean at ``temperature`` for a
        classification model, the ab itself for a regression model."""
        temperature = self.temperature if temperature is None else temperature
        return decode_output(output, self.card.head, self.model.bins, temperature)

    def predict_ab(
        self, lightness: Tensor, temperature: float | None = None, hints: tuple[Tensor | None, ...] = ()
    ) -> Tensor:
        """L (N, 1, H, W) in [0, 100] (and ``hint_inputs``'s planes) -> ab (N, 2, h, w) in Lab units, at the
        network's output resolution (at the input's when the card's ``hint_propagation`` corrects it)."""
        return self.propagate_hints(lightness, self.decode(self.forward(lightness, hints), temperature), hints)

    def propagate_hints(self, lightness: Tensor, ab: Tensor, hints: tuple[Tensor | None, ...]) -> Tensor:
        """The decoded ab (N, 2, h, w) corrected towards the local hints in ``hints`` (``hint_inputs``'s planes at
        L's size (N, 1, H, W)) as the card's ``hint_propagation`` says: with ``"levin"`` the residual at the hints
        spread along L at (H, W); as it is without local hints or any propagation."""
        if self.card.hint_propagation == "none" or len(hints) < 2 or hints[0] is None or hints[1] is None:
            return ab
        lightness = lightness.to(self.device)
        return propagate_residual(lightness, upsample_ab(ab, side_of(lightness)), hints[0], hints[1])

    def predict_full_ab(
        self,
        lightness: list[Tensor],
        size: int | None = None,
        temperature: float | None = None,
        hints: Sequence[Sequence[LocalHint]] | None = None,
        global_hints: Sequence[GlobalHint | None] | None = None,
    ) -> list[Tensor]:
        """ab (2, H, W) for each L (1, H, W) in [0, 100], predicted at ``size`` (the card's) and upsampled to
        (H, W); ``hints[i]`` / ``global_hints[i]`` are photo i's (see ``hint_inputs``). A full-resolution model
        (Levin) sees each photo at its own size."""
        predicted = self._predict_each(lightness, size, temperature, hints, global_hints)
        return [upsample_ab(ab[None], plane.shape[-2:])[0] for ab, plane in zip(predicted, lightness, strict=True)]

    def _predict_each(self, lightness: list[Tensor], size, temperature, hints, global_hints) -> list[Tensor]:
        """Each photo's ab at the network's output resolution (a full-resolution model: at the photo's own)."""
        if not lightness:
            return []
        if self.card.full_resolution:
            return [
                self._predict_one(plane, temperature, hints, global_hints, index)
                for index, plane in enumerate(lightness)
            ]
        side = size or self.input_size
        inputs = self.hint_inputs(hints, global_hints, [side_of(p) for p in lightness], (side, side))
        return list(self.predict_ab(model_input(lightness, side), temperature, inputs))

    def _predict_one(self, plane: Tensor, temperature, hints, global_hints, index: int) -> Tensor:
        """ab (2, H, W) of photo ``index`` seen at its own size (a full-resolution model)."""
        one_hint = None if hints is None else [hints[index]]
        one_global = None if global_hints is None else [global_hints[index]]
        inputs = self.hint_inputs(one_hint, one_global, [side_of(plane)], side_of(plane))
        return self.predict_ab(plane[None], temperature, inputs)[0]

    def colorize_images(
        self,
        images: list[Tensor],
        size: int | None = None,
        temperature: float | None = None,
        hints: Sequence[Sequence[LocalHint]] | None = None,
        global_hints: Sequence[GlobalHint | None] | None = None,
    ) -> list[Tensor]:
        """uint8 RGB (3, H, W) images -> colourised uint8 RGB (3, H, W) on the CPU: their own L, the model's ab
        (steered by ``hints`` / ``global_hints``, one entry per image, for a model that takes them)."""
        if not images:
            return []
        planes = [lightness_of(image.to(self.device)) for image in images]
        # merge upsamples the network's ab stripe by stripe: no full-resolution float ab of a large photo is held.
        predicted = self._predict_each(planes, size, temperature, hints, global_hints)
        return [merge(plane, ab).cpu() for plane, ab in zip(planes, predicted, strict=True)]

    def colorize_batch(self, images: list[np.ndarray], temperature: float | None = None) -> list[np.ndarray]:
        """(H, W, 3) uint8 RGB images of any sizes -> (H, W, 3) uint8 RGB, each with its own L."""
        torch.set_flush_denormal(True)  # subnormal floats slow CPU inference many times over
        colours = self.colorize_images([chw_view(image) for image in images], temperature=temperature)
        return [colour.permute(1, 2, 0).numpy() for colour in colours]

    def colorize(self, image, temperature: float | None = None, hints=None, reference=None) -> np.ndarray:
        """A PIL image or an (H, W) / (H, W, 3) uint8 array -> the colourised (H, W, 3) uint8 array.

        ``hints``: colour clicks for a model that takes them, as ``[(x, y, (r, g, b)), ...]`` (x, y in the
        photo's pixels from the top left; an optional fourth item is the patch side), dicts
        ``{"x": .., "y": .., "rgb": [r, g, b]}`` or ``LocalHint``s (see ``polychrome.hints.parse_hints``).
        ``reference``: a photo (path, PIL image or uint8 array) or ``GlobalHint`` whose colour distribution
        steers a model that takes global hints. A model that takes neither refuses them in one line.
        A colour photo is re-colourised from its own L."""
        rgb = _as_rgb(image)
        if hints is None and reference is None:
            return self.colorize_batch([rgb], temperature)[0]
        torch.set_flush_denormal(True)
        local, global_hint = self._parse_guidance(rgb, hints, reference)
        colour = self.colorize_images([chw_view(rgb)], None, temperature, [local], [global_hint])[0]
        return colour.permute(1, 2, 0).numpy()

    def _parse_guidance(self, rgb: np.ndarray, hints, reference) -> tuple[list[LocalHint], GlobalHint | None]:
        """The photo's parsed local hints and global hint, refused first if the model takes neither."""
        self.check_hints(bool(hints), reference is not None)
        local = parse_hints(hints, rgb.shape[:2]) if hints else []
        return local, None if reference is None else global_hint_of(reference)

    def predict(self, image, hints=None, reference=None) -> Prediction:
        """Run the network once on a photo (as ``colorize`` takes it, hints and reference too); decode later
        with ``render``."""
        rgb = _as_rgb(image)
        local, global_hint = self._parse_guidance(rgb, hints, reference)
        plane = lightness_of(chw_view(rgb).to(self.device))
        side = side_of(plane) if self.card.full_resolution else (self.input_size, self.input_size)
        inputs = self.hint_inputs([local], [global_hint], [side_of(plane)], side)
        network_input = model_input([plane], side)
        output = self.forward(network_input, inputs)[0]
        # render hands what it needs to propagate_hints, which decides by the card whether to correct.
        return Prediction(plane, output, network_input, inputs) if local else Prediction(plane, output)

    @torch.no_grad()
    def render(self, prediction: Prediction, temperature: float | None = None) -> np.ndarray:
        """The (H, W, 3) uint8 colourisation of a prediction at ``temperature`` (annealed mean), corrected
        towards its hints as the card says."""
        ab = self.decode(prediction.output[None], temperature)
        if prediction.network_input is not None:
            ab = self.propagate_hints(prediction.network_input, ab, prediction.hints)
        return merge(prediction.lightness, ab[0]).permute(1, 2, 0).cpu().numpy()


def _device_of(model: nn.Module) -> torch.device:
    """Where a module's tensors are (the CPU for one without any, such as an ONNX model's wrapper)."""
    return next(iter(model.buffers()), torch.empty(0)).device


def chw_view(image: np.ndarray) -> Tensor:
    """An (H, W, 3) array as a (3, H, W) tensor sharing its memory. Read-only arrays (``np.asarray`` of a
    PIL image) are fine: nothing here writes into its input, so PyTorch's warning about them is silenced
    rather than paid for with a copy of a possibly 50-megapixel photo."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(image).permute(2, 0, 1)


def _as_rgb(image) -> np.ndarray:
    """A PIL image or an (H, W) / (H, W, 3) uint8 array -> a contiguous (H, W, 3) uint8 array."""
    if isinstance(image, Image.Image):
        return to_rgba(image)[0]
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected a uint8 array of shape (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    return np.ascontiguousarray(np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array)


def colorize_images(
    model: LoadedModel | Colorizer,
    images: list[Tensor],
    size: int | None = None,
    temperature: float | None = None,
    hints: Sequence[Sequence[LocalHint]] | None = None,
    global_hints: Sequence[GlobalHint | None] | None = None,
) -> list[Tensor]:
    """``ColorizationPipeline.colorize_images`` for a model where it is (compare's and a study's example grids)."""
    return ColorizationPipeline(model, device=None).colorize_images(images, size, temperature, hints, global_hints)


def predict_full_ab(
    model: LoadedModel | Colorizer,
    lightness: list[Tensor],
    size: int | None = None,
    temperature: float | None = None,
    hints: Sequence[Sequence[LocalHint]] | None = None,
    global_hints: Sequence[GlobalHint | None] | None = None,
) -> list[Tensor]:
    """``ColorizationPipeline.predict_full_ab`` for a model where it is (``evaluate``)."""
    return ColorizationPipeline(model, device=None).predict_full_ab(lightness, size, temperature, hints, global_hints)
