import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polychrome.color import (
    ab_gamut,
    decode_annealed_mean,
    decode_mode,
    encode_hard,
    encode_soft,
    rgb_to_lab,
)

BINS = ab_gamut("zhang")


def test_zhang_gamut_is_the_313_bins_in_released_order():
    assert BINS.shape == (313, 2)
    assert BINS[:, 0].min() == -90 and BINS[:, 0].max() == 100
    assert BINS[:, 1].min() == -110 and BINS[:, 1].max() == 100
    # The first and last entries of Zhang et al.'s pts_in_hull.npy.
    assert BINS[:6].tolist() == [[-90, 50], [-90, 60], [-90, 70], [-90, 80], [-90, 90], [-80, 20]]
    assert BINS[-3:].tolist() == [[100, -20], [100, -10], [100, 0]]
    assert len({tuple(b) for b in BINS.tolist()}) == 313
    order = np.lexsort((BINS[:, 1].numpy(), BINS[:, 0].numpy()))
    assert (order == np.arange(313)).all()


def test_srgb_gamut_from_first_principles_is_consistent_with_zhangs():
    srgb = ab_gamut("srgb")
    assert srgb.shape == (261, 2)
    assert (srgb % 10 == 0).all()
    zhang = {tuple(b) for b in BINS.tolist()}
    # Every cell an 8-bit sRGB colour falls into is one of Zhang's bins ...
    assert {tuple(b) for b in srgb.tolist()} <= zhang
    # ... and every one of Zhang's bins is among the 5 nearest bins of some sRGB colour.
    levels = torch.linspace(0, 1, 101, dtype=torch.float64)
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    ab = rgb_to_lab(torch.stack([r, g, b]).reshape(1, 3, 101 * 101, 101))[:, 1:]
    reached = encode_soft(ab.float(), BINS, k=5).index.unique()
    assert len(reached) == 313


def test_unknown_gamut_names_the_choices():
    with pytest.raises(ValueError, match="zhang, srgb"):
        ab_gamut("adobe")


def test_soft_encoding_picks_the_k_nearest_with_gaussian_weights():
    ab = torch.tensor([3.0, -4.0]).reshape(1, 2, 1, 1)
    enc = encode_soft(ab, BINS, k=5, sigma=5.0)
    centres = BINS[enc.index[0, :, 0, 0]]
    dist = (centres - torch.tensor([3.0, -4.0])).norm(dim=1)
    assert centres[0].tolist() == [0.0, 0.0]
    all_dist = (BINS - torch.tensor([3.0, -4.0])).norm(dim=1)
    assert torch.allclose(dist.sort().values, all_dist.sort().values[:5])
    expected = torch.exp(-(dist**2) / 50)
    assert torch.allclose(enc.weight[0, :, 0, 0], expected / expected.sum(), atol=1e-6)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_dense_encoding_is_a_distribution(k):
    ab = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * 50
    dense = encode_soft(ab, BINS, k=k).to_dense(len(BINS))
    assert dense.shape == (2, 313, 8, 8)
    assert torch.allclose(dense.sum(1), torch.ones(2, 8, 8), atol=1e-6)
    assert ((dense > 0).sum(1) == k).all()


def test_soft_encoding_of_far_out_of_gamut_pixels_does_not_underflow():
    ab = torch.tensor([[[[500.0]], [[-500.0]]]])
    weight = encode_soft(ab, BINS).weight
    assert torch.isfinite(weight).all() and torch.allclose(weight.sum(1), torch.ones(1, 1, 1))


def test_soft_encoding_chunks_give_the_same_answer():
    ab = torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(2)) * 40
    whole, parts = encode_soft(ab, BINS), encode_soft(ab, BINS, chunk=7)
    assert torch.equal(whole.index, parts.index)
    # torch.cdist takes its matrix-product path (|x|^2 + |c|^2 - 2 x.c) for large chunks and the direct one for
    # small, so the squared distances may differ by a few float32 epsilons of |x|^2 + |c|^2; the logits divide
    # that by 2 sigma^2, and a softmax moves by at most twice its largest logit change.
    squared = ab.square().sum(1).max() + BINS.square().sum(1).max()
    tolerance = 2 * 4 * torch.finfo(torch.float32).eps * squared / (2 * 5.0**2)
    assert (whole.weight - parts.weight).abs().max() <= tolerance


def test_soft_encoding_a_256px_batch_stays_within_memory():
    ab = torch.rand(4, 2, 256, 256) * 200 - 100
    enc = encode_soft(ab, BINS)
    assert enc.index.shape == (4, 5, 256, 256)


def test_encode_hard_agrees_with_the_nearest_centre():
    ab = torch.rand(2, 2, 32, 32, generator=torch.Generator().manual_seed(3)) * 260 - 130
    index = encode_hard(ab, BINS)
    pixels = ab.permute(0, 2, 3, 1).reshape(-1, 2).double()
    exact = ((pixels[:, None] - BINS.double()[None]) ** 2).sum(-1).argmin(1).reshape(2, 32, 32)
    assert (index == exact).float().mean() > 0.999  # float ties aside


# No subnormals: colourising sets torch.set_flush_denormal(True) for speed, process-wide, and hypothesis
# refuses to draw subnormal floats once they flush to zero, whatever order the tests run in.
ab_points = st.tuples(st.floats(-85, 95, allow_subnormal=False), st.floats(-105, 95, allow_subnormal=False))


@settings(max_examples=60, deadline=None)
@given(ab_points)
def test_encode_then_decode_at_t1_lands_near_the_colour(point):
    ab = torch.tensor(point, dtype=torch.float32).reshape(1, 2, 1, 1)
    nearest = (BINS - ab.flatten()).norm(dim=1).min()
    decoded = decode_annealed_mean(encode_soft(ab, BINS).to_dense(313), BINS, temperature=1.0)
    # The mean of the 5 nearest centres is within one grid cell of the colour, plus the distance to the gamut.
    assert (decoded.flatten() - ab.flatten()).norm() <= 10.0 + nearest


@settings(max_examples=60, deadline=None)
@given(ab_points)
def test_decode_mode_returns_the_nearest_bin(point):
    ab = torch.tensor(point, dtype=torch.float32).reshape(1, 2, 1, 1)
    q = encode_soft(ab, BINS).to_dense(313)
    distances = (BINS - ab.flatten()).norm(dim=1)
    mode = decode_mode(q, BINS).flatten()
    assert mode.tolist() in BINS.tolist()
    assert (mode - ab.flatten()).norm() <= distances.min() + 1e-3  # a nearest bin (ties either way)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_annealed_mean_between_mean_and_mode(seed):
    logits = torch.randn(1, 313, 1, 1, generator=torch.Generator().manual_seed(seed)) * 3
    logits[0, logits.argmax()] += 1.0  # a unique mode, so T -> 0 has one answer
    q = logits.softmax(1)
    mean = (q[0, :, 0, 0, None] * BINS).sum(0)
    assert torch.allclose(decode_annealed_mean(q, BINS, 1.0).flatten(), mean, atol=1e-3)
    assert torch.allclose(decode_annealed_mean(logits, BINS, 1.0, from_logits=True).flatten(), mean, atol=1e-3)
    mode = decode_mode(q, BINS).flatten()
    assert torch.equal(decode_annealed_mean(q, BINS, 0.0).flatten(), mode)
    assert torch.allclose(decode_annealed_mean(q, BINS, 1e-3).flatten(), mode, atol=1e-2)


def test_annealed_mean_default_temperature_is_zhangs():
    import inspect

    assert inspect.signature(decode_annealed_mean).parameters["temperature"].default == 0.38


def test_decoding_rejects_negative_temperature():
    with pytest.raises(ValueError, match="temperature"):
        decode_annealed_mean(torch.ones(1, 313, 1, 1) / 313, BINS, -1.0)


def test_float64_and_device_follow_the_input():
    ab = torch.randn(1, 2, 4, 4, dtype=torch.float64) * 30
    enc = encode_soft(ab, BINS)
    assert enc.weight.dtype == torch.float64
    assert decode_annealed_mean(enc.to_dense(313), BINS).dtype == torch.float64
    assert math.isclose(float(enc.weight.sum()), 16.0, rel_tol=1e-9)
