"""What one training of a study costs: its base trained through ``polychrome.train`` (data loading, Lightning,
no validation) for a few hundred steps at a given torch thread count, timed after 10 warm-up steps, and the
hours a whole training of the study's budget takes at that rate. The load average before and after is
printed beside it: on a shared machine the rate is as good as what else ran.

    nice python benchmarks/study_cost.py configs/study/confirm-leads.yaml --steps 300 --threads 1
    nice python benchmarks/study_cost.py configs/study/confirm-leads-64px.yaml --steps 300 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

WARM_UP = 10


def main() -> None:
    import lightning as L

    from polychrome.study.spec import base_config, load_study
    from polychrome.train import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="a study file: its base is trained")
    parser.add_argument("--steps", type=int, default=300, help="training steps to time (after 10 warm-up ones)")
    parser.add_argument("--threads", type=int, default=1, help="torch's CPU threads for the training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    study = load_study(args.study)
    config = base_config(study, [], args.seed)
    config.trainer.threads, config.trainer.progress = args.threads, False
    config.trainer.val_every = config.trainer.checkpoint_every = 10**9  # the training steps alone
    stop = args.steps + WARM_UP

    class Clock(L.Callback):
        def __init__(self):
            self.times: dict[int, float] = {}

        def on_train_batch_end(self, trainer, *_):
            self.times[trainer.global_step] = time.perf_counter()
            trainer.should_stop = trainer.global_step >= stop

    clock = Clock()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        train(config, Path(folder) / "run", callbacks=[clock])
    seconds = (clock.times[stop] - clock.times[WARM_UP]) / (stop - WARM_UP)
    steps = config.trainer.max_steps
    print(
        json.dumps(
            {
                "study": study.name,
                "threads": args.threads,
                "size": config.data.size,
                "batch_size": config.data.batch_size,
                "seconds_per_step": round(seconds, 3),
                "images_per_second": round(config.data.batch_size / seconds, 1),
                "training_steps": steps,
                "training_hours": round(steps * seconds / 3600, 2),
                "load_average_before": [round(x, 2) for x in load],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
