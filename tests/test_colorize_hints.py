"""`polychrome colorize --hints/--reference` and colorize_paths with hint files: Levin (full resolution, photo by
photo) keeps each hint's colour exactly; a hint-taking network gets each photo's hint planes in its batch entry;
a bad hint file fails its photo alone, in one line naming the file and the entry."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from polychrome.cli import main
from polychrome.color import lab_to_uint8, uint8_to_lab
from polychrome.colorize import attach_hints, colorize_paths, load_colorizer, plan_outputs
from polychrome.hints import LocalHint
from polychrome.models import build_model, save_weights

RED, BLUE = (190, 60, 50), (60, 90, 170)
HINTS = [{"x": 5, "y": 5, "rgb": list(RED)}, {"x": 60, "y": 40, "rgb": list(BLUE)}]


def gray_photo(height=48, width=64) -> np.ndarray:
    """The gray version (ab = 0, L kept) of a photo red on the left and blue on the right, so a hint of the
    true colour is inside the sRGB gamut at the photo's L and comes back as it was given."""
    colour = np.empty((height, width, 3), np.uint8)
    colour[:, : width // 2], colour[:, width // 2 :] = RED, BLUE
    lab = uint8_to_lab(torch.from_numpy(colour).permute(2, 0, 1)[None])
    lab[:, 1:] = 0
    return lab_to_uint8(lab)[0].permute(1, 2, 0).numpy()


def ab_at(path, x: int, y: int) -> torch.Tensor:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return uint8_to_lab(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None])[0, 1:, y, x]


def hint_ab(entry: dict) -> torch.Tensor:
    return torch.tensor(LocalHint.from_rgb(entry["x"], entry["y"], entry["rgb"]).ab)


def save(path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return str(path)


def write_json(path, document) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


@pytest.fixture
def tiny_guided(tmp_path):
    """An untrained U-Net that takes local and global hints, as a weights file (the batched path)."""
    torch.manual_seed(0)
    model = build_model("unet_guided", channels=(4, 8, 16), head="regression").with_card(input_size=32)
    with torch.no_grad():  # untrained, hints move its colours by a fraction of a level: make them count
        model.network.down[0][0].weight[:, 1:] *= 30  # the first convolution's ab-hint and mask channels
        model.network.global_injection.project[2].weight *= 300
    return str(save_weights(model, tmp_path / "guided.safetensors"))


def test_a_hint_file_steers_levin_and_the_written_photo_has_each_hints_colour(tmp_path, capsys):
    photo = save(tmp_path / "photo.png", gray_photo())
    hints = write_json(tmp_path / "photo.json", HINTS)
    out = tmp_path / "out"
    assert main(["colorize", photo, "--hints", hints, "--model", "levin", "--out", str(out), "--quiet"]) == 0
    assert "colourised 1 of 1" in capsys.readouterr().out
    for entry in HINTS:
        # Levin keeps a hint's ab at its pixel; only the PNG's rounding to 8 bits moves it.
        assert torch.allclose(ab_at(out / "photo.png", entry["x"], entry["y"]), hint_ab(entry), atol=1.5)


def test_a_folder_takes_each_photos_own_hint_file_and_a_bad_one_fails_that_photo_alone(tmp_path, capsys):
    photos, hint_folder, out = tmp_path / "photos", tmp_path / "hints", tmp_path / "out"
    for name in ("a/one.png", "two.png", "three.png"):
        save(photos / name, gray_photo())
    write_json(hint_folder / "a" / "one.json", HINTS)  # photos/a/one.png -> hints/a/one.json
    write_json(hint_folder / "two.json", '[{"x": 5, "y": 5, "rgb": [1, 2, 3]}')  # the closing bracket lost
    code = main(["colorize", str(photos), "--hints", str(hint_folder), "--model", "levin", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1 and "colourised 2 of 3" in printed
    (failure,) = [line for line in printed.splitlines() if "failed" in line]
    assert str(photos / "two.png") in failure and str(hint_folder / "two.json") in failure
    assert "not valid JSON" in failure and "line 1 column" in failure
    assert not (out / "two.png").exists()
    assert f"without hints: {photos / 'three.png'} (no {hint_folder / 'three.json'}); left gray" in printed
    assert np.array_equal(np.asarray(Image.open(out / "three.png").convert("RGB")), gray_photo())  # no hints: gray
    entry = HINTS[0]
    assert torch.allclose(ab_at(out / "a" / "one.png", entry["x"], entry["y"]), hint_ab(entry), atol=1.5)


def test_levin_without_hints_writes_gray_photos_and_says_why(tmp_path, capsys):
    photo = save(tmp_path / "photo.png", gray_photo())
    assert main(["colorize", photo, "--model", "levin", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "colourised 1 of 1" in printed.out
    assert printed.err.startswith("warning: levin spreads the colours of hints; without hints (--hints FILE.json")
    assert "it can only give gray photos" in printed.err and "--model default" in printed.err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "photo.png").convert("RGB")), gray_photo())
    # With hints, or with a model that colours on its own, there is nothing to warn about.
    hints = write_json(tmp_path / "photo.json", HINTS)
    assert (
        main(["colorize", photo, "--hints", hints, "--model", "levin", "--out", str(tmp_path / "hinted"), "--quiet"])
        == 0
    )
    assert main(["colorize", photo, "--model", "gray", "--out", str(tmp_path / "gray"), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "document, message",
    [
        ([{"x": 64, "y": 3, "rgb": [9, 9, 9]}], "hints[0]: x=64 is outside the image (0 to 63)"),
        ([HINTS[0], {"x": 1, "y": 1, "rgb": [1, 2, 999]}], "hints[1]: rgb=[1, 2, 999] is out of range"),
        ({"hints": [HINTS[0]], "reference": "missing.jpg"}, "missing.jpg: no such file"),
    ],
    ids=["point outside", "colour out of range", "missing reference"],
)
def test_bad_hints_fail_their_photo_naming_file_and_entry_while_the_batch_goes_on(
    tmp_path, tiny_guided, document, message
):
    photos, hint_folder, out = tmp_path / "photos", tmp_path / "hints", tmp_path / "out"
    for name in ("good.png", "bad.png", "plain.png"):
        save(photos / name, gray_photo())
    write_json(hint_folder / "good.json", HINTS)
    bad = write_json(hint_folder / "bad.json", document)
    pipeline = load_colorizer(tiny_guided)
    jobs, problems = plan_outputs([str(photos)], out)
    jobs, unhinted = attach_hints(jobs, hint_folder, out)
    assert not problems and unhinted == [(photos / "plain.png", hint_folder / "plain.json")]
    report = colorize_paths(pipeline, jobs, batch_size=3, progress=False)
    assert sorted(path.name for path in report.written) == ["good.png", "plain.png"]
    ((source, reason),) = report.failed
    assert source == photos / "bad.png" and reason.startswith(f"{bad}: ") and message in reason
    assert "\n" not in reason and not (out / "bad.png").exists()


def test_each_photos_hints_join_its_own_entry_of_the_batch(tmp_path, tiny_guided):
    """The batched CLI path gives the same colours as the Python API photo by photo, hinted or not."""
    photos, hint_folder, out = tmp_path / "photos", tmp_path / "hints", tmp_path / "out"
    save(photos / "a.png", gray_photo())
    save(photos / "b.png", gray_photo(40, 56))
    write_json(hint_folder / "b.json", {"hints": HINTS[:1], "reference": "reference.png"})
    save(hint_folder / "reference.png", np.full((8, 8, 3), RED, np.uint8))
    pipeline = load_colorizer(tiny_guided)
    jobs, _ = attach_hints(plan_outputs([str(photos)], out)[0], hint_folder, out)
    report = colorize_paths(pipeline, jobs, batch_size=2, progress=False)
    assert not report.failed and len(report.written) == 2
    hinted = pipeline.colorize(gray_photo(40, 56), hints=HINTS[:1], reference=hint_folder / "reference.png")
    plain = pipeline.colorize(gray_photo())
    for unsteered in (pipeline.colorize(gray_photo(40, 56)), pipeline.colorize(gray_photo(40, 56), hints=HINTS[:1])):
        assert np.abs(hinted.astype(int) - unsteered).max() > 3  # the hints and the reference both count
    for name, expected in (("a.png", plain), ("b.png", hinted)):
        written = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        assert np.abs(written - expected).max() <= 1, name


def test_a_reference_for_a_model_without_global_hints_is_one_line_and_nothing_runs(tmp_path, capsys):
    photo = save(tmp_path / "photo.png", gray_photo())
    reference = save(tmp_path / "reference.png", gray_photo())
    hints = write_json(tmp_path / "photo.json", HINTS)
    out = tmp_path / "out"
    argv = ["colorize", photo, "--hints", hints, "--reference", reference, "--model", "levin", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "levin takes no reference photo; models that do: guided" in error
    assert not out.exists()


def test_a_model_without_hints_is_refused_in_one_line_naming_those_that_take_them(tmp_path, capsys):
    photo = save(tmp_path / "photo.png", gray_photo())
    hints = write_json(tmp_path / "photo.json", HINTS)
    out = tmp_path / "out"
    assert main(["colorize", photo, "--hints", hints, "--model", "gray", "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "gray takes no colour hints; models that do: guided, levin" in error
    assert not out.exists()
    with pytest.raises(ValueError, match="gray takes no colour hints"):  # the library refuses it too
        jobs, _ = attach_hints(plan_outputs([photo], out)[0], hints, out)
        colorize_paths(load_colorizer("gray"), jobs, progress=False)
    assert not out.exists()


def test_one_hint_file_for_several_photos_is_refused(tmp_path, capsys):
    save(tmp_path / "photos" / "a.png", gray_photo())
    save(tmp_path / "photos" / "b.png", gray_photo())
    hints = write_json(tmp_path / "one.json", HINTS)
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "photos"), "--hints", hints, "--model", "levin", "--out", str(out)]) == 2
    assert "is one photo's hint file, but there are 2 photos" in capsys.readouterr().err
    missing = str(tmp_path / "nope")
    assert main(["colorize", str(tmp_path / "photos"), "--hints", missing, "--model", "levin", "--out", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err and not out.exists()
