"""Training end to end on a tiny generated dataset: run directory, exact resume, kill -9, DDP."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polychrome.checkpoints import CheckpointError, load_checkpoint
from polychrome.config import load_config
from polychrome.evaluate import evaluate
from polychrome.train import RunDirError, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """24 small colourful images (smooth gradients plus noise), in two classes."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:24] / 23
    for i in range(24):
        colour = rng.random((2, 3)) * 255
        image = colour[0] * x[..., None] + colour[1] * (1 - y[..., None]) * 0.8 + rng.normal(0, 8, (24, 24, 3))
        (folder / f"c{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"c{i % 2}" / f"{i}.png")
    return folder


def tiny_config(photos, *sets, width="model.width=0.125"):
    return load_config(
        None,
        [
            f"data.train=folder:{photos}",
            "data.size=16",
            "data.batch_size=4",
            "data.workers=0",
            "data.val_fraction=0.25",
            *([width] if width else []),
            "trainer.max_steps=6",
            "trainer.val_every=3",
            "trainer.checkpoint_every=2",
            "trainer.log_every=1",
            "trainer.progress=false",
            "optim.lr=1e-3",
            *sets,
        ],
    )


def weights(trainer):
    return {k: v.clone() for k, v in trainer.lightning_module.model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_run_directory_holds_config_revision_metrics_and_checkpoints(photos, tmp_path):
    trainer = train(tiny_config(photos), tmp_path / "run")
    run = tmp_path / "run"
    assert trainer.global_step == 6
    assert load_config(run / "config.yaml") == tiny_config(photos)
    session = json.loads((run / "run.json").read_text())["sessions"][0]
    assert session["git_revision"] and session["torch"] == torch.__version__
    header = (run / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss" in header and "val/auc_rebalanced" in header and "val/auc_raw" in header
    assert "train/device/samples_per_sec" in header  # images per second, by Lightning's ThroughputMonitor
    import csv

    with open(run / "logs" / "version_0" / "metrics.csv", newline="") as f:
        spreads = [float(row["val/prediction_spread"]) for row in csv.DictReader(f) if row.get("val/prediction_spread")]
    # Validated at steps 3 and 6. Whether a network a few steps old already varies with its input depends on the
    # machine's arithmetic (0.0 and 3.8e-06 on one, > 0 on another): only that it is measured is guaranteed.
    assert len(spreads) == 2 and all(0 <= spread < float("inf") for spread in spreads)
    assert list((run / "tb" / "version_0").glob("events.out.tfevents.*"))
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.ckpt", "last.ckpt", "step0000004.ckpt", "step0000006.ckpt"]  # keep_last = 2
    model, config = load_checkpoint(run)
    assert config["model"]["options"] == {"width": 0.125}
    result = evaluate(model, f"folder:{photos}", size=16, workers=0)
    assert result["images"] == 24 and 0 < result["auc_raw"] <= 100


GUIDED = ["model.name=unet_guided", "model.channels=[4,8]", "model.head=regression", "loss.kind=huber"]


@pytest.mark.parametrize(
    "sets, width",
    [
        (["loss.kind=rebalanced_ce"], "model.width=0.125"),
        (["loss.kind=mse", "model.name=eccv16_regress"], "model.width=0.125"),
        (GUIDED, None),  # simulated hints are drawn per step: a resumed run draws the same ones
    ],
    ids=["rebalanced_ce", "mse", "guided"],
)
def test_resuming_gives_exactly_the_uninterrupted_run(photos, tmp_path, sets, width):
    straight = weights(train(tiny_config(photos, *sets, width=width), tmp_path / "straight"))
    train(tiny_config(photos, *sets, "trainer.max_steps=3", width=width), tmp_path / "resumed")
    assert_same(weights(train(tiny_config(photos, *sets, width=width), tmp_path / "resumed")), straight)


def _logged(run_dir):
    """Every logged metric of a run but the clock's readings (throughput, time): not the run's arithmetic."""
    from polychrome.train import read_metrics

    return {
        name: points
        for name, points in read_metrics(run_dir).items()
        if "_per_sec" not in name and not name.endswith("/time")
    }


def test_the_same_config_seed_and_code_train_the_same_bits(photos, tmp_path):
    # Twice on one machine, one with a data-loading worker process and one without (workers only load: the
    # order and each sample's crop are functions of the seed and position, data/loader.py), at one thread
    # count: the same weights and optimiser state, bit for bit, the same logged losses and validation
    # measures, and the same evaluation. What may differ across thread counts and machines: docs/training.md.
    sets = ("data.seed=3", "trainer.seed=3", "trainer.threads=1")
    runs = {}
    for name, workers in (("first", 0), ("second", 1)):
        trainer = train(tiny_config(photos, *sets, f"data.workers={workers}"), tmp_path / name)
        runs[name] = (weights(trainer), trainer.optimizers[0].state_dict(), _logged(tmp_path / name))
    (first, adam_first, logged_first), (second, adam_second, logged_second) = runs["first"], runs["second"]
    assert_same(first, second)
    for a, b in zip(adam_first["state"].values(), adam_second["state"].values(), strict=True):
        assert_same(a, b)
    assert logged_first == logged_second and "val/auc_rebalanced" in logged_first and "train/loss" in logged_first
    evaluations = [
        evaluate(load_checkpoint(tmp_path / name)[0], f"folder:{photos}", size=16, workers=0) for name in runs
    ]
    assert evaluations[0]["auc_rebalanced"] == evaluations[1]["auc_rebalanced"]
    assert evaluations[0]["total_ab_error"] == evaluations[1]["total_ab_error"]
    other = weights(train(tiny_config(photos, "data.seed=4", "trainer.seed=4", "trainer.threads=1"), tmp_path / "o"))
    assert not torch.equal(first["encoder.0.0.weight"], other["encoder.0.0.weight"])  # a seed does change them


def test_the_thread_count_is_set_while_training_and_recorded(photos, tmp_path):
    before = torch.get_num_threads()
    seen = []

    import lightning as L

    class Threads(L.Callback):
        def on_train_batch_start(self, *args):
            seen.append(torch.get_num_threads())

    train(tiny_config(photos, "trainer.threads=1", "trainer.max_steps=2"), tmp_path / "run", callbacks=[Threads()])
    assert set(seen) == {1} and torch.get_num_threads() == before  # set for the training, restored after it
    session = json.loads((tmp_path / "run" / "run.json").read_text())["sessions"][0]
    assert session["threads"] == 1 and "cpu" in session and "omp_num_threads" in session


def test_resuming_never_unpickles_code(photos, tmp_path, monkeypatch):
    import inspect

    import lightning

    if "weights_only" not in inspect.signature(lightning.Trainer.fit).parameters:
        pytest.skip(f"Lightning {lightning.__version__} cannot be told to resume with weights_only")
    train(tiny_config(photos, "trainer.max_steps=3"), tmp_path / "run")
    seen, real_load = [], torch.load
    monkeypatch.setattr(
        torch, "load", lambda *args, **kwargs: seen.append(kwargs.get("weights_only")) or real_load(*args, **kwargs)
    )
    train(tiny_config(photos), tmp_path / "run")
    assert seen and all(flag is True for flag in seen)


class Crash(Exception):
    pass


class CrashAt:
    """A callback that fails in the middle of a step, like a power cut between checkpoints."""

    def __init__(self, step):
        import lightning as L

        class _Callback(L.Callback):
            def on_train_batch_start(_, trainer, *args):
                if trainer.global_step == step:
                    raise Crash(f"crash at step {step}")

        self.callback = _Callback()


def test_a_crash_between_checkpoints_loses_only_the_steps_since_the_last_one(photos, tmp_path):
    straight = weights(train(tiny_config(photos), tmp_path / "straight"))
    with pytest.raises(Crash):
        train(tiny_config(photos), tmp_path / "crashed", callbacks=[CrashAt(5).callback])
    saved = torch.load(tmp_path / "crashed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 4
    assert_same(weights(train(tiny_config(photos), tmp_path / "crashed")), straight)


class SlowSteps:
    """A callback that makes every step take ``seconds`` of wall-clock time."""

    def __init__(self, seconds):
        import lightning as L

        class _Callback(L.Callback):
            def on_train_batch_end(_, *args):
                time.sleep(seconds)

        self.callback = _Callback()


def test_max_minutes_stops_on_the_clock_saves_the_step_and_a_longer_budget_resumes(photos, tmp_path):
    """A lent machine's budget: stop on time, not on max_steps, with last.ckpt at the step reached."""
    budget = tiny_config(photos, "trainer.max_steps=1000", "trainer.max_minutes=0.01")  # 0.6 s at 0.2 s a step
    stopped = train(budget, tmp_path / "run", callbacks=[SlowSteps(0.2).callback]).global_step
    assert 1 <= stopped < 20
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == stopped
    resumed = train(
        tiny_config(photos, "trainer.max_steps=1000", "trainer.max_minutes=0.03"),
        tmp_path / "run",
        callbacks=[SlowSteps(0.2).callback],
    ).global_step
    assert stopped < resumed < 1000


def test_a_copied_run_trained_longer_keeps_last_ckpt_the_newest(photos, tmp_path):
    """The README's recipe for a longer run: copy a finished run, raise max_steps. Lightning would write
    last-v1.ckpt beside the copied last.ckpt, and a crash would then resume from the stale one."""
    import shutil

    train(tiny_config(photos, "trainer.max_steps=3"), tmp_path / "short")
    shutil.copytree(tmp_path / "short", tmp_path / "longer")
    with pytest.raises(Crash):
        train(tiny_config(photos), tmp_path / "longer", callbacks=[CrashAt(5).callback])
    checkpoints = tmp_path / "longer" / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 4
    assert not list(checkpoints.glob("last-v*.ckpt"))


def test_kill_9_mid_run_then_the_same_command_finishes_it(photos, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"data: {{train: 'folder:{photos}', size: 16, batch_size: 4, workers: 0, val_fraction: 0.25}}\n"
        "model: {name: eccv16, width: 0.125}\noptim: {lr: 1.0e-3}\n"
        "trainer: {max_steps: 60, val_every: 1000, checkpoint_every: 3, log_every: 1, progress: false}\n"
    )
    command = [
        sys.executable,
        "-m",
        "polychrome",
        "train",
        "--config",
        str(config),
        "--run-dir",
        str(tmp_path / "killed"),
    ]
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    time.sleep(0.5)  # let it get further, probably mid-way through a later step or checkpoint write
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.exists(), "the run never wrote a checkpoint"
    step = torch.load(last, weights_only=True)["global_step"]  # readable: written atomically
    assert 3 <= step < 60
    assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    resumed, _ = load_checkpoint(last)
    straight = train(load_config(config), tmp_path / "straight")
    assert_same({k: v for k, v in resumed.state_dict().items()}, weights(straight))


def test_a_run_directory_refuses_a_different_experiment(photos, tmp_path):
    train(tiny_config(photos, "trainer.max_steps=2"), tmp_path / "run")
    with pytest.raises(RunDirError, match=re.escape("optim.lr: 0.001 -> 0.01")):
        train(tiny_config(photos, "trainer.max_steps=2", "optim.lr=0.01"), tmp_path / "run")


def test_a_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not a polychrome training checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")
    (tmp_path / "broken.ckpt").write_bytes(b"\x80\x04 truncated")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "broken.ckpt")


DDP_SCRIPT = """
import hashlib, json, sys
import lightning as L
import torch
from polychrome.config import load_config
from polychrome.train import train

photos, run_dir, out = sys.argv[1:4]

class Probe(L.Callback):
    def __init__(self):
        self.seen = []
    def on_train_batch_start(self, trainer, module, batch, batch_index):
        self.seen.append(hashlib.sha1(batch.images.numpy().tobytes()).hexdigest())
    def on_train_end(self, trainer, module):
        digest = hashlib.sha1(b"".join(v.detach().cpu().numpy().tobytes() for v in module.model.state_dict().values())).hexdigest()
        with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
            json.dump({"seen": self.seen, "weights": digest, "world": trainer.world_size}, f)

config = load_config(None, [f"data.train=folder:{photos}", "data.size=16", "data.batch_size=2", "data.workers=0",
    "data.val_fraction=0.25", "model.width=0.125", "trainer.max_steps=3", "trainer.val_every=3", "trainer.progress=false",
    "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "optim.lr=1e-3"])
train(config, run_dir, callbacks=[Probe()])
"""


def test_ddp_on_two_cpu_processes_splits_the_data_and_agrees_on_the_weights(photos, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script), str(photos), str(tmp_path / "run"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 3
    assert all(a != b for a, b in zip(ranks[0]["seen"], ranks[1]["seen"], strict=True))  # different images each step
    assert ranks[0]["weights"] == ranks[1]["weights"]


def test_a_classifier_trains_exports_and_plugs_into_fusion(photos, tmp_path):
    from polychrome.models import create_model

    config = tiny_config(
        photos, "task=classify", "model.name=resnet18", "trainer.max_steps=4", "trainer.val_every=2", width=None
    )
    trainer = train(config, tmp_path / "classifier")
    assert "val/accuracy" in trainer.callback_metrics
    meta = json.loads((tmp_path / "classifier" / "classifier.json").read_text())
    assert meta["arch"] == "resnet18" and meta["classes"] == ["c0", "c1"]
    fusion = create_model(
        "fusion",
        width=0.25,
        backbone="timm:resnet18",
        backbone_classes=2,
        backbone_size=16,
        backbone_weights=str(tmp_path / "classifier" / "classifier.safetensors"),
    )
    assert fusion(torch.rand(1, 1, 16, 16) * 100).shape == (1, 2, 16, 16)
    fusion_run = train(
        tiny_config(
            photos,
            "model.name=fusion",
            "loss.kind=mse",
            "trainer.max_steps=2",
            "model.backbone=timm:resnet18",
            "model.backbone_classes=2",
            "model.backbone_size=16",
            f"model.backbone_weights={tmp_path / 'classifier' / 'classifier.safetensors'}",
        ),
        tmp_path / "fusion",
    )
    assert fusion_run.global_step == 2


def test_classify_needs_labels(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (i * 30, 50, 200)).save(folder / f"{i}.png")
    with pytest.raises(ValueError, match="needs labelled images"):
        train(
            load_config(
                None,
                [
                    f"data.train=folder:{folder}",
                    "task=classify",
                    "model.name=resnet18",
                    "data.workers=0",
                    "data.size=16",
                    "data.val_fraction=0.25",
                ],
            ),
            tmp_path / "run",
        )


def test_a_data_mix_trains_and_exports_as_a_standalone_weights_file(photos, tmp_path):
    from polychrome.checkpoints import export_weights
    from polychrome.data import dataset_prior
    from polychrome.models import load_weights
    from polychrome.models.weights import read_metadata

    mix = f"data.train=[folder:{photos}, folder:{photos}/c0]"  # c0 counted twice: a weighted mix
    config = tiny_config(photos, mix, f"data.val=folder:{photos}/c1", "loss.kind=rebalanced_ce")
    assert config.data.train == [f"folder:{photos}", f"folder:{photos}/c0"]
    train(config, tmp_path / "run")
    prior = dataset_prior(config.data.train, 16)
    alone = dataset_prior(f"folder:{photos}", 16)
    assert prior.sum() == pytest.approx(1.0) and not torch.allclose(prior, alone)

    path = export_weights(tmp_path / "run", tmp_path / "model.safetensors", temperature=0.2)
    metadata = read_metadata(path)
    assert metadata["input_size"] == "16" and metadata["temperature"] == "0.2"
    assert len(json.loads(metadata["commands"])) == 1  # the one session that trained it
    assert load_config(base=__import__("yaml").safe_load(metadata["config"])) == config
    reference, _ = load_checkpoint(tmp_path / "run")
    model = load_weights(path)
    assert (model.card.input_size, model.card.temperature) == (16, 0.2)
    lightness = torch.rand(2, 1, 16, 16) * 100
    assert torch.equal(model(lightness), reference(lightness))


def test_a_one_dataset_list_trains_like_the_dataset_and_keeps_its_classes(photos):
    """configs/default-model-gpu.yaml trains on ``[folder:...]``: a list of one is that dataset."""
    from polychrome.data.datasets import classes_of
    from polychrome.data.module import ColorizationData

    data = ColorizationData(tiny_config(photos, f"data.train=[folder:{photos}]").data, 6)
    data.setup()
    assert classes_of(data.train_set) == ["c0", "c1"]
    assert len(data.train_set) + len(data.val_set) == 24


def test_a_copy_without_git_records_the_revision_it_is_told(monkeypatch):
    """A lent machine gets the working tree without .git; the command passes the revision along."""
    import polychrome.train

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(polychrome.train.subprocess, "run", no_git)
    monkeypatch.delenv("POLYCHROME_GIT_REVISION", raising=False)
    assert polychrome.train.git_revision() == "unknown (not a git checkout)"
    monkeypatch.setenv("POLYCHROME_GIT_REVISION", "b5e9883")
    assert polychrome.train.git_revision() == "b5e9883"


def test_a_checkpoint_of_a_hint_model_loads_with_a_card_that_lists_its_hint_inputs(photos, tmp_path):
    from polychrome.checkpoints import load_checkpoint_model

    train(tiny_config(photos, *GUIDED, "trainer.max_steps=1", width=None), tmp_path / "run")
    model, _ = load_checkpoint_model(tmp_path / "run")
    assert model.card.inputs == ("L", "ab_hints", "hint_mask", "global_hints") and model.takes_hints
