"""A tensor of the wrong shape fails in one line naming the function, the shape it expects and the one it got,
not deep inside an einsum or an index (which is what lab_to_uint8 of a (3, H, W) image used to say)."""

import re

import numpy as np
import pytest
import torch

from polychrome.color import (
    ab_gamut,
    decode_annealed_mean,
    decode_mode,
    encode_hard,
    encode_soft,
    is_grayscale,
    lab_to_rgb,
    lab_to_uint8,
    rebalancing_weights,
    rgb_to_lab,
    smooth_prior,
    uint8_to_lab,
    uint8_to_lightness,
)

BINS = ab_gamut()
ONE_IMAGE = "; for one image (3, H, W) pass image[None]"


def uint8(*shape):
    return torch.zeros(shape, dtype=torch.uint8)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lab_to_uint8(torch.rand(3, 4, 5)), "lab_to_uint8 expects Lab of shape (N, 3, H, W), got (3, 4, 5)"),
        (
            lambda: lab_to_uint8(torch.rand(1, 2, 4, 5)),
            "lab_to_uint8 expects Lab of shape (N, 3, H, W), got (1, 2, 4, 5)",
        ),
        (
            lambda: uint8_to_lightness(uint8(3, 4, 5)),
            "uint8_to_lightness expects uint8 RGB of shape (N, 3, H, W), got (3, 4, 5)",
        ),
        (lambda: uint8_to_lab(uint8(4, 5, 3)), "uint8_to_lab expects uint8 RGB of shape (..., 3, H, W), got (4, 5, 3)"),
        (lambda: rgb_to_lab(torch.rand(4, 5)), "rgb_to_lab expects RGB of shape (..., 3, H, W), got (4, 5)"),
        (
            lambda: lab_to_rgb(torch.rand(2, 4, 4, 3)),
            "lab_to_rgb expects Lab of shape (..., 3, H, W), got (2, 4, 4, 3)",
        ),
        (lambda: is_grayscale(torch.rand(2, 4, 4)), "is_grayscale expects ab of shape (N, 2, H, W), got (2, 4, 4)"),
        (lambda: encode_soft(torch.rand(2, 4, 4), BINS), "encode_soft expects ab of shape (N, 2, H, W), got (2, 4, 4)"),
        (
            lambda: encode_hard(torch.rand(1, 3, 4, 4), BINS),
            "encode_hard expects ab of shape (N, 2, H, W), got (1, 3, 4, 4)",
        ),
        (lambda: encode_hard(torch.rand(1, 2, 4, 4), BINS.T), "encode_hard expects bins of shape (Q, 2)"),
        (
            lambda: decode_annealed_mean(torch.rand(1, 300, 4, 4), BINS),
            "decode_annealed_mean expects a distribution over the 313 bins of shape (N, 313, H, W), got (1, 300, 4, 4)",
        ),
        (
            lambda: decode_mode(torch.rand(313, 4, 4), BINS),
            "decode_mode expects a distribution over the 313 bins of shape (N, 313, H, W), got (313, 4, 4)",
        ),
        (
            lambda: smooth_prior(torch.ones(300), BINS),
            "smooth_prior expects counts (Q,) and bins (Q, 2) of the same Q, got (300,) and (313, 2)",
        ),
        (lambda: rebalancing_weights(torch.ones(1, 313) / 313), "rebalancing_weights expects a prior of shape (Q,)"),
    ],
)
def test_a_wrong_shape_is_named_with_the_expected_one(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_one_image_given_to_a_batched_function_is_told_to_add_the_batch_dimension():
    with pytest.raises(ValueError, match=re.escape(ONE_IMAGE)):
        lab_to_uint8(torch.rand(3, 4, 5))
    with pytest.raises(ValueError, match=re.escape(ONE_IMAGE)):
        uint8_to_lightness(uint8(3, 4, 5))
    assert lab_to_uint8(torch.rand(3, 4, 5)[None]).shape == (1, 3, 4, 5)  # what the message says works


def test_an_array_instead_of_a_tensor_is_named():
    with pytest.raises(TypeError, match=r"uint8_to_lab expects uint8 RGB as a torch.Tensor .*, got ndarray"):
        uint8_to_lab(np.zeros((1, 3, 4, 4), np.uint8))


def test_any_leading_dimensions_still_convert():
    """rgb_to_lab, lab_to_rgb and uint8_to_lab take (..., 3, H, W), as kornia does."""
    rgb = torch.rand(2, 3, 3, 4, 5)
    assert rgb_to_lab(rgb).shape == rgb.shape and lab_to_rgb(rgb_to_lab(rgb[0, 0])).shape == (3, 4, 5)
    assert uint8_to_lab(uint8(3, 4, 5)).shape == (3, 4, 5)
