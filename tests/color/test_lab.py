import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor

from polychrome.color import is_grayscale, lab_to_rgb, lab_to_uint8, rgb_to_lab, uint8_to_lab
from tests.conftest import shared


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage_on_random_colours(dtype):
    rgb = np.random.default_rng(0).random((64, 64, 3))
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].to(dtype))[0].permute(1, 2, 0).double().numpy()
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, skcolor.rgb2lab(rgb), atol=1e-3, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lab_to_rgb_matches_skimage_and_round_trips(dtype):
    rgb = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(dtype)
    lab = rgb_to_lab(rgb)
    assert lab.dtype == dtype
    back = lab_to_rgb(lab)
    assert (back - rgb).abs().max() < 1e-4
    expected = skcolor.lab2rgb(lab[0].permute(1, 2, 0).double().numpy())
    np.testing.assert_allclose(back[0].permute(1, 2, 0).double().numpy(), expected, atol=1e-3)


def test_conversion_matches_skimage_on_every_sample_photo():
    folder = shared("sample-photos")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    assert len(photos) >= 30
    for path in photos:
        rgb = np.array(Image.open(path).convert("RGB"))
        ours = uint8_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).double().numpy()
        reference = skcolor.rgb2lab(rgb)
        assert np.abs(ours - reference).max() < 1e-3, path.name
        assert (
            lab_to_uint8(torch.from_numpy(reference).permute(2, 0, 1)[None].float())[0]
            .permute(1, 2, 0)
            .numpy()
            .astype(int)
            - rgb
        ).__abs__().max() <= 1, path.name


def test_uint8_to_lab_rejects_float_and_rgb_to_lab_rejects_uint8():
    with pytest.raises(TypeError, match="uint8"):
        uint8_to_lab(torch.zeros(1, 3, 2, 2))
    with pytest.raises(TypeError, match="uint8_to_lab"):
        rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_is_grayscale_follows_zhangs_threshold_of_five():
    ab = torch.zeros(3, 2, 4, 4)
    ab[1, 0, 0, 0] = 5.0  # exactly 5: still gray
    ab[2, 1, 2, 2] = 5.01
    assert is_grayscale(ab).tolist() == [True, True, False]


def test_lightness_from_tables_equals_the_full_conversion():
    from polychrome.color import uint8_to_lightness

    images = torch.randint(0, 256, (2, 3, 64, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    images[0, :, :4] = 0  # black and the darkest levels, below the CIE threshold
    images[0, :, 4:8] = torch.arange(48, dtype=torch.uint8) // 8
    assert (uint8_to_lightness(images) - uint8_to_lab(images)[:, :1]).abs().max() < 1e-4
    with pytest.raises(TypeError, match="uint8"):
        uint8_to_lightness(images.float())


def test_lab_to_uint8_rounds_like_the_float_conversion_within_one_level():
    generator = torch.Generator().manual_seed(2)
    lab = torch.cat(
        [torch.rand(2, 1, 96, 96, generator=generator) * 100, torch.randn(2, 2, 96, 96, generator=generator) * 60],
        dim=1,
    )
    lab[0, :, 0, :3] = torch.tensor(
        [[0.0, 100.0, 50.0], [0.0, 0.0, -128.0], [0.0, 0.0, 127.0]]
    )  # black, white, far out of gamut
    reference = (lab_to_rgb(lab) * 255).round().to(torch.uint8)
    ours = lab_to_uint8(lab)
    assert ours.dtype == torch.uint8 and ours.shape == lab.shape
    difference = (ours.int() - reference.int()).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 0.01
    assert ours[0, :, 0, 0].tolist() == [0, 0, 0] and ours[0, :, 0, 1].tolist() == [255, 255, 255]


def test_lab_to_uint8_follows_cie_on_both_sides_of_the_cubes_knee():
    """Every L, a and b on a grid that crosses f = 6/29 in each channel (L below 8, a and b far out of gamut):
    within one level of the float64 conversion everywhere, the same level almost everywhere."""
    lightness, a, b = torch.meshgrid(
        torch.linspace(0, 100, 101), torch.linspace(-128, 127, 86), torch.linspace(-128, 127, 86), indexing="ij"
    )
    lab = torch.stack([lightness, a, b])[None].flatten(2)[..., None]  # (1, 3, N, 1)
    expected = (lab_to_rgb(lab.double()) * 255).round()
    ours = lab_to_uint8(lab).double()
    assert (ours - expected).abs().max() <= 1
    assert (ours != expected).double().mean() < 0.005
    dark = lab[0, 0, :, 0] < 8  # fy below the knee: the line, not the cube
    assert (ours[0, :, dark] != expected[0, :, dark]).double().mean() < 0.005
