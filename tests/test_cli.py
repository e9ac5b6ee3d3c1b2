import json

import numpy as np
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
    code = main(["data", "stats", f"folder:{photos}", "--size", "8", "--plot", str(tmp_path / "p.png"),
                 "--json", str(tmp_path / "s.json"), "--workers", "0", "--quiet"])
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
