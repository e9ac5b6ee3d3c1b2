"""Does a training repeat itself, and how far do two trainings of one seed part at different thread counts?
(docs/training.md, "Reproducible on one machine".)

Trains a study's base (seed ``--seed``) for ``--steps`` steps at each of ``--threads`` (in turn, in this
process), keeping the weights every 50 steps, then prints for each later thread count whether its weights
equal the first's, bit for bit, and their distance (the L2 norm of the difference over the first's norm) at
each 50 steps, and, with ``--evaluate N``, each training's rebalanced AuC on the first N photos of the
study's first evaluation set (at one thread). Its first step's gradients are compared too: which parameters'
gradients already differ between the thread counts.

    nice python experiments/thread_divergence.py configs/study/zhang-cifar10.yaml --seed 1 --threads 1 2 --steps 300 --evaluate 2000
    nice python experiments/thread_divergence.py configs/study/zhang-cifar10.yaml --seed 1 --threads 1 1 --steps 50
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

EVERY = 50


def first_gradients(config, threads: int) -> dict:
    """The gradients of the base's first training step at ``threads``, from its initial weights."""
    import torch

    from polychrome.data.module import ColorizationData
    from polychrome.train import _prepare, _task

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        _prepare(config, Path(folder))
        data = ColorizationData(config.data, config.trainer.max_steps)
        task = _task(config, data)
        data.setup()
        batch = next(iter(data.train_dataloader()))
        task.training_step(batch, 0).backward()
    return {name: p.grad.clone() for name, p in task.model.named_parameters() if p.grad is not None}


def main() -> None:
    import lightning as L
    import torch

    from polychrome.evaluate import evaluate
    from polychrome.models import load_model
    from polychrome.study.spec import base_config, load_study
    from polychrome.train import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--evaluate", type=int, default=0, help="photos of the first evaluation set to score")
    args = parser.parse_args()
    study = load_study(args.study)

    def config():
        found = base_config(study, [], args.seed)
        found.trainer.progress = False
        found.trainer.val_every = found.trainer.checkpoint_every = 10**9
        return found

    gradients = {t: first_gradients(config(), t) for t in dict.fromkeys(args.threads)}
    kept: dict[int, dict[int, dict]] = {}
    scores = {}

    class Keep(L.Callback):
        """The weights every EVERY steps, into ``kept[run]``; stops the training after ``args.steps``."""

        def __init__(self, run: int):
            self.run = run

        def on_train_batch_end(self, trainer, module, *_):
            step = trainer.global_step
            if step % EVERY == 0:
                kept.setdefault(self.run, {})[step] = {n: v.clone() for n, v in module.model.state_dict().items()}
            trainer.should_stop = step >= args.steps

    for k, threads in enumerate(args.threads):
        run = config()
        run.trainer.threads = threads
        with tempfile.TemporaryDirectory() as folder:
            train(run, Path(folder) / "run", callbacks=[Keep(k)])
            if args.evaluate:
                torch.set_num_threads(1)
                e = study.evaluate[0]
                result = evaluate(
                    load_model(str(Path(folder) / "run")),
                    e.data,
                    run.data.size,
                    e.eval_size,
                    run.temperature,
                    limit=args.evaluate,
                    workers=0,
                )
                scores[k] = result["auc_rebalanced"]

    def distance(a: dict, b: dict) -> float:
        names = [n for n in a if a[n].is_floating_point() and "running" not in n]
        return float(
            sum(((a[n] - b[n]) ** 2).sum() for n in names) ** 0.5 / sum((a[n] ** 2).sum() for n in names) ** 0.5
        )

    first = args.threads[0]
    report = {
        "seed": args.seed,
        "first_step_gradients_differ": {
            t: [n for n in gradients[first] if not torch.equal(gradients[first][n], gradients[t][n])]
            for t in gradients
            if t != first
        },
        "runs": [
            {
                "threads": threads,
                "identical_to_first": all(
                    torch.equal(kept[0][s][n], kept[k][s][n]) for s in kept[k] for n in kept[k][s]
                ),
                "distance_to_first": {s: round(distance(kept[0][s], kept[k][s]), 4) for s in sorted(kept[k])},
                "auc_rebalanced": scores.get(k),
            }
            for k, threads in enumerate(args.threads)
        ],
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
