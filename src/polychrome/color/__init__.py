"""Colour science: Lab conversion, the quantised ab gamut, soft-encoding and class rebalancing."""

from polychrome.color.bins import (
    DEFAULT_TEMPERATURE,
    GAMUTS,
    SoftEncoding,
    ab_gamut,
    bin_entropy,
    decode_annealed_mean,
    decode_mode,
    encode_hard,
    encode_soft,
)
from polychrome.color.lab import (
    is_grayscale,
    lab_to_rgb,
    lab_to_uint8,
    lightness_ab_to_uint8,
    rgb_to_lab,
    uint8_to_lab,
    uint8_to_lightness,
)
from polychrome.color.prior import accumulate_bin_counts, rebalancing_weights, smooth_prior

__all__ = [
    "DEFAULT_TEMPERATURE",
    "GAMUTS",
    "SoftEncoding",
    "ab_gamut",
    "accumulate_bin_counts",
    "bin_entropy",
    "decode_annealed_mean",
    "decode_mode",
    "encode_hard",
    "encode_soft",
    "is_grayscale",
    "lab_to_rgb",
    "lab_to_uint8",
    "lightness_ab_to_uint8",
    "rebalancing_weights",
    "rgb_to_lab",
    "smooth_prior",
    "uint8_to_lab",
    "uint8_to_lightness",
]
