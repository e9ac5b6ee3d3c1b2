import json

import numpy as np
import pytest
from PIL import Image

from polychrome.cli import main


def test_gamut_writes_bins_and_plot(tmp_path, capsys):
    assert main(["gamut", "--out", str(tmp_path / "bins.npy"), "--plot", str(tmp_path / "gamut.png")]) == 0
    bins = np.load(tmp_path / "bins.npy")
    assert bins.shape == (313, 2)
    assert Image.open(tmp_path / "gamut.png").size[0] > 300
    assert "313 bins, a from -90 to 100, b from -110 to 100" in capsys.readouterr().out


def test_data_stats_reports_and_plots(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(photos / "red.png")
    Image.new("L", (16, 16), 90).save(photos / "gray.png")
    (photos / "bad.png").write_bytes(b"nope")
    code = main(
        [
            "data",
            "stats",
            f"folder:{photos}",
            "--size",
            "8",
            "--plot",
            str(tmp_path / "p.png"),
            "--json",
            str(tmp_path / "s.json"),
            "--workers",
            "0",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "2 readable, 1 grayscale" in out and "bad.png" in out
    assert json.loads((tmp_path / "s.json").read_text())["colour_pixels"] == 64
    assert Image.open(tmp_path / "p.png").size[0] > 300


def test_missing_dataset_is_one_clear_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "stats", f"cifar10:{tmp_path}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("polychrome: error:") and "cifar-10-python.tar.gz" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_data_cache_builds_once_and_reports(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (20, 10), (10, 120, 200)).save(photos / "blue.png")
    assert main(["data", "cache", f"folder:{photos}", "--size", "8", "--workers", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 images of" in out and "at 8x8" in out and "unreadable  0" in out


def test_models_lists_every_model_with_its_size(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "eccv16 " in out and "32,235,385" in out and "siggraph17" in out and "34,187,027" in out
    assert "fusion_inception" in out and "(weights)" in out


def tiny_photos(folder):
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (16, 16), (20 * i, 200 - 10 * i, 90)).save(folder / f"{i}.png")
    return folder


def test_train_evaluate_and_plot_from_the_command_line(tmp_path, capsys):
    photos = tiny_photos(tmp_path / "photos")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"data: {{train: 'folder:{photos}', size: 16, batch_size: 4, workers: 0, val_fraction: 0.25}}\n"
        "model: {name: eccv16, width: 0.125}\ntrainer: {max_steps: 4, val_every: 2, checkpoint_every: 2, progress: false}\n"
    )
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--set", "optim.lr=1e-3", "--run-dir", str(run)]) == 0
    assert "finished at step 4" in capsys.readouterr().out
    assert (
        main(
            [
                "compare",
                "--data",
                f"folder:{photos}",
                "--size",
                "16",
                "--models",
                f"{run},gray",
                "--workers",
                "0",
                "--json",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    rows = json.loads((tmp_path / "eval.json").read_text())
    assert [r["images"] for r in rows] == [12, 12] and rows[1]["model"] == "gray"
    assert (
        main(
            [
                "evaluate",
                "--data",
                f"folder:{photos}",
                "--model",
                str(run),
                "--workers",
                "0",
                "--json",
                str(tmp_path / "one.json"),
            ]
        )
        == 0
    )
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["protocol"]["size"] == 16  # the size it was trained at, from the checkpoint
    assert main(["plot-runs", str(run), "--out", str(tmp_path / "curves.png"), "--baseline", "gray=90,60"]) == 0
    assert Image.open(tmp_path / "curves.png").size[0] > 500
    # Changing the experiment in the same run directory is refused with one line.
    assert main(["train", "--config", str(config), "--set", "optim.lr=1e-2", "--run-dir", str(run)]) == 2
    assert "different config" in capsys.readouterr().err


def test_evaluate_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["evaluate", "--data", "cifar10@test", "--model", str(tmp_path / "nope.ckpt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def an_internal_bug(*args, **kwargs):
    raise ValueError("an internal bug")


@pytest.mark.parametrize(
    "argv, environment",
    [
        (["--debug", "gamut"], None),
        (["gamut", "--debug"], None),
        (["gamut"], "1"),
        (["gamut"], "yes"),
    ],
)
def test_debug_shows_the_traceback_of_an_error_before_its_line(argv, environment, capsys, monkeypatch):
    """An error polychrome turns into one line may be a bug inside it; --debug or POLYCHROME_DEBUG=1 keeps the
    traceback that says where."""
    import polychrome.color

    monkeypatch.setattr(polychrome.color, "ab_gamut", an_internal_bug)
    if environment is None:
        monkeypatch.delenv("POLYCHROME_DEBUG", raising=False)
    else:
        monkeypatch.setenv("POLYCHROME_DEBUG", environment)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in an_internal_bug" in err
    assert err.endswith("polychrome: error: an internal bug\n")


@pytest.mark.parametrize("environment", [None, "", "0"])
def test_without_debug_an_error_is_one_line(environment, capsys, monkeypatch):
    import polychrome.color

    monkeypatch.setattr(polychrome.color, "ab_gamut", an_internal_bug)
    if environment is None:
        monkeypatch.delenv("POLYCHROME_DEBUG", raising=False)
    else:
        monkeypatch.setenv("POLYCHROME_DEBUG", environment)
    assert main(["gamut"]) == 2
    assert capsys.readouterr().err == "polychrome: error: an internal bug\n"


def test_serve_help_gives_the_upload_limit_in_mib(capsys):
    """The limit is multiplied by 2^20 (MiB), as the page and the 413 message say, not 10^6 (MB)."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "largest upload in MiB" in text and " MB" not in text


def test_inference_threads_limits_torch_and_both_openblas_libraries():
    """``colorize`` and ``serve`` give the BLAS of NumPy and SciPy (the hint correction's solves) the network's
    thread count: their default of one spinning thread per core took a core from the page's merge and JPEG. In a
    process of its own, since the limit holds for the process."""
    import subprocess
    import sys

    script = (
        "import json, torch, threadpoolctl\n"
        "from polychrome.cli import inference_threads\n"
        "inference_threads(1)\n"
        "blas = [pool for pool in threadpoolctl.threadpool_info() if pool['user_api'] == 'blas']\n"
        "print(json.dumps([torch.get_num_threads(), [pool['filepath'] for pool in blas],"
        " [pool['num_threads'] for pool in blas]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    torch_threads, paths, threads = json.loads(done.stdout.splitlines()[-1])
    assert torch_threads == 1
    assert any("numpy" in path for path in paths) and any("scipy" in path for path in paths), paths
    assert threads == [1] * len(threads)
