import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polychrome.color import ab_gamut, accumulate_bin_counts, rebalancing_weights, smooth_prior

BINS = ab_gamut("zhang")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.99), st.floats(0.01, 1.0))
def test_weights_have_unit_expectation_under_the_prior(seed, empty_fraction, mix):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.rand(313, generator=generator, dtype=torch.float64) ** 8 * 1e6  # heavy-tailed, like real priors
    counts[torch.rand(313, generator=generator) < empty_fraction] = 0
    counts[seed % 313] += 1  # at least one colour pixel
    prior = smooth_prior(counts, BINS)
    assert torch.isclose(prior.sum(), torch.tensor(1.0, dtype=torch.float64))
    weights = rebalancing_weights(prior, mix)
    assert torch.isclose((prior * weights).sum(), torch.tensor(1.0, dtype=torch.float64))
    assert (weights > 0).all()
    # Rarer colours weigh more.
    order = prior.argsort()
    assert (weights[order].diff() <= 1e-9).all()


def test_uniform_mix_of_one_gives_equal_weights():
    prior = smooth_prior(torch.rand(313, dtype=torch.float64) + 0.1, BINS)
    weights = rebalancing_weights(prior, 1.0)
    assert torch.allclose(weights, torch.ones(313, dtype=torch.float64))


def test_smoothing_spreads_a_single_bin_to_its_neighbours_and_keeps_mass():
    counts = torch.zeros(313, dtype=torch.float64)
    centre = ((torch.tensor([0.0, 0.0]) == BINS).all(1)).nonzero().item()
    counts[centre] = 100
    prior = smooth_prior(counts, BINS, sigma=5.0)
    assert torch.isclose(prior.sum(), torch.tensor(1.0, dtype=torch.float64))
    right = ((torch.tensor([10.0, 0.0]) == BINS).all(1)).nonzero().item()
    # Gaussian sigma 5 on a grid of 10: a neighbour gets exp(-100 / 50) of the centre's share.
    assert torch.isclose(prior[right] / prior[centre], torch.exp(torch.tensor(-2.0, dtype=torch.float64)))
    assert torch.equal(smooth_prior(counts, BINS, sigma=0), counts / 100)


def test_empty_histogram_and_bad_mix_are_refused():
    with pytest.raises(ValueError, match="no colour pixels"):
        smooth_prior(torch.zeros(313), BINS)
    with pytest.raises(ValueError, match="lambda"):
        rebalancing_weights(torch.ones(313) / 313, 1.5)


def test_bin_counts_skip_grayscale_images_and_count_every_colour_pixel():
    red = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 200
    gray = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
    counted = accumulate_bin_counts([(torch.cat([red, gray]), torch.zeros(3))], BINS)
    assert counted.images == 3 and counted.grayscale == 1
    assert counted.counts.sum() == 2 * 16
    assert counted.counts.count_nonzero() == 1
