import io

import numpy as np
import pytest
from PIL import Image

from polychrome.data import ImageReadError, load_rgb, to_rgb, write_png


def save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    "mode, fmt",
    [
        ("RGB", "PNG"),
        ("RGB", "JPEG"),
        ("L", "PNG"),
        ("1", "PNG"),
        ("P", "PNG"),
        ("CMYK", "JPEG"),
        ("CMYK", "TIFF"),
        ("RGB", "BMP"),
        ("RGB", "WEBP"),
        ("L", "TIFF"),
        ("I", "TIFF"),
        ("I;16", "PNG"),
        ("F", "TIFF"),
        ("LA", "PNG"),
        ("RGBA", "WEBP"),
    ],
)
def test_every_mode_becomes_uint8_rgb(tmp_path, mode, fmt):
    image = Image.new(mode, (7, 5))
    path = save(tmp_path, f"x.{fmt.lower()}", image, format=fmt)
    rgb = load_rgb(path)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = save(tmp_path, "g16.png", Image.fromarray(values))
    assert Image.open(path).mode.startswith("I")
    assert load_rgb(path)[0, :, 0].tolist() == [0, 100, 255]


def test_transparency_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (255, 0, 0, 0))
    rgb = load_rgb(save(tmp_path, "a.png", rgba))
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    la = Image.new("LA", (1, 1), (0, 0))
    assert load_rgb(save(tmp_path, "la.png", la))[0, 0].tolist() == [255, 255, 255]
    palette = Image.new("P", (1, 1), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.info["transparency"] = 0
    assert load_rgb(save(tmp_path, "p.png", palette, transparency=0))[0, 0].tolist() == [255, 255, 255]


def test_palette_without_transparency_keeps_its_colour(tmp_path):
    palette = Image.new("P", (1, 1), 0)
    palette.putpalette([10, 200, 30] + [0] * 765)
    assert load_rgb(save(tmp_path, "p.png", palette))[0, 0].tolist() == [10, 200, 30]


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (4, 2), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = save(tmp_path, "rot.jpg", image, exif=exif.tobytes())
    assert load_rgb(path).shape == (4, 2, 3)


# In words a person reads, with the formats to save it as: not "not an image format Pillow can read".
NOT_AN_IMAGE = r"not an image file polychrome can read \(it reads PNG, JPEG, WebP, TIFF, BMP, GIF and other"


@pytest.mark.parametrize(
    "content, reason",
    [(b"", NOT_AN_IMAGE), (b"hello, not a picture", NOT_AN_IMAGE), (None, "cannot decode")],
)
def test_unreadable_files_raise_an_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is None:  # a JPEG cut off half-way
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="JPEG")
        content = buffer.getvalue()[:200]
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as error:
        load_rgb(path)
    assert error.value.path == str(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_rgb(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory"):
        load_rgb(tmp_path)


def test_huge_images_are_refused_before_decoding(tmp_path):
    path = save(tmp_path, "big.png", Image.new("L", (300, 200)))
    with pytest.raises(ImageReadError, match="above the limit"):
        load_rgb(path, max_pixels=50_000)
    assert load_rgb(path, max_pixels=60_000).shape == (200, 300, 3)


def test_zero_size_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match="zero size"):
        to_rgb(Image.new("RGB", (0, 0)))
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:20] = (0).to_bytes(4, "big")  # IHDR width = 0
    path = tmp_path / "zero.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError):
        load_rgb(path)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (257, 130)])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_write_png_reads_back_exactly(shape, with_alpha, monkeypatch):
    import polychrome.data.images as images

    monkeypatch.setattr(images, "PNG_STRIPE_BYTES", 1000)  # several stripes (IDAT chunks) on the larger image
    generator = np.random.default_rng(0)
    rgb = generator.integers(0, 256, (*shape, 3), dtype=np.uint8)
    rgb[: shape[0] // 2] = 17  # flat rows, where the run-length strategy matters
    alpha = generator.integers(0, 256, shape, dtype=np.uint8) if with_alpha else None
    buffer = io.BytesIO()
    write_png(buffer, rgb, alpha)
    back = Image.open(io.BytesIO(buffer.getvalue()))
    back.load()  # checks every chunk's CRC and the zlib stream
    assert back.mode == ("RGBA" if with_alpha else "RGB")
    expected = np.dstack([rgb, alpha]) if with_alpha else rgb
    assert np.array_equal(np.asarray(back), expected)


def test_write_png_refuses_what_it_cannot_write():
    for bad in (np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 2), np.uint8)):
        with pytest.raises(ValueError, match="uint8 RGB"):
            write_png(io.BytesIO(), bad)
