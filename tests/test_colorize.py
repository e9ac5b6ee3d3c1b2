import io

import numpy as np
import pytest
import torch
from PIL import Image

import polychrome
from polychrome.cli import main
from polychrome.colorize import ColorizationPipeline, plan_outputs
from polychrome.color import uint8_to_lab
from polychrome.models import create_model


def tiny_pipeline():
    torch.manual_seed(0)
    return ColorizationPipeline(create_model("eccv16", width=0.125), input_size=16)


def lightness(rgb):
    return uint8_to_lab(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None])[0, 0]


def test_colorize_keeps_the_photos_own_lightness_at_full_resolution():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = tiny_pipeline().colorize(photo)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    assert (lightness(out) - lightness(photo)).abs().mean() < 1.5  # only gamut clipping and rounding change L
    gray = tiny_pipeline().colorize(photo[..., 0])
    assert gray.shape == (37, 53, 3)
    assert tiny_pipeline().colorize(Image.fromarray(photo)).shape == (37, 53, 3)
    with pytest.raises(ValueError, match="uint8 array"):
        tiny_pipeline().colorize(photo.astype(np.float32))


def test_predict_ab_and_the_api_entry_point():
    ab = tiny_pipeline().predict_ab(torch.rand(2, 1, 16, 16) * 100)
    assert ab.shape == (2, 2, 4, 4)
    pipeline = polychrome.load_colorizer("gray")
    assert pipeline.input_size == 256
    assert (pipeline.colorize(np.full((5, 5, 3), 100, np.uint8)) == 100).all()


@pytest.fixture
def odd_inputs(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 10), (200, 30, 30)).save(folder / "colour.png")
    Image.new("RGBA", (8, 8), (10, 200, 10, 128)).save(folder / "rgba.png")
    Image.new("LA", (8, 8), (90, 30)).save(folder / "sub" / "la.png")
    Image.fromarray(np.full((6, 6), 40000, np.uint16)).save(folder / "g16.png")
    Image.new("P", (6, 6), 3).save(folder / "palette.png")
    Image.new("CMYK", (6, 6), (0, 100, 100, 0)).save(folder / "cmyk.jpg")
    Image.new("L", (1, 1), 77).save(folder / "one.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (12, 4), (0, 0, 255)).save(folder / "rotated.jpg", exif=exif.tobytes())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (5, 6, 7)).save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[:150])
    return folder


def test_every_good_file_is_colourised_and_every_bad_one_named(odd_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["colorize", str(odd_inputs), "--out", str(out), "--model", "gray", "--quiet", "--batch-size", "3"])
    assert code == 1
    printed = capsys.readouterr().out
    for bad in ("empty.jpg", "text.jpg", "truncated.jpg"):
        assert bad in printed
    assert "colourised 8 of 11" in printed
    assert Image.open(out / "rgba.png").mode == "RGBA" and np.asarray(Image.open(out / "rgba.png"))[0, 0, 3] == 128
    assert Image.open(out / "sub" / "la.png").mode == "RGBA"  # alpha kept
    assert Image.open(out / "rotated.png").size == (4, 12)  # upright
    assert Image.open(out / "one.png").size == (1, 1)
    # Running again overwrites nothing unless asked.
    stamp = (out / "colour.png").stat().st_mtime_ns
    assert main(["colorize", str(odd_inputs / "colour.png"), "--out", str(out), "--model", "gray", "--quiet"]) == 1
    assert "exists" in capsys.readouterr().out and (out / "colour.png").stat().st_mtime_ns == stamp
    assert main(["colorize", str(odd_inputs / "colour.png"), "--out", str(out), "--model", "gray", "--quiet", "--overwrite"]) == 0


def test_outputs_never_land_inside_or_over_the_inputs(odd_inputs, tmp_path):
    with pytest.raises(ValueError, match="inside the input folder"):
        plan_outputs([str(odd_inputs)], odd_inputs / "results")
    jobs, problems = plan_outputs([str(odd_inputs / "*.png")], tmp_path / "out")
    assert {job.target.name for job in jobs} == {"colour.png", "rgba.png", "g16.png", "palette.png", "one.png"}
    _, problems = plan_outputs([str(odd_inputs / "colour.png")], odd_inputs)  # its output would be itself
    assert problems and "overwrite an input" in problems[0][1]
    _, missing = plan_outputs([str(tmp_path / "nothing-*.png")], tmp_path / "out")
    assert "no such file" in missing[0][1]
