"""A study's results as rows: each run writes its own rows file (atomically), and ``results.csv`` is every
rows file merged in a fixed order, so jobs that finish together on a cluster never write the same file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from polychrome.files import atomic_path
from polychrome.study.spec import Study

# The measures a report gives verdicts on (summary.VERDICT_MEASURES): each row keeps their 95% test-set
# intervals (evaluate's ``intervals``) as "low high" in an interval_<measure> column.
INTERVAL_MEASURES = (
    "auc_rebalanced",
    "auc_raw",
    "psnr",
    "colorfulness_gap",
    "false_color",
    "segment_accuracy",
    "classifier_accuracy",
)
COLUMNS = (
    "run",
    "factor",
    "level",
    "seed",
    "eval_set",
    "train_images",
    "wall_s",
    "device",
    "params",
    "macs",
    "total_ab_error",
    "auc_raw",
    "auc_rebalanced",
    "psnr",
    "ssim",
    "colorfulness",
    "delta_colorfulness",
    "segment_accuracy",
    "classifier_accuracy",
    "false_color",
    "checkpoint_images",
    "temperature",
    "colorfulness_truth",
    "eval_s",
    "curve_raw",
    "curve_rebalanced",
    *(f"interval_{measure}" for measure in INTERVAL_MEASURES),
)
CURVE_STEP = 5  # curve_* columns: accuracy within thresholds 0, 5, ..., 150 (Lab units), space-separated


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, newline="")


def write_rows(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a CSV of ``COLUMNS`` (a missing or None value an empty cell), written atomically."""
    write_text_atomic(path, _csv([{k: "" if row.get(k) is None else row.get(k) for k in COLUMNS} for row in rows]))
    return path


def columns_of(path: Path) -> tuple[str, ...] | None:
    """The columns of a rows file; None when there is none."""
    if not path.exists():
        return None
    with open(path, newline="") as f:
        return tuple(next(csv.reader(f), []))


def merge_rows(study: Study) -> Path:
    """results.csv: every run's rows, in a fixed order (factor, level, seed, eval set)."""
    rows: list[dict] = []
    for path in sorted(study.rows_dir.glob("*.csv")):
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    rows.sort(key=lambda r: (r["factor"], r["level"], int(r["seed"]), r["eval_set"], r.get("checkpoint_images") or ""))
    out = study.results_dir / "results.csv"
    write_text_atomic(out, _csv(rows))
    return out


def _csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
