"""Running a study: every run of the study file (see ``spec``) executed here or submitted to SLURM, then
every run's rows merged into ``results.csv``.

Finished runs are skipped, an interrupted one resumes from its last checkpoint (``polychrome train``'s own
resume), and each (factor, level, seed) writes its rows to a file of its own (see ``rows``): jobs that
finish together on a cluster never write the same file, and the same command finds its runs again.

Rows written by an older runner, with fewer columns (say, before test-set intervals), are kept and reported
with what they have; ``refresh`` rewrites them with today's columns, evaluating again (and training again
where the run's folder is gone), so that every row of a study comes from one implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from polychrome.study.examples import has_examples
from polychrome.study.execute import execute
from polychrome.study.rows import COLUMNS, columns_of, merge_rows
from polychrome.study.spec import Run, Study, expand, load_study, select, training_config


def state(study: Study, run: Run) -> str:
    """done (rows and examples written), older (done by an older runner: rows with fewer columns), trained,
    partial (checkpoints, unfinished) or pending."""
    columns = columns_of(study.rows_path(run))
    if columns is not None and (run.checkpoints or has_examples(study, run.key)):
        return "done" if columns == COLUMNS else "older"
    if run.is_baseline:
        return "pending"
    step = _saved_step(study, run)
    return "trained" if step >= training_config(study, run).trainer.max_steps else "partial" if step >= 0 else "pending"


def must_train(study: Study, run: Run) -> bool:
    """Whether executing the run trains first: its training is not finished in its folder. For an ``older`` run,
    whether ``refresh`` trains it again (its folder gone, as on a fresh machine) or only evaluates it again."""
    return not run.is_baseline and _saved_step(study, run) < training_config(study, run).trainer.max_steps


def _saved_step(study: Study, run: Run) -> int:
    from polychrome.train import saved_step

    return saved_step(study.run_folder(run) / "checkpoints" / "last.ckpt")


def run_study(
    path: str | Path,
    only: str | None = None,
    dry_run: bool = False,
    executor: str = "local",
    workers: int = 2,
    log=print,
    refresh: bool = False,
) -> list[tuple[Run, str]]:
    """Run (or list, with ``dry_run``) the study's unfinished runs, and with ``refresh`` the older ones too;
    returns each selected run and its state."""
    study = load_study(path)
    runs = select(expand(study), only)
    states = [(run, state(study, run)) for run in runs]
    if dry_run:
        return states
    pending = by_training([run for run, s in states if s != "done" and (s != "older" or refresh)])
    if study.preregistration is not None and pending:  # committed before its first run, unchanged since, or refused
        from polychrome.study.preregistration import register

        register(study, path)
    if executor == "slurm":
        _submit(study, path, pending, workers, log)
    elif executor == "local":
        _run_here(study, pending, workers, log)
    else:
        raise ValueError(f"executor must be local or slurm, got {executor!r}")
    merge_rows(study)
    return [(run, state(study, run)) for run in runs]


def by_training(runs: list[Run]) -> list[Run]:
    """The runs in the study's order, except that the runs of one training (the base level of every factor, the
    decode-only levels) follow its first at once: a training done again (its folder gone) then has every row
    that reads it rewritten together, from its cached evaluations, instead of disagreeing with the rows that
    still hold the old training until the runner reaches their factors."""
    first: dict[str, int] = {}
    for k, run in enumerate(runs):
        first.setdefault(run.name, k)
    return sorted(runs, key=lambda run: first[run.name])


def _run_here(study: Study, pending: list[Run], workers: int, log) -> None:
    from polychrome.evaluate import TruthCache

    cache = TruthCache()  # the true images' segments and classifier answers, computed once for every run here
    for k, run in enumerate(pending, 1):
        log(f"[{k}/{len(pending)}] {run.key} ({'baseline' if run.is_baseline else run.train_id})")
        with _claimed(study, run) as mine:
            if mine:
                execute(study, run, workers, cache)
            else:
                log(f"  skipped: another runner on this machine is working on {run.name}")


@contextmanager
def _claimed(study: Study, run: Run) -> Iterator[bool]:
    """Yield whether this process may work on the run's folder: False while another runner holds its lock
    (two ``--only`` runners side by side never train one run twice). The lock is the operating system's,
    so a runner that dies releases it."""
    folder = study.run_folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / ".study-claim")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _submit(study: Study, path: str | Path, pending: list[Run], workers: int, log) -> None:
    """One SLURM job per pending run (submitit), each running the same ``execute`` as the local executor."""
    import submitit

    slurm = submitit.AutoExecutor(folder=study.runs_dir / "slurm")
    slurm.update_parameters(**({"timeout_min": 240} | study.slurm))
    jobs = [slurm.submit(_execute_from_file, str(path), run.key, workers) for run in pending]
    log(
        f"submitted {len(jobs)} jobs: {', '.join(job.job_id for job in jobs)}; run `polychrome study run {path}` again to merge their rows"
    )


def _execute_from_file(path: str, key: str, workers: int) -> str:
    """What a cluster job runs: the same ``execute`` as the local executor."""
    study = load_study(path)
    (run,) = [r for r in expand(study) if r.key == key]
    return str(execute(study, run, workers))
