"""The study runner and report on a tiny generated data set: runs expand, train once, resume, write each
row once; the report is deterministic."""

import csv
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from polychrome.cli import main
from polychrome.study import expand, load_study, run_study, write_report
from polychrome.study.examples import EXAMPLE_SIDE, read_strip
from polychrome.study.report import example_columns
from polychrome.study.rows import COLUMNS
from polychrome.study.runner import by_training
from polychrome.study.spec import Run


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:24] / 23
    (root / "photos").mkdir()
    for i in range(16):
        colour = rng.random((2, 3)) * 255
        image = colour[0] * x[..., None] + colour[1] * (1 - y[..., None]) + rng.normal(0, 8, (24, 24, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "photos" / f"{i}.png")
    base = {
        "data": {"train": f"folder:{root / 'photos'}", "size": 16, "batch_size": 4, "workers": 0, "val_fraction": 0.25},
        "model": {"name": "eccv16", "width": 0.125},
        "loss": {"kind": "rebalanced_ce"},
        "optim": {"lr": 1e-3},
        "trainer": {"val_every": 2, "checkpoint_every": 2, "log_every": 1, "progress": False},
    }
    (root / "base.yaml").write_text(yaml.safe_dump(base))
    study = {
        "name": "tiny",
        "base": "base.yaml",
        "train_images": 16,
        "runs_root": str(root / "runs"),
        "results_root": str(root / "docs"),
        "baselines": ["gray", "mean"],
        "fit_data": f"folder:{root / 'photos'}",
        "evaluate": [
            {"name": "photos", "data": f"folder:{root / 'photos'}", "limit": 4, "note": "generated gradients"}
        ],
        "factors": {
            "dilation": {"seeds": [0, 1], "levels": {"on": [], "off": ["model.dilation=1"]}},
            "temperature": {"decode_only": True, "levels": {"0.1": ["temperature=0.1"], "1.0": ["temperature=1.0"]}},
        },
        "budget_curve": {"factor": 2, "points": 2},
        "examples": 3,
        "headline": ["dilation"],
        "findings": {
            "dilation": {"papers": "Zhang et al. keep dilation.", "expect": "on", "otherwise": "tiny images."},
            "temperature": {"papers": "Zhang et al. decode at 0.38."},
        },
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_runs_expand_one_factor_at_a_time_with_stable_ids(study_file):
    study = load_study(study_file)
    runs = expand(study)
    keys = [r.key for r in runs]
    assert keys[:2] == ["baseline--gray--s0", "baseline--mean--s0"]
    assert "dilation--off--s1" in keys and "temperature--0.1--s0" in keys and "budget--x2--s0" in keys
    base = next(r for r in runs if r.factor == "dilation" and r.level == "on" and r.seed == 0)
    again = next(r for r in expand(load_study(study_file)) if r.key == "dilation--on--s0")
    assert base.train_id == Run("base", "base", 0, []).train_id == again.train_id
    trainings = {r.train_id for r in runs if r.factor in ("dilation",)}
    assert len(trainings) == 4  # 2 levels x 2 seeds; the temperature levels reuse the base run of seed 0
    assert [r.checkpoints for r in runs if r.factor == "budget"] == [[16, 32]]


def test_a_study_runs_resumes_and_never_writes_a_row_twice(study_file, capsys):
    study = load_study(study_file)
    assert {s for _, s in run_study(study_file, dry_run=True)} == {"pending"}
    states = run_study(study_file, log=lambda *_: None)
    assert {s for _, s in states} == {"done"}
    with open(study.results_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    keys = [(r["factor"], r["level"], r["seed"], r["eval_set"], r["checkpoint_images"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 + 4 + 2 + 2  # baselines, dilation, temperature, budget points
    base_rows = [r for r in rows if r["factor"] == "dilation" and r["level"] == "on" and r["seed"] == "0"]
    t_rows = [r for r in rows if r["factor"] == "temperature"]
    assert {r["run"] for r in t_rows} == {base_rows[0]["run"]}  # decoded from the base checkpoint, not retrained
    assert {r["temperature"] for r in t_rows} == {"0.1", "1.0"} and t_rows[0]["auc_raw"] != t_rows[1]["auc_raw"]
    for row in rows:
        assert float(row["auc_raw"]) > 0 and row["device"] == "cpu"
        if row["factor"] != "baseline":
            assert int(row["params"]) > 0 and int(row["macs"]) > 0 and float(row["wall_s"]) > 0
    assert {r["train_images"] for r in rows if r["factor"] == "dilation"} == {"16"}
    evaluated = sorted(p.name for p in (study.runs_dir / base_rows[0]["run"] / "eval").glob("*.json"))
    assert evaluated == ["photos-T0.1.json", "photos-T0.38.json", "photos-T1.0.json"]  # each evaluation once
    assert sorted(r["checkpoint_images"] for r in rows if r["factor"] == "budget") == ["16", "32"]

    checkpoints = sorted((study.runs_dir).glob("*/checkpoints/last.ckpt"))
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    (study.results_dir / "rows" / "dilation--off--s1.csv").unlink()  # as if its job died after training
    assert main(["study", "run", str(study_file)]) == 0
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps  # nothing retrained
    with open(study.results_dir / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert "dilation--off--s1" in capsys.readouterr().out

    strip = study.results_dir / "examples" / "dilation--off--s1--photos.webp"
    stored = np.asarray(Image.open(strip))
    assert Image.open(strip).format == "WEBP" and stored.shape == (24, 3 * 24, 3)  # three photos at their own 24 px
    cells = read_strip(strip)  # enlarged for the grid as they were once stored: nearest, 4x4 pixels each
    assert len(cells) == 3 and all(cell.shape == (3, EXAMPLE_SIDE, EXAMPLE_SIDE) for cell in cells)
    assert np.array_equal(cells[1].permute(1, 2, 0).numpy(), stored[:, 24:48].repeat(4, axis=0).repeat(4, axis=1))
    truth = np.asarray(Image.open(study.results_dir / "examples" / "truth--photos.webp")).astype(int)
    gray = np.asarray(Image.open(study.results_dir / "examples" / "baseline--gray--s0--photos.webp")).astype(int)
    assert (
        np.abs(gray - gray[..., :1]).max() <= 1 and np.abs(truth - truth[..., :1]).max() > 20
    )  # gray input vs colour truth
    assert all(len(r["curve_raw"].split()) == 31 for r in rows)  # thresholds 0, 5, ..., 150

    figures = ["dilation.webp", "dilation-curves-photos.webp", "examples-photos.webp", "budget.webp"]
    first = write_report(study_file).read_bytes()
    drawn = [(study.results_dir / f).read_bytes() for f in figures]
    second = write_report(study_file).read_bytes()
    assert first == second and [(study.results_dir / f).read_bytes() for f in figures] == drawn
    text = first.decode()
    for part in (
        "## dilation",
        "## temperature",
        "## Budget curve",
        "| gray |",
        "± ",
        "Holm",
        "## Findings",
        "Ours ",
        "Papers: Zhang et al. keep dilation.",
        "## Examples",
        "*photos: generated gradients*",
        "each photo's own size)** (generated gradients)",
        "## Every run",
        "colourfulness",
        "Wall time: training",
    ):
        assert part in text
    agrees = "Ours agrees" in text or "Ours is consistent with it" in text
    disagrees = "Ours does not agree" in text or "Ours does not confirm" in text
    assert agrees != (disagrees and "Likely reason: tiny images." in text)
    assert "Incomplete" not in text
    temperature = next(line for line in text.splitlines() if line.startswith("**temperature.**"))
    assert "no level is tested; one seed, not tested: `0.1` and `1.0`" in temperature  # seed 0 only: no direction drawn
    gray_raw = max(float(r["auc_raw"]) for r in rows if r["level"] == "gray")
    assert ("`gray` has a higher raw AuC" in text) == (
        gray_raw > max(float(r["auc_raw"]) for r in rows if r["factor"] != "baseline")
    )


def test_rows_of_an_older_runner_are_kept_until_a_refresh_rewrites_them(study_file):
    """Rows with fewer columns are reported as they are (no run retrains for a new column); --refresh rewrites
    them from the cached evaluations, without training or evaluating again."""
    study = load_study(study_file)
    run_study(study_file, log=lambda *_: None)
    rows_file = study.results_dir / "rows" / "dilation--on--s0.csv"
    with open(rows_file, newline="") as f:
        old = list(csv.DictReader(f))
    with open(rows_file, "w", newline="") as f:  # as an older runner wrote it: fewer columns
        writer = csv.DictWriter(f, COLUMNS[:10])
        writer.writeheader()
        writer.writerows({k: r[k] for k in COLUMNS[:10]} for r in old)
    evaluations = sorted((study.runs_dir / old[0]["run"] / "eval").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in [*evaluations, *study.runs_dir.glob("*/checkpoints/last.ckpt")]]
    assert dict((r.key, s) for r, s in run_study(study_file, dry_run=True))["dilation--on--s0"] == "older"
    run_study(study_file, log=lambda *_: None)
    with open(rows_file, newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS[:10]
    with open(study.results_dir / "results.csv", newline="") as f:
        merged = [r for r in csv.DictReader(f) if r["run"] == old[0]["run"] and r["factor"] == "dilation"]
    assert [r["macs"] for r in merged] == [r["macs"] for r in old] and not any(r["psnr"] for r in merged)
    run_study(study_file, refresh=True, log=lambda *_: None)
    with open(rows_file, newline="") as f:
        assert list(csv.DictReader(f)) == old
    assert [p.stat().st_mtime_ns for p in [*evaluations, *study.runs_dir.glob("*/checkpoints/last.ckpt")]] == stamps


def test_a_cached_evaluation_without_intervals_is_evaluated_again_not_retrained(study_file):
    study = load_study(study_file)
    run_study(study_file, log=lambda *_: None)
    rows_file = study.results_dir / "rows" / "dilation--on--s0.csv"
    with open(rows_file, newline="") as f:
        old = list(csv.DictReader(f))
    assert all(r["interval_auc_rebalanced"] and r["interval_false_color"] for r in old)
    for row in old:
        low, high = map(float, row["interval_auc_rebalanced"].split())
        assert low <= float(row["auc_rebalanced"]) <= high and low < high
    evaluation = study.runs_dir / old[0]["run"] / "eval" / f"photos-T{old[0]['temperature'] or 0.38}.json"
    cached = json.loads(evaluation.read_text())
    evaluation.write_text(json.dumps({k: v for k, v in cached.items() if k != "intervals"}))  # an older runner's
    checkpoint = study.runs_dir / old[0]["run"] / "checkpoints" / "last.ckpt"
    stamp = checkpoint.stat().st_mtime_ns
    rows_file.write_text(rows_file.read_text().replace("interval_auc_rebalanced", "older_column"))
    run_study(study_file, refresh=True, only="dilation--on--s0", log=lambda *_: None)
    assert json.loads(evaluation.read_text())["intervals"] == cached["intervals"]  # seeded: the same again
    assert checkpoint.stat().st_mtime_ns == stamp
    with open(rows_file, newline="") as f:
        assert [r | {"eval_s": ""} for r in csv.DictReader(f)] == [r | {"eval_s": ""} for r in old]


def test_a_dry_run_says_which_older_runs_a_refresh_trains_again(study_file, capsys):
    """On a fresh machine the older rows' trainings are gone: the dry run says which a --refresh trains again
    (hours on a CPU) and which it only evaluates again."""
    study = load_study(study_file)
    run_study(study_file, log=lambda *_: None)
    gone, kept = (study.results_dir / "rows" / f"dilation--{level}--s1.csv" for level in ("off", "on"))
    texts = {path: path.read_text() for path in (gone, kept)}
    for path, text in texts.items():  # as an older runner wrote them: fewer columns
        path.write_text(text.replace("interval_auc_rebalanced", "older_column"))
    checkpoints = study.runs_dir / next(csv.DictReader(texts[gone].splitlines()))["run"] / "checkpoints"
    checkpoints.rename(checkpoints.with_name("elsewhere"))
    try:
        assert main(["study", "run", str(study_file), "--dry-run"]) == 0
    finally:
        checkpoints.with_name("elsewhere").rename(checkpoints)
        for path, text in texts.items():
            path.write_text(text)
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines()}
    gone_line, kept_line = lines["dilation--off--s1"], lines["dilation--on--s1"]
    assert gone_line.startswith("older") and gone_line.endswith(", gone: trains again)")
    assert kept_line.startswith("older") and "gone" not in kept_line
    assert "2 more by an older runner (--refresh rewrites them; 1 of them train again, their checkpoints gone)" in out


def test_the_slurm_executor_runs_the_same_code_through_submitit(study_file, monkeypatch):
    import submitit

    submitted = []

    class Debug(submitit.AutoExecutor):
        def __init__(self, folder):
            super().__init__(folder=folder, cluster="debug")

        def submit(self, fn, *args):
            job = super().submit(fn, *args)
            submitted.append(job)
            return job

    monkeypatch.setattr(submitit, "AutoExecutor", Debug)
    study = load_study(study_file)
    (study.results_dir / "rows" / "baseline--gray--s0.csv").unlink()
    run_study(study_file, only="baseline--gray*", executor="slurm", log=lambda *_: None)
    assert len(submitted) == 1
    assert submitted[0].result().endswith("baseline--gray--s0.csv")
    run_study(study_file, only="baseline--gray*", log=lambda *_: None)  # merges the job's rows
    with open(study.results_dir / "results.csv", newline="") as f:
        assert sum(r["level"] == "gray" for r in csv.DictReader(f)) == 1


def test_bad_study_files_name_the_problem(tmp_path, study_file):
    bad = yaml.safe_load(study_file.read_text()) | {"epochs": 3}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(
        ValueError, match=r"unknown config key epochs in .*bad.yaml; valid keys in the top level: .*train_images"
    ):
        load_study(tmp_path / "bad.yaml")
    del bad["epochs"]
    bad["base"] = str(study_file.parent / bad["base"])
    bad["factors"]["dilation"]["seed"] = [0]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(
        ValueError,
        match=r"unknown config key factors.dilation.seed in .*bad.yaml; valid keys in factors.dilation.: .*seeds",
    ):
        load_study(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="no study file"):
        load_study(tmp_path / "missing.yaml")


def test_the_shipped_study_files_load_and_the_full_study_shares_the_findings():
    from pathlib import Path

    from polychrome.study.spec import base_config

    folder = Path(__file__).parents[2] / "configs" / "study"
    cpu, full = load_study(folder / "zhang-cifar10.yaml"), load_study(folder / "zhang-cifar10-full.yaml")
    assert full.findings == cpu.findings and set(cpu.findings) == {f.name for f in cpu.factors}
    assert [f.name for f in full.factors] == [f.name for f in cpu.factors]
    config = base_config(full)
    assert (config.trainer.max_steps, config.data.batch_size, config.optim.lr) == (450_000, 40, 3e-5)
    assert config.optim.schedule == "step" and config.optim.milestones == [200_000, 375_000]
    assert load_study(folder / "zhang-imagenette-size.yaml").findings["image_size"]["expect"] == "128"


def test_a_run_claimed_by_a_live_runner_is_skipped_and_a_dead_ones_claim_taken_over(study_file):
    import subprocess
    import sys

    study = load_study(study_file)
    run_study(study_file, log=lambda *_: None)
    (run,) = [r for r in expand(study) if r.key == "dilation--off--s1"]
    rows = study.rows_path(run)
    rows.unlink()
    claim = study.run_folder(run) / ".study-claim"
    holds = "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", holds, str(claim)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as other:
        assert other.stdout.readline().strip() == "held"  # a second runner on this machine, working on the run
        messages = []
        run_study(study_file, only="dilation--off--s1", log=messages.append)
        assert not rows.exists() and any("skipped" in m and run.train_id in m for m in messages)
        other.kill()  # it dies without releasing its claim
    assert claim.exists()
    run_study(study_file, only="dilation--off--s1", log=lambda *_: None)
    assert rows.exists()


def test_an_interrupted_trainings_wall_time_is_kept(study_file, monkeypatch, tmp_path):
    import json
    import time

    import polychrome.train
    from polychrome.study.execute import train_run

    study = load_study(study_file)
    study.runs_root = tmp_path  # a fresh run folder

    def interrupted(config, folder):
        time.sleep(0.2)
        raise KeyboardInterrupt

    monkeypatch.setattr(polychrome.train, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_run(study, Run("dilation", "off", 7, ["model.dilation=1"]))
    (timing,) = tmp_path.glob("*/*/study-wall.json")
    assert json.loads(timing.read_text())["wall_s"] >= 0.2


def test_the_example_grid_shows_the_base_once_however_many_headline_factors_list_it(study_file, tmp_path):
    spec = yaml.safe_load(study_file.read_text())
    spec["base"] = str(study_file.parent / spec["base"])
    spec["factors"]["bn"] = {"seeds": [0], "levels": {"on": [], "off": ["model.batchnorm=false"]}}
    spec["headline"] = ["dilation", "bn"]
    path = tmp_path / "two-headlines.yaml"
    path.write_text(yaml.safe_dump(spec))
    titles = [title for title, _ in example_columns(load_study(path))]
    assert sorted(titles) == ["gray input", "off", "off", "on"]  # gray, the base, dilation off, BatchNorm off


def test_the_runs_that_read_one_training_run_one_after_another(study_file):
    """The base's seed-0 training is read by dilation `on` and by both temperature levels; in study order a
    dilation `off` run comes between them, so a retrained base would leave rows of two trainings side by side."""

    def together(names, name):
        at = [k for k, n in enumerate(names) if n == name]
        return at == list(range(at[0], at[0] + len(at)))

    runs = expand(load_study(study_file))
    ordered = by_training(runs)
    assert sorted(r.key for r in ordered) == sorted(r.key for r in runs)
    names, study_order = [r.name for r in ordered], [r.name for r in runs]
    assert all(together(names, name) for name in names)
    assert list(dict.fromkeys(names)) == list(dict.fromkeys(study_order))  # trainings in the study's order
    base = next(r.name for r in runs if r.key == "dilation--on--s0")
    assert names.count(base) == 3 and not together(study_order, base)
