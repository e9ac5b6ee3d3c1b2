"""Choose the bundled default model and its decoding temperature on validation data, then export it.

Each candidate run's best checkpoint (by its own validation rebalanced AuC) is evaluated on BSDS500 val
(100 photos at their own resolution; BSDS500 test is kept for the README's final numbers) at several
annealed-mean temperatures, beside ``gray``. Among the settings whose raw AuC stays within
``--raw-margin`` of gray's (the README's promise: clearly more colour where colour is rare, without
losing accuracy overall), those within ``--tie-margin`` of the highest rebalanced AuC count as tied (one
seed's noise), and of them the one with the least false colour (pixels painted worse than gray) wins.
Writes the table to ``--report`` and the model to ``--out``. Each evaluation is kept in
``RUN/selection/`` under the checkpoint's hash, so adding a candidate re-evaluates only that one (a
checkpoint that changes, or a kept result that lacks a measure the rule or report reads, is evaluated
afresh):

    python experiments/default_model.py runs/default-rebal runs/default-ce \\
        --out src/polychrome/weights/default.safetensors --report docs/default-model/selection.md

A candidate may also be a ``.safetensors`` weights file (a model trained elsewhere, e.g. by
experiments/gpu_default_model.py on a lent GPU); its evaluations are kept in ``selection/`` beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from polychrome.checkpoints import checkpoint_path, export_weights
from polychrome.evaluate import evaluate
from polychrome.files import atomic_path
from polychrome.metrics import CURVES
from polychrome.metrics import MEASURES as TABLE
from polychrome.models import load_model, load_weights, save_weights
from polychrome.models.weights import read_metadata

TEMPERATURES = (0.1, 0.2, 0.38, 0.6, 1.0)
# Every measure evaluate reports at the top of its results (the curves sit under "curves"): a kept result that
# lacks one (an older evaluate wrote it) is measured again.
MEASURES = tuple(name for name in TABLE if name not in CURVES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="candidate run directories")
    parser.add_argument("--data", default="folder:bsds500/images/val")
    parser.add_argument("--raw-margin", type=float, default=1.0, help="how far below gray's raw AuC a candidate may be")
    parser.add_argument(
        "--tie-margin",
        type=float,
        default=0.2,
        help="rebalanced AuC differences below this are ties, broken by less false colour "
        "(0.2: the seed-to-seed spread the CIFAR-10 study's first rounds showed; docs/bundled-model.md)",
    )
    parser.add_argument("--out", required=True, help="the .safetensors file to write")
    parser.add_argument("--report", required=True, help="markdown table of every candidate")
    parser.add_argument("--half", action="store_true", help="export float16 weights (a wider network within 25 MB)")
    args = parser.parse_args()

    gray = evaluate(load_model("gray"), args.data, size=64, workers=1)
    rows = [("gray", "-", "-", gray)]
    for run in args.runs:
        for temperature, result in zip(TEMPERATURES, evaluate_candidate(run, args.data, TEMPERATURES), strict=True):
            rows.append((run, candidate_file(run).name, temperature, result))
            print(
                f"{run} T={temperature}: raw {result['auc_raw']:.2f} rebalanced {result['auc_rebalanced']:.2f}",
                flush=True,
            )
    run, _, temperature, _ = choose(rows[1:], gray, args.raw_margin, args.tie_margin)

    lines = [
        f"Candidates on `{args.data}` (each photo at its own resolution). Chosen: **{run}** at T = {temperature} "
        f"(of the settings with raw AuC at least gray's - {args.raw_margin} and rebalanced AuC within "
        f"{args.tie_margin} of the highest of them, the least false colour).",
        "",
        "| run | checkpoint | T | AuC raw | AuC rebalanced | mean ab error | colourfulness (truth) | tint a, b (truth) | tint error | false colour % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, checkpoint, t, r in rows:
        lines.append(
            f"| {name} | {checkpoint} | {t} | {r['auc_raw']:.2f} | {r['auc_rebalanced']:.2f} | {r['mean_ab_error']:.2f} | "
            f"{r['colorfulness']:.1f} ({r['colorfulness_truth']:.1f}) | {r['tint'][0]:.1f}, {r['tint'][1]:.1f} "
            f"({r['tint_truth'][0]:.1f}, {r['tint_truth'][1]:.1f}) | {r['tint_error']:.2f} | {100 * r['false_color']:.2f} |"
        )
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n")
    path = export(run, args.out, temperature, args.half)
    print("\n".join(lines))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def choose(rows: list[tuple], gray: dict, raw_margin: float, tie_margin: float) -> tuple:
    """The selection rule over rows of (run, checkpoint, temperature, results)."""
    allowed = [row for row in rows if row[3]["auc_raw"] >= gray["auc_raw"] - raw_margin]
    if not allowed:
        raise SystemExit(f"no candidate keeps raw AuC within {raw_margin} of gray's {gray['auc_raw']:.2f}")
    best = max(row[3]["auc_rebalanced"] for row in allowed)
    tied = [row for row in allowed if row[3]["auc_rebalanced"] > best - tie_margin]
    return min(tied, key=lambda row: (row[3]["false_color"], -row[3]["auc_rebalanced"]))


def candidate_file(run: str) -> Path:
    """A run directory's best checkpoint, or a weights file as it is."""
    return Path(run) if run.endswith(".safetensors") else checkpoint_path(run)


def export(run: str, out: str, temperature: float, half: bool) -> Path:
    """The chosen candidate as the bundled weights file, decoding at ``temperature``."""
    if not run.endswith(".safetensors"):
        return export_weights(run, out, temperature, half)
    about = {
        k: v
        for k, v in read_metadata(run).items()
        if k not in ("format", "model", "options", "input_size", "temperature")
    }
    model = load_weights(run)
    return save_weights(model, out, temperature=temperature, half=half, **about)


def evaluate_candidate(run: str, data: str, temperatures: tuple[float, ...]) -> list[dict]:
    """evaluate() of the run's chosen checkpoint at each temperature, read back from RUN/selection/ where
    already measured; the checkpoint is hashed once and loaded at most once."""
    checkpoint = candidate_file(run)
    folder = Path(run) if Path(run).is_dir() else Path(run).parent
    key = f"{hashlib.sha256(data.encode()).hexdigest()[:8]}-{hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:16]}"
    model, results = None, []
    for temperature in temperatures:
        cache = folder / "selection" / f"{key}-T{temperature}.json"
        kept = json.loads(cache.read_text()) if cache.is_file() else {}
        if all(measure in kept for measure in MEASURES):
            results.append(kept)
            continue
        model = model or load_model(str(checkpoint))
        results.append(evaluate(model, data, temperature=temperature, workers=1))
        with atomic_path(cache) as temporary:
            temporary.write_text(json.dumps(results[-1]))
    return results


if __name__ == "__main__":
    main()
