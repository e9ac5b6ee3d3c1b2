"""One lent GPU's try at the bundled model, inside one device call (README, "The bundled model").

The CPU candidates were trained for hours on 2 cores; a lent GPU gives about 15 minutes, of which one
call may use 10. This script spends ``--minutes`` of it: it times a short probe run on the real data
(which also builds the decoded-image cache the run then reuses), sets ``max_steps`` so the cosine
schedule ends inside the budget (``trainer.max_minutes`` stops it regardless), trains
configs/default-model-gpu.yaml, and writes to ``--out`` the best checkpoint as float16 weights, the
run's config, record and metrics. The weights then join the CPU candidates in
experiments/default_model.py, which evaluates every candidate on the full-size BSDS500 val photos.

Prepare here (the device sees only the repository; .carry/ is git-ignored and sent with ``carry``):

    python experiments/pack_data.py .carry/data imagenette2-224/train bsds500/images/val --size 72 --quality 70
    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux2014_x86_64 -d .carry/wheels kornia==0.9.0 kornia_rs==0.2.0

then run on the device (carry [".carry"], timeout_s 600):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .carry/wheels/*.whl &&
    POLYCHROME_GIT_REVISION=<git rev-parse HEAD, here> PYTHONPATH=src:/tmp/site \
    python3 experiments/gpu_default_model.py --out $OUT --minutes 8

(the copy there has no .git, so the run records the revision it is told).

On a CPU it runs the same way, smaller (``--minutes 0.5 --set data.batch_size=8``), which is how it is tested.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

LEFT_FOR_VALIDATION = 0.85  # the share of the measured step rate the run plans on (validation, checkpoints)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the folder to send back ($OUT on the device)")
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget for probe, training and export")
    parser.add_argument("--config", default="configs/default-model-gpu.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--run-dir", default="/tmp/gpu-default-model")
    parser.add_argument("--probe-steps", type=int, default=100)
    parser.add_argument(
        "--max-steps", type=int, help="at most this many steps, whatever the budget allows (a quick check)"
    )
    parser.add_argument("--data", default=".carry/data", help="POLYCHROME_DATA for the run (the packed photos)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 60 * args.minutes
    os.environ["POLYCHROME_DATA"] = args.data

    from polychrome.checkpoints import export_weights
    from polychrome.config import load_config
    from polychrome.train import train

    seconds_to_train(deadline, args.minutes)  # a budget that cannot even cover the export fails before the probe
    config = load_config(args.config, [*args.set, "trainer.progress=false"])
    rate = probe(
        load_config(args.config, [*args.set, "trainer.progress=false"]), Path(args.run_dir + "-probe"), args.probe_steps
    )
    seconds = seconds_to_train(deadline, args.minutes)
    every = config.trainer.val_every  # end on a validation, so best.ckpt sees the schedule's end
    planned = int(rate * seconds * LEFT_FOR_VALIDATION)
    if args.max_steps is not None:
        planned = min(planned, args.max_steps)
    config.trainer.max_steps = max(every, planned // every * every)
    config.trainer.max_minutes = seconds / 60
    print(
        f"probe: {rate:.1f} steps/s; training {config.trainer.max_steps} steps in at most {seconds:.0f} s", flush=True
    )
    shutil.rmtree(
        args.run_dir, ignore_errors=True
    )  # one call, one run: Lightning's clock would carry a leftover's time over
    trainer = train(config, args.run_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = export_weights(args.run_dir, out / "gpu-default.safetensors", half=True)
    run = Path(args.run_dir)
    for name in ("config.yaml", "run.json"):
        shutil.copy(run / name, out / name)
    shutil.copy(sorted((run / "logs").glob("version_*/metrics.csv"))[-1], out / "metrics.csv")
    print(
        f"trained {trainer.global_step} steps; wrote {weights} ({weights.stat().st_size / 2**20:.1f} MiB)", flush=True
    )
    return weights


def seconds_to_train(deadline: float, minutes: float) -> float:
    """What the budget leaves for training now, keeping 30 s for the export and copying; none left is an error."""
    seconds = deadline - time.monotonic() - 30
    if seconds <= 0:
        raise SystemExit(
            f"a budget of {minutes} min leaves no time to train (the probe's time is taken from it, and "
            "30 s are kept for the export): give more --minutes"
        )
    return seconds


def probe(config, run_dir: Path, steps: int) -> float:
    """Training steps per second on this machine, timed over ``steps`` steps after 10 warm-up steps."""
    import lightning as L

    from polychrome.train import train

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 10:
                self.start = time.perf_counter()
            elif trainer.global_step == 10 + steps:
                self.rate = steps / (time.perf_counter() - self.start)
                trainer.should_stop = True

    clock = Clock()
    config.trainer.max_steps = 10 + steps
    config.trainer.val_every = config.trainer.checkpoint_every = 10 * (10 + steps)  # neither within the probe
    shutil.rmtree(run_dir, ignore_errors=True)
    train(config, run_dir, callbacks=[clock])
    shutil.rmtree(run_dir, ignore_errors=True)
    return clock.rate


if __name__ == "__main__":
    main()
