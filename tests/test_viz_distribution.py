"""The "where is the model unsure" figure: entropy over bins, automatic pixel choice, and the PNG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polychrome.color import ab_gamut
from polychrome.color.bins import bin_entropy, entropy_quantile_pixels
from polychrome.viz import plot_pixel_distributions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _half_certain(q: int, h: int = 8, w: int = 10) -> torch.Tensor:
    """(Q, h, w): left half one-hot on bin 7, right half uniform, except one peaked-but-unsure cell."""
    p = torch.zeros(q, h, w)
    p[7, :, : w // 2] = 1.0
    p[:, :, w // 2 :] = 1.0 / q
    p[:, 2, 1] = 0.0  # a middling cell: mass split over two bins
    p[[3, 4], 2, 1] = 0.5
    return p


def test_entropy_is_zero_when_certain_and_log_q_when_uniform():
    q = 313
    entropy = bin_entropy(_half_certain(q)[None])
    assert entropy.shape == (1, 8, 10)
    assert torch.all(entropy[0, :, :5][torch.arange(8) != 2] == 0)
    assert torch.allclose(entropy[0, :, 5:], torch.full((8, 5), math.log(q)), atol=1e-4)
    assert entropy[0, 2, 1] == pytest.approx(math.log(2), abs=1e-6)


def test_entropy_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(N, Q, H, W\)"):
        bin_entropy(torch.full((313, 4, 4), 1 / 313))


def test_quantile_pixels_span_most_certain_to_most_uncertain():
    entropy = torch.randperm(15, generator=torch.Generator().manual_seed(0)).float().reshape(3, 5)
    chosen = entropy_quantile_pixels(entropy, count=3)
    assert [float(entropy[pixel]) for pixel in chosen] == [0.0, 7.0, 14.0]  # min, median, max
    assert entropy_quantile_pixels(torch.zeros(2, 3), count=1) == [(0, 0)]  # ties go to raster order
    with pytest.raises(ValueError, match="count"):
        entropy_quantile_pixels(entropy, count=0)


def test_default_pixels_include_the_most_uncertain(tmp_path):
    q = 313
    p = _half_certain(q)
    chosen = entropy_quantile_pixels(bin_entropy(p[None])[0])
    assert chosen[0][1] < 5 and chosen[-1][1] >= 5  # a certain cell first, an uncertain (uniform) one last
    assert bin_entropy(p[None])[0][chosen[-1]] == pytest.approx(math.log(q), abs=1e-4)


def _image(height: int = 32, width: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_figure_is_written_as_png_with_default_pixels(tmp_path):
    bins = ab_gamut("zhang")
    path = tmp_path / "unsure.png"
    plot_pixel_distributions(_image(), _half_certain(len(bins)), bins, path)
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["unsure.png"]  # the temporary file is gone


def test_figure_with_given_pixels_overwrites(tmp_path):
    bins = ab_gamut("zhang")
    path = tmp_path / "unsure.png"
    path.write_bytes(b"old")
    plot_pixel_distributions(_image(), _half_certain(len(bins)), bins, path, pixels=[(31, 39)], lightness=70)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rgb, p: (rgb, p[:300] / p[:300].sum(0)), "300 bins but the gamut has 313"),
        (lambda rgb, p: (rgb, p[:, 0]), r"\(Q, h, w\)"),
        (lambda rgb, p: (rgb[:4, :4], p), "larger than the image"),
        (lambda rgb, p: (rgb[..., 0], p), r"\(H, W, 3\)"),
        (lambda rgb, p: (rgb, torch.log(p + 1e-9)), "softmax"),
    ],
)
def test_figure_rejects_invalid_inputs(tmp_path, change, message):
    bins = ab_gamut("zhang")
    rgb, p = change(_image(), _half_certain(len(bins)))
    path = tmp_path / "unsure.png"
    with pytest.raises(ValueError, match=message):
        plot_pixel_distributions(rgb, p, bins, path)
    assert not path.exists()


def test_figure_rejects_pixels_outside_the_image(tmp_path):
    bins = ab_gamut("zhang")
    with pytest.raises(ValueError, match="outside"):
        plot_pixel_distributions(_image(), _half_certain(len(bins)), bins, tmp_path / "x.png", pixels=[(32, 0)])
    with pytest.raises(ValueError, match="at least one"):
        plot_pixel_distributions(_image(), _half_certain(len(bins)), bins, tmp_path / "x.png", pixels=[])
