import io
import warnings
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import polychrome
from polychrome.cli import main
from polychrome.color import uint8_to_lab
from polychrome.colorize import ColorizationPipeline, Job, attach_hints, plan_outputs
from polychrome.models import build_model


def tiny_pipeline():
    torch.manual_seed(0)
    return ColorizationPipeline(build_model("eccv16", width=0.125).with_card(input_size=16))


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
    read_only = np.asarray(Image.fromarray(photo))  # what np.asarray gives for a PIL image
    assert not read_only.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch warns when it wraps a read-only array
        assert (tiny_pipeline().colorize(read_only) == out).all() and tiny_pipeline().prepare(read_only).size == (
            37,
            53,
        )


def test_predict_batches_photos_of_any_size_and_the_api_entry_point_colours_them():
    pipeline = tiny_pipeline()
    rng = np.random.default_rng(2)
    photos = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((16, 16, 3), (30, 21, 3))]
    predictions = pipeline.predict([pipeline.prepare(photo) for photo in photos])
    assert [p.ab.shape for p in predictions] == [(2, 4, 4)] * 2  # the network's output resolution
    one_by_one = [pipeline.predict([pipeline.prepare(photo)])[0].ab for photo in photos]
    assert all(torch.allclose(p.ab, alone, atol=1e-5) for p, alone in zip(predictions, one_by_one, strict=True))

    bundled = polychrome.load_colorizer("default")  # the Python API's entry point: the bundled model
    # each photo its own colours (a trained model: the untrained one above says nearly the same for any photo)
    first, second = bundled.predict([bundled.prepare(photo) for photo in photos])
    assert (first.ab - second.ab).abs().max() > 1
    sky = np.asarray(Image.new("RGB", (48, 32), (90, 140, 200)))  # a blue patch: the model colours it
    colour = bundled(sky)
    assert np.array_equal(colour, bundled.colorize(sky))
    chroma = np.hypot(*uint8_to_lab(torch.from_numpy(colour).permute(2, 0, 1)[None])[0, 1:]).mean()
    assert chroma > 3, f"the bundled model left a blue photo gray (mean chroma {chroma:.2f})"


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
    assert (
        main(
            ["colorize", str(odd_inputs / "colour.png"), "--out", str(out), "--model", "gray", "--quiet", "--overwrite"]
        )
        == 0
    )


def photos_at(root, *names):
    """A small photo at each path under ``root`` (its folders made); the paths, resolved."""
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6), (200, 30, 30)).save(path)
        paths.append(path.resolve())
    return paths


def test_outputs_never_land_inside_or_over_the_inputs_or_over_each_other(odd_inputs, tmp_path):
    with pytest.raises(ValueError, match="inside the input folder"):
        plan_outputs([str(odd_inputs)], odd_inputs / "results")
    jobs, problems = plan_outputs([str(odd_inputs / "*.png")], tmp_path / "out")
    assert {job.target.name for job in jobs} == {"colour.png", "rgba.png", "g16.png", "palette.png", "one.png"}
    _, problems = plan_outputs([str(odd_inputs / "colour.png")], odd_inputs)  # its output would be itself
    assert problems and "overwrite an input" in problems[0][1]
    _, missing = plan_outputs([str(tmp_path / "nothing-*.png")], tmp_path / "out")
    assert "no such file" in missing[0][1]

    # Nor over each other: whatever the inputs, no two jobs share a file.
    x_a, w, x_b, y_jpg, y_png, z = photos_at(
        tmp_path, "a/x.jpg", "a/sub/w.jpg", "b/x.jpg", "c/y.jpg", "c/y.png", "c/z.jpg"
    )
    out = (tmp_path / "out").resolve()

    def plan(*inputs, distribution=False):
        jobs, problems = plan_outputs([str(item) for item in inputs], out, distribution=distribution)
        targets = [job.target for job in jobs]
        assert len(set(targets)) == len(targets), "two photos would share a result"
        return {job.source: job.target.relative_to(out).as_posix() for job in jobs}, dict(problems)

    # Two folders that both hold x.jpg: both refused, each naming the other, the shared result and the fix.
    jobs, problems = plan(tmp_path / "a", tmp_path / "b")
    assert jobs == {w: "sub/w.png"} and set(problems) == {x_a, x_b}
    assert f"its result {out / 'x.png'} would also be the result of {x_b}, so neither is written" in problems[x_a]
    assert str(x_a) in problems[x_b] and "separate --out folders" in problems[x_a]
    # y.jpg and y.png in one folder: each keeps its extension; z.jpg, which shares with none, does not.
    assert plan(tmp_path / "c") == ({y_jpg: "y.jpg.png", y_png: "y.png.png", z: "z.png"}, {})
    # Through globs: matches keep their path below the pattern's fixed part (a/x.png and b/x.png, not x.png
    # twice); a glob beside a folder is refused what they would share; a glob over a folder's own photos adds
    # nothing to it; a glob over y.jpg and y.png keeps them apart.
    assert plan(tmp_path / "*" / "x.jpg") == ({x_a: "a/x.png", x_b: "b/x.png"}, {})
    jobs, problems = plan(tmp_path / "a", tmp_path / "b" / "*.jpg")
    assert jobs == {w: "sub/w.png"} and set(problems) == {x_a, x_b}
    assert plan(tmp_path / "c" / "y.*") == ({y_jpg: "y.jpg.png", y_png: "y.png.png"}, {})
    assert plan(tmp_path / "c" / "y.*", tmp_path / "c") == plan(tmp_path / "c")
    # With --distribution, x.jpg's figure x.distribution.png would be the result of x.distribution.jpg.
    x_d, named_like_a_figure = photos_at(tmp_path, "d/x.jpg", "d/x.distribution.jpg")
    assert plan(tmp_path / "d") == ({x_d: "x.png", named_like_a_figure: "x.distribution.png"}, {})
    jobs, problems = plan(tmp_path / "d", distribution=True)
    assert jobs == {} and set(problems) == {x_d, named_like_a_figure}
    assert f"its distribution figure {out / 'x.distribution.png'} would also be the result of" in problems[x_d]
    assert "leave out --distribution" in problems[x_d]


def test_the_count_is_of_files_written_when_photos_would_share_a_result(tmp_path, capsys):
    photos_at(tmp_path, "a/x.jpg", "a/z.jpg", "b/x.jpg", "b/w.jpg", "c/y.jpg", "c/y.png")
    out = tmp_path / "out"
    options = ["--model", "gray", "--quiet"]
    assert (
        main(["colorize", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"), "--out", str(out), *options])
        == 1
    )
    printed = capsys.readouterr().out
    assert "colourised 4 of 6" in printed and printed.count("failed:") == 2 and printed.count("would also be") == 2
    assert sorted(path.name for path in out.iterdir()) == ["w.png", "y.jpg.png", "y.png.png", "z.png"]
    assert main(["colorize", str(tmp_path / "c" / "y.*"), "--out", str(tmp_path / "globbed"), *options]) == 0
    assert "colourised 2 of 2" in capsys.readouterr().out
    assert sorted(path.name for path in (tmp_path / "globbed").iterdir()) == ["y.jpg.png", "y.png.png"]


def test_a_photo_that_keeps_its_extension_takes_the_hint_file_named_like_its_result(tmp_path):
    y_jpg, y_png = photos_at(tmp_path / "photos", "y.jpg", "y.png")
    hints, out = tmp_path / "hints", tmp_path / "out"
    hints.mkdir()
    (hints / "y.jpg.json").write_text("[]")
    jobs, unhinted = attach_hints(plan_outputs([str(tmp_path / "photos")], out)[0], hints, out)
    assert {job.source: job.hint_file for job in jobs} == {y_jpg: hints / "y.jpg.json", y_png: None}
    assert unhinted == [(y_png, hints / "y.png.json")]


def test_a_file_that_takes_the_name_after_the_check_is_kept_not_replaced(tmp_path, monkeypatch):
    import errno
    import os

    import polychrome.colorize as colorize_module

    # The write itself: the name is taken only if it is free when the PNG is placed, with hard links and on a
    # filesystem without them (FAT on a memory card).
    def no_hard_links(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    rgb = np.zeros((4, 5, 3), np.uint8)
    for folder, hard_links in (("linked", True), ("unlinked", False)):
        target = tmp_path / folder / "x.png"
        with monkeypatch.context() as patch:
            if not hard_links:
                patch.setattr(os, "link", no_hard_links)
            colorize_module._save(rgb, None, target)
            assert Image.open(target).size == (5, 4)
            target.write_bytes(b"someone else's")
            with pytest.raises(FileExistsError):
                colorize_module._save(rgb, None, target)
            assert target.read_bytes() == b"someone else's"
            assert [path.name for path in target.parent.iterdir()] == ["x.png"]  # no temporary left behind
            colorize_module._save(rgb, None, target, overwrite=True)
            assert Image.open(target).size == (5, 4)

    # In a run: the file appears after the photo was checked and read, before its PNG is written.
    (photo,) = photos_at(tmp_path, "in/y.jpg")
    (job,) = plan_outputs([str(photo)], tmp_path / "out")[0]
    read_batch = colorize_module._read_batch

    def read_then_someone_writes(*args, **kwargs):
        result = read_batch(*args, **kwargs)
        job.target.parent.mkdir(parents=True, exist_ok=True)
        job.target.write_bytes(b"written meanwhile")
        return result

    monkeypatch.setattr(colorize_module, "_read_batch", read_then_someone_writes)
    gray = colorize_module.load_colorizer("gray")
    report = colorize_module.colorize_paths(gray, [job], progress=False)
    assert report.written == [] and report.failed == [(photo, f"{job.target} exists (pass --overwrite to replace it)")]
    assert job.target.read_bytes() == b"written meanwhile"
    report = colorize_module.colorize_paths(gray, [job], overwrite=True, progress=False)
    assert report.written == [job.target] and Image.open(job.target).size == (8, 6)


def test_two_jobs_handed_one_target_write_one_file_and_report_the_other(tmp_path):
    from polychrome.colorize import Job, colorize_paths, load_colorizer

    a, b = photos_at(tmp_path, "a/x.jpg", "b/x.jpg")
    shared = tmp_path / "out" / "x.png"
    report = colorize_paths(load_colorizer("gray"), [Job(a, shared), Job(b, shared)], progress=False)
    assert report.written == [shared] and [path.name for path in shared.parent.iterdir()] == ["x.png"]
    ((source, reason),) = report.failed  # whichever of the two was placed second
    assert source in (a, b) and reason == f"{shared} exists (pass --overwrite to replace it)"


def test_the_full_resolution_merge_in_stripes_equals_the_whole_image_merge(monkeypatch):
    import polychrome.pipeline as pipeline_module
    from polychrome.color import lab_to_uint8
    from polychrome.models import upsample_ab

    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 301, 457), dtype=torch.uint8)
    ab = torch.randn(2, 16, 12) * 30
    plane = uint8_to_lab(image[None])[0, :1]
    whole = lab_to_uint8(torch.cat([plane, upsample_ab(ab[None], (301, 457))[0]])[None])[0]
    monkeypatch.setattr(pipeline_module, "STRIPE_PIXELS", 5000)  # 10 rows a stripe
    striped = pipeline_module.lightness_of(image)
    assert (striped - plane).abs().max() < 1e-4
    merged = pipeline_module.merge(striped, ab)
    assert merged.dtype == torch.uint8 and merged.shape == (3, 301, 457)
    assert (merged.int() - whole.int()).abs().max() <= 1  # float rounding only


def test_weights_files_load_by_path_and_one_for_another_network_fails_in_one_line(tmp_path, capsys):
    from safetensors.torch import save_file

    from polychrome.models import WeightsError, load_weights, save_weights

    torch.manual_seed(0)
    model = build_model("eccv16", width=0.125).eval()
    path = save_weights(model, tmp_path / "tiny.safetensors", input_size=16, temperature=0.3)
    pipeline = polychrome.load_colorizer(str(path))
    assert (pipeline.input_size, pipeline.temperature) == (16, 0.3)
    photo = pipeline.prepare(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    ab = pipeline.predict([photo])[0].ab
    assert torch.allclose(ab, model.network.predict_ab(photo.network_input, 0.3)[0])

    other = save_weights(build_model("eccv16", width=0.25), tmp_path / "other.safetensors", input_size=16)
    mislabelled = tmp_path / "mislabelled.safetensors"  # width-0.25 tensors under width-0.125 metadata
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        metadata = file.metadata()
    with safe_open(str(other), framework="pt") as file:
        save_file({k: file.get_tensor(k) for k in file.keys()}, str(mislabelled), metadata=metadata)  # noqa: SIM118 (a safe_open handle is not iterable)
    with pytest.raises(WeightsError, match="does not fit the network ZhangNet: wrong shapes"):
        load_weights(mislabelled)
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(WeightsError, match="without polychrome's metadata"):
        load_weights(tmp_path / "foreign.safetensors")

    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "a.png")
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "a.png"),
                "--out",
                str(tmp_path / "out"),
                "--model",
                str(mislabelled),
                "--quiet",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "wrong shapes" in error and "Traceback" not in error


def test_distribution_view_is_written_for_classification_models_only(tmp_path, capsys):
    from polychrome.models import save_weights

    torch.manual_seed(0)
    weights = save_weights(build_model("eccv16", width=0.125), tmp_path / "tiny.safetensors", input_size=16)
    Image.new("RGB", (30, 20), (90, 120, 200)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "photo.png"),
                "--out",
                str(out),
                "--model",
                str(weights),
                "--distribution",
                "--quiet",
            ]
        )
        == 0
    )
    assert Image.open(out / "photo.png").size == (30, 20)
    assert Image.open(out / "photo.distribution.png").format == "PNG"
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "photo.png"),
                "--out",
                str(tmp_path / "o2"),
                "--model",
                "gray",
                "--distribution",
                "--quiet",
            ]
        )
        == 2
    )
    assert "needs a classification model" in capsys.readouterr().err


def test_unreadable_for_permissions_a_huge_photo_and_gray_stored_as_rgb(tmp_path, capsys, monkeypatch):
    import os

    from polychrome.data import images as image_module

    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (8000, 6000), (120, 120, 120)).save(folder / "huge.jpg", quality=50)
    gray = np.repeat(np.linspace(0, 255, 40 * 30).reshape(30, 40, 1).astype(np.uint8), 3, axis=2)
    Image.fromarray(gray).save(folder / "gray-as-rgb.png")
    locked = folder / "locked.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(locked)
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make reading this one fail the way it fails for a user
        real_open = Image.open
        monkeypatch.setattr(
            image_module.Image,
            "open",
            lambda path, *a, **k: (
                (_ for _ in ()).throw(PermissionError(13, "Permission denied", str(path)))
                if str(path) == str(locked)
                else real_open(path, *a, **k)
            ),
        )
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    out = tmp_path / "out"
    pipeline = tiny_pipeline()
    monkeypatch.setattr(polychrome.colorize, "load_colorizer", lambda *a, **k: pipeline)
    assert main(["colorize", str(folder), "--out", str(out), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "colourised 2 of 3" in printed and "locked.png" in printed and "ermission denied" in printed
    assert Image.open(out / "huge.png").size == (8000, 6000)
    assert Image.open(out / "gray-as-rgb.png").size == (40, 30)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # inputs untouched


def test_export_onnx_and_colourise_with_onnxruntime_like_pytorch(tmp_path, capsys):
    from polychrome.models import save_weights

    torch.manual_seed(0)
    weights = save_weights(
        build_model("eccv16", width=0.125), tmp_path / "tiny.safetensors", input_size=16, temperature=0.3
    )
    assert main(["export-onnx", str(weights), str(tmp_path / "tiny.onnx")]) == 0
    assert "input 16x16" in capsys.readouterr().out
    photo = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    for backend, model in (("torch", weights), ("onnx", tmp_path / "tiny.onnx")):
        assert (
            main(
                [
                    "colorize",
                    str(tmp_path / "photo.png"),
                    "--out",
                    str(tmp_path / backend),
                    "--model",
                    str(model),
                    "--backend",
                    backend,
                    "--quiet",
                ]
            )
            == 0
        )
    by_torch = np.asarray(Image.open(tmp_path / "torch" / "photo.png"), dtype=int)
    by_onnx = np.asarray(Image.open(tmp_path / "onnx" / "photo.png"), dtype=int)
    assert np.abs(by_torch - by_onnx).max() <= 1  # same network, same decoding temperature (0.3, stored in both files)
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "photo.png"),
                "--out",
                str(tmp_path / "x"),
                "--model",
                str(weights),
                "--backend",
                "onnx",
                "--quiet",
            ]
        )
        == 2
    )
    assert "onnx" in capsys.readouterr().err.lower()


def test_a_prediction_decodes_again_at_any_temperature_without_the_network():
    pipeline = tiny_pipeline()
    photo = np.random.default_rng(1).integers(0, 256, (21, 34, 3), dtype=np.uint8)
    prediction = pipeline.predict([pipeline.prepare(photo)])[0]
    assert prediction.photo.lightness.shape == (1, 21, 34) and prediction.output.shape[0] == 313

    def rendered(temperature):
        return pipeline.render(pipeline.redecode(prediction, temperature)).permute(1, 2, 0).numpy()

    for temperature in (0.1, 0.38, 1.0):
        assert np.array_equal(rendered(temperature), pipeline.colorize(photo, temperature))
    assert not np.array_equal(rendered(0.1), rendered(1.0))


def test_the_bundled_model_loads_offline_and_beats_gray_on_real_photos():
    from polychrome.evaluate import evaluate
    from polychrome.models import bundled_weights
    from polychrome.models.weights import read_metadata
    from tests.conftest import shared

    path = bundled_weights("default")
    assert path.stat().st_size <= 25 * 2**20
    metadata = read_metadata(path)
    assert "polychrome train" in metadata["commands"] and "imagenette" in metadata["config"]
    pipeline = polychrome.load_colorizer("default")
    assert pipeline.card.head == "classification" and pipeline.input_size == int(metadata["input_size"])
    assert pipeline.temperature == float(metadata["temperature"])
    photos = f"folder:{shared('bsds500', 'images', 'test')}"
    ours = evaluate(pipeline.model, photos, pipeline.input_size, temperature=pipeline.temperature, limit=24, workers=0)
    gray = evaluate(polychrome.load_colorizer("gray").model, photos, 64, limit=24, workers=0)
    assert ours["auc_rebalanced"] > gray["auc_rebalanced"] + 1.0
    assert ours["auc_raw"] > gray["auc_raw"] - 1.0
    assert ours["colorfulness"] > 5 * gray["colorfulness"] + 5


def test_half_precision_weights_are_half_the_file_and_colour_within_two_lab_units(tmp_path):
    from safetensors import safe_open

    from polychrome.color import uint8_to_lightness
    from polychrome.models import load_weights, save_weights
    from polychrome.models.weights import bundled_weights

    with safe_open(bundled_weights("default"), "pt") as bundled:  # shipped as float16, BatchNorm statistics float32
        assert {str(bundled.get_slice(k).get_dtype()) for k in bundled.keys()} == {"F16", "F32"}  # noqa: SIM118 (a safe_open handle is not iterable)
    torch.manual_seed(0)
    full = build_model("eccv16", width=0.25).eval()  # float32 weights, off float16's grid
    path_full = save_weights(full, tmp_path / "full.safetensors", input_size=64)
    path_half = save_weights(full, tmp_path / "half.safetensors", input_size=64, half=True)
    assert path_half.stat().st_size < 0.55 * path_full.stat().st_size
    full, half = load_weights(path_full), load_weights(path_half)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    photo = sorted((Path(__file__).parents[1] / "examples" / "photos").glob("*.jpg"))[0]
    lightness = uint8_to_lightness(
        torch.from_numpy(np.array(Image.open(photo).convert("RGB").resize((64, 64)))).permute(2, 0, 1)[None]
    )
    difference = (half.network.predict_ab(lightness) - full.network.predict_ab(lightness)).abs().max()
    assert 0 < difference < 2.0


def test_an_existing_distribution_figure_is_kept_unless_overwrite(tmp_path, capsys):
    from polychrome.colorize import _draw_distributions, load_colorizer

    Image.new("RGB", (30, 20), (90, 120, 200)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.distribution.png").write_bytes(b"someone's figure")
    command = ["colorize", str(tmp_path / "photo.png"), "--out", str(out), "--distribution", "--quiet"]
    assert main(command) == 1
    assert "photo.distribution.png exists (pass --overwrite to replace it)" in capsys.readouterr().out
    assert (out / "photo.distribution.png").read_bytes() == b"someone's figure"
    assert not (out / "photo.png").exists()  # refused before anything was written

    # A figure that takes the name after that check (another run) is kept too, and reported.
    pipeline = load_colorizer("default")
    prediction = pipeline.predict([pipeline.prepare(np.asarray(Image.open(tmp_path / "photo.png")))])[0]
    done = Future()
    done.set_result(pipeline.render(prediction).permute(1, 2, 0).numpy())
    job = Job(tmp_path / "photo.png", out / "photo.png")
    failed = _draw_distributions([(job, done)], [prediction], pipeline, overwrite=False)
    assert failed == [(job.source, f"{out / 'photo.distribution.png'} exists (pass --overwrite to replace it)")]
    assert (out / "photo.distribution.png").read_bytes() == b"someone's figure"
    assert main([*command, "--overwrite"]) == 0
    assert Image.open(out / "photo.distribution.png").format == "PNG"
