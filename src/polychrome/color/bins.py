"""The quantised ab space: gamut bins, soft-encoding of ab into bins, and decoding back to ab.

Zhang et al. 2016 quantise ab on a grid of 10 Lab units and keep the Q = 313 cells they call in gamut
(their released ``pts_in_hull.npy``). That exact set cannot be derived from the sRGB gamut by any rule we
tried (see README, "The ab gamut"): the cells that 8-bit sRGB colours fall into are 261, all inside
Zhang's 313, and the cells reached as one of the 5 nearest bins of some sRGB colour are 322, a superset.
So two gamuts are offered:

- ``"zhang"`` (default): Zhang's 313 bins, listed below as one b-range per a, in the released order
  (a ascending, then b). Needed to load the official weights, whose 313 outputs follow this order.
- ``"srgb"``: computed from first principles: every 8-bit sRGB colour (256^3) is converted to Lab and
  assigned to its nearest grid-10 cell centre; the cells hit are the gamut (261 bins). Deterministic,
  cached on disk under ``polychrome.settings.cache_dir()``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from polychrome.color.lab import check_planes, rgb_to_lab
from polychrome.files import atomic_path
from polychrome.settings import cache_dir

DEFAULT_TEMPERATURE = 0.38  # Zhang et al. 2016's annealed mean

GRID = 10
GAMUTS = ("zhang", "srgb")

# Zhang et al.'s 313 bins as (a, first b, last b), b in steps of GRID.
_ZHANG_ROWS = (
    (-90, 50, 90),
    (-80, 20, 90),
    (-70, 0, 90),
    (-60, -20, 90),
    (-50, -30, 100),
    (-40, -40, 100),
    (-30, -50, 100),
    (-20, -50, 100),
    (-10, -60, 100),
    (0, -70, 100),
    (10, -80, 90),
    (20, -80, 90),
    (30, -90, 90),
    (40, -100, 90),
    (50, -100, 80),
    (60, -110, 80),
    (70, -110, 80),
    (80, -110, 70),
    (90, -110, 70),
    (100, -90, 0),
)


def _zhang_bins() -> np.ndarray:
    return np.array([(a, b) for a, first, last in _ZHANG_ROWS for b in range(first, last + 1, GRID)], dtype=np.float32)


def _srgb_bins() -> np.ndarray:
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    hit = torch.zeros(64, 64, dtype=torch.bool)  # grid nodes -320..310, far wider than any sRGB ab
    for red in levels:  # one slab of 65,536 colours at a time keeps memory small
        g, b = torch.meshgrid(levels, levels, indexing="ij")
        rgb = torch.stack([torch.full_like(g, float(red)), g, b])[None]
        node = torch.round(rgb_to_lab(rgb)[0, 1:] / GRID).to(torch.int64) + 32
        hit[node[0].flatten(), node[1].flatten()] = True
    a, b = hit.nonzero(as_tuple=True)  # row-major: a ascending, then b
    return (torch.stack([a, b], dim=1) - 32).mul(GRID).numpy().astype(np.float32)


@functools.cache
def _gamut_array(name: str) -> np.ndarray:
    if name == "zhang":
        return _zhang_bins()
    if name == "srgb":
        path = cache_dir() / f"gamut-srgb-grid{GRID}.npy"
        if path.exists():
            return np.load(path)
        bins = _srgb_bins()
        with atomic_path(path) as temporary, open(temporary, "wb") as file:
            np.save(file, bins)
        return bins
    raise ValueError(f"unknown gamut {name!r}; choose one of {', '.join(GAMUTS)}")


def ab_gamut(name: str = "zhang", device: torch.device | str | None = None) -> Tensor:
    """The bin centres of a gamut as a (Q, 2) float32 tensor of (a, b)."""
    return torch.from_numpy(_gamut_array(name).copy()).to(device)


@dataclass(frozen=True)
class SoftEncoding:
    """Sparse soft-encoding: ``weight[n, j, h, w]`` of bin ``index[n, j, h, w]``, j < k; weights sum to 1."""

    index: Tensor  # (N, k, H, W) int64
    weight: Tensor  # (N, k, H, W) float

    def to_dense(self, num_bins: int) -> Tensor:
        """The distribution as a dense (N, Q, H, W) tensor."""
        n, _, h, w = self.index.shape
        dense = self.weight.new_zeros(n, num_bins, h, w)
        return dense.scatter_(1, self.index, self.weight)


def _pixels(ab: Tensor, function: str) -> Tensor:
    check_planes(ab, function, "ab", 2)
    return ab.permute(0, 2, 3, 1).reshape(-1, 2)


def _check_bins(bins: Tensor, function: str) -> None:
    """Bin centres must be (Q, 2), as ``ab_gamut`` gives them."""
    if not isinstance(bins, Tensor) or bins.dim() != 2 or bins.shape[1] != 2 or len(bins) == 0:
        shape = tuple(bins.shape) if isinstance(bins, Tensor) else type(bins).__name__
        raise ValueError(f"{function} expects bins of shape (Q, 2) (ab_gamut's (a, b) centres), got {shape}")


def _check_distribution(q: Tensor, bins: Tensor, function: str) -> None:
    """q must be (N, Q, H, W) over the Q bins."""
    _check_bins(bins, function)
    check_planes(q, function, f"a distribution over the {len(bins)} bins", len(bins))


def _unpixels(values: Tensor, like: Tensor) -> Tensor:
    n, _, h, w = like.shape
    return values.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def _nearest(pixels: Tensor, bins: Tensor, k: int, chunk: int) -> tuple[Tensor, Tensor]:
    """Distances and indices of the k nearest bins, in chunks so memory stays at chunk x Q floats."""
    dist, index = [], []
    for part in pixels.split(chunk):
        d = torch.cdist(part, bins.to(part.dtype))
        d_k, i_k = d.topk(k, dim=1, largest=False)
        dist.append(d_k)
        index.append(i_k)
    return torch.cat(dist), torch.cat(index)


def encode_soft(ab: Tensor, bins: Tensor, k: int = 5, sigma: float = 5.0, chunk: int = 65536) -> SoftEncoding:
    """Soft-encode ab over its k nearest bins with Gaussian weights (Zhang et al. 2016: k=5, sigma=5).

    ab: (N, 2, H, W) in Lab units; bins: (Q, 2). Returns the sparse encoding; ``.to_dense(Q)`` gives
    the (N, Q, H, W) distribution. Memory is bounded by ``chunk`` x Q distances at a time.
    """
    _check_bins(bins, "encode_soft")
    if not 1 <= k <= bins.shape[0]:
        raise ValueError(f"k must be between 1 and the number of bins ({bins.shape[0]}), got {k}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    dist, index = _nearest(_pixels(ab, "encode_soft"), bins, k, chunk)
    # Subtracting the nearest distance before exponentiating keeps far-off pixels from underflowing to 0/0.
    logits = -(dist**2 - dist[:, :1] ** 2) / (2 * sigma**2)
    weight = torch.softmax(logits, dim=1)
    return SoftEncoding(_unpixels(index, ab), _unpixels(weight, ab))


def encode_hard(ab: Tensor, bins: Tensor) -> Tensor:
    """Index of the nearest bin for each pixel: ab (N, 2, H, W) -> (N, H, W) int64.

    Bins lie on the grid, so the nearest grid node (rounding) is the nearest bin whenever that node is a
    bin; only pixels whose nearest node lies outside the gamut need a search over all bins.
    """
    _check_bins(bins, "encode_hard")
    pixels = _pixels(ab, "encode_hard")
    lookup, lowest = _grid_lookup(bins.to(pixels.device))
    node = torch.round(pixels / GRID).to(torch.int64) - lowest
    size = torch.tensor(lookup.shape, device=node.device)
    inside = ((node >= 0) & (node < size)).all(dim=1)
    index = torch.full((pixels.shape[0],), -1, dtype=torch.int64, device=pixels.device)
    index[inside] = lookup[node[inside, 0], node[inside, 1]]
    missing = index < 0
    if missing.any():
        index[missing] = _nearest(pixels[missing], bins, 1, 65536)[1][:, 0]
    return _unpixels(index[:, None], ab)[:, 0]


def _grid_lookup(bins: Tensor) -> tuple[Tensor, Tensor]:
    """A table from grid node (a/GRID, b/GRID), offset by the lowest node, to bin index (-1 = not a bin)."""
    nodes = torch.round(bins / GRID).to(torch.int64)
    if not torch.allclose(nodes.to(bins.dtype) * GRID, bins):
        raise ValueError("encode_hard needs bin centres on the grid of 10 Lab units")
    lowest = nodes.amin(dim=0)
    nodes = nodes - lowest
    shape = (nodes.amax(dim=0) + 1).tolist()
    lookup = torch.full(shape, -1, dtype=torch.int64, device=bins.device)
    lookup[nodes[:, 0], nodes[:, 1]] = torch.arange(len(bins), device=bins.device)
    return lookup, lowest


def decode_annealed_mean(
    q: Tensor, bins: Tensor, temperature: float = DEFAULT_TEMPERATURE, from_logits: bool = False
) -> Tensor:
    """Zhang et al.'s annealed mean: the mean of q re-normalised as q^(1/T).

    q: (N, Q, H, W) probabilities (or logits with ``from_logits=True``); bins: (Q, 2).
    T=1 gives the mean, T->0 the mode (T=0 is the mode exactly). Returns ab (N, 2, H, W).
    """
    _check_distribution(q, bins, "decode_annealed_mean")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return decode_mode(q, bins)
    log_q = q if from_logits else torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))
    annealed = torch.softmax(log_q / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", annealed, bins.to(annealed))


def decode_mode(q: Tensor, bins: Tensor) -> Tensor:
    """The centre of the most probable bin: q (N, Q, H, W) -> ab (N, 2, H, W)."""
    _check_distribution(q, bins, "decode_mode")
    index = q.argmax(dim=1)
    return bins.to(q.device, torch.float32 if not q.is_floating_point() else q.dtype)[index].permute(0, 3, 1, 2)


def bin_entropy(probabilities: Tensor) -> Tensor:
    """Shannon entropy in nats of a distribution over bins: (N, Q, H, W) -> (N, H, W).

    0 for a one-hot pixel, ln Q for a uniform one. Zero probabilities contribute 0 (0 log 0 = 0).
    """
    if probabilities.dim() != 4:
        raise ValueError(f"expected probabilities of shape (N, Q, H, W), got {tuple(probabilities.shape)}")
    return -torch.special.xlogy(probabilities, probabilities).sum(dim=1)


def entropy_quantile_pixels(entropy: Tensor, count: int = 3) -> list[tuple[int, int]]:
    """``count`` pixels (row, col) of an (H, W) entropy map at evenly spaced entropy quantiles.

    The first is the most certain pixel, the last the most uncertain, the others (for count 3: the median)
    in between. Quantiles rather than fixed positions because they show the whole range of the model's
    confidence in this image, whatever its content; a fixed grid can land on three patches of sky.
    Ties go to the earlier pixel in raster order.
    """
    if entropy.dim() != 2 or entropy.numel() == 0:
        raise ValueError(f"expected a non-empty (H, W) entropy map, got {tuple(entropy.shape)}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    order = torch.sort(entropy.flatten().float().cpu(), stable=True).indices
    ranks = torch.linspace(0, len(order) - 1, count).round().long()
    width = entropy.shape[1]
    return [divmod(int(order[rank]), width) for rank in ranks]
