"""Accuracy against the number of colour hints (Zhang et al. 2017's curve): PSNR, raw AuC and rebalanced AuC
of gray, the automatic ``default``, Levin et al. 2004 and a guided model, for 0 to 500 simulated hints per image.

Every point is ``polychrome.evaluate.evaluate`` with ``HintProtocol(N, seed)``: N local hints per image simulated
from its truth at the resolution it is measured at (BSDS500 test at each photo's own resolution, CIFAR-10 test at
32 px), seeded by (seed, image index) alone, so Levin and the guided model see the same hints, and the hints for
N are the first N of those for a larger N. No global hints. Gray and ``default`` take no hints: each is evaluated
once and drawn as a flat line. A guided model whose card corrects its prediction towards the hints
(``hint_propagation``) is also measured without the correction, as ``<label>-network``: the network alone. Each point is kept in ``OUT/points/<set>/<model>-<N>.json`` when it is measured,
so a killed run continues where it stopped (a kept point measured under other settings, or of other weights, is
refused, naming its file). Then ``OUT/curves.json``, ``OUT/curves.png`` and ``OUT/psnr.md`` (the PSNR tables):

    python experiments/guided_curves.py --model guided --out docs/guided/curves
    python experiments/guided_curves.py --model guided --out /tmp/curves --limit 5     # a quick look

Levin costs 1-3 s per BSDS500 photo and point (a sparse solve at 481 x 321): 200 photos x 10 counts is
about an hour on one core.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from polychrome.evaluate import HintProtocol, TruthCache, evaluate
from polychrome.files import atomic_path
from polychrome.models import LoadedModel, load_model

COUNTS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)
MEASURES = ("psnr", "auc_raw", "auc_rebalanced")
TITLES = {"psnr": "PSNR (dB)", "auc_raw": "raw AuC (%)", "auc_rebalanced": "rebalanced AuC (%)"}
# name -> (dataset spec, images evaluated by default: None for all)
DATASETS = {"bsds500-test": ("folder:bsds500/images/test", None), "cifar10-test": ("cifar10@test", 1000)}
AUTOMATIC = ("gray", "default")  # take no hints: one evaluation each, a flat line


def dataset_name(spec: str) -> str:
    """A set's name in the output: its DATASETS key, else the spec made safe for a folder name."""
    known = {value[0]: key for key, value in DATASETS.items()}
    return known.get(spec, re.sub(r"[^A-Za-z0-9]+", "-", spec).strip("-"))


def identity(label: str, model: LoadedModel, data: str, limit: int | None, seed: int) -> dict:
    """What a kept point must have been measured with to be read back instead of measured again."""
    return {
        "model": label,
        "weights_sha256": model.card.weights_sha256,
        "hint_propagation": model.card.hint_propagation,
        "data": data,
        "limit": limit,
        "hint_seed": seed,
    }


def measure_point(
    label: str,
    model: LoadedModel,
    count: int,
    data: str,
    limit: int | None,
    args: argparse.Namespace,
    cache: TruthCache,
) -> dict:
    """One point of a curve: read back from its file, else evaluated and written there."""
    path = Path(args.out) / "points" / dataset_name(data) / f"{label}-{count}.json"
    expected = identity(label, model, data, limit, args.hint_seed)
    if path.is_file():
        kept = json.loads(path.read_text())
        measured_with = {key: kept.get(key) for key in expected}
        if measured_with != expected:
            raise SystemExit(
                f"{path} was measured with {measured_with}, not {expected}; delete it or give another --out"
            )
        return kept
    result = evaluate(
        model,
        data,
        limit=limit,
        temperature=model.card.temperature,
        workers=args.workers,
        device=args.device,
        name=label,
        cache=cache,
        hints=HintProtocol(count, args.hint_seed),
    )
    point = expected | {
        "hints": count,
        "images": result["images"],
        **{measure: result[measure] for measure in (*MEASURES, "mean_ab_error")},
        "seconds": result["seconds"],
        "protocol": result["protocol"],
    }
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(point, indent=1))
    print(f"{dataset_name(data)} {label} {count} hints: PSNR {point['psnr']:.2f} dB", flush=True)
    return point


def measure_curves(args: argparse.Namespace) -> dict:
    """{set: {model: {"flat": bool, "points": {N: point}}}} for every set, model and count asked for."""
    models = {label: load_model(spec) for label, spec in (*((m, m) for m in AUTOMATIC), ("levin", "levin"))}
    guided = models[args.label] = load_model(args.model)
    if guided.card.hint_propagation != "none":
        models[f"{args.label}-network"] = guided.with_card(hint_propagation="none")
    curves: dict = {}
    for data in args.data:
        limit = args.limit if args.limit is not None else DATASETS.get(dataset_name(data), (data, None))[1]
        cache = TruthCache()  # what depends on the true images only, computed once per set
        curves[dataset_name(data)] = {
            label: {
                "flat": label in AUTOMATIC,
                "points": {
                    count: measure_point(label, model, count, data, limit, args, cache)
                    for count in ((0,) if label in AUTOMATIC else args.counts)
                },
            }
            for label, model in models.items()
        }
    return curves


def plot_curves(curves: dict, counts: list[int], path: Path) -> None:
    """One row per set, one column per measure; the automatic models as flat dashed lines."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(MEASURES), 3.2 * len(curves)), layout="constrained")
    axes = figure.subplots(len(curves), len(MEASURES), squeeze=False)
    for row, (name, models) in enumerate(curves.items()):
        for column, measure in enumerate(MEASURES):
            ax = axes[row, column]
            for k, (label, curve) in enumerate(models.items()):
                points = curve["points"]
                xs = [min(counts), max(counts)] if curve["flat"] else sorted(points)
                ys = [points[0][measure]] * 2 if curve["flat"] else [points[x][measure] for x in xs]
                style = {"linestyle": "--"} if curve["flat"] else {"marker": "o", "markersize": 3}
                ax.plot(xs, ys, label=label, color=f"C{k}", **style)
            ax.set_xscale("symlog", linthresh=1)  # 0 hints on the same axis as 1 to 500
            ax.set_xticks(counts, [str(count) for count in counts], fontsize=7)
            ax.minorticks_off()
            ax.set_xlabel("simulated hints per image")
            ax.set_title(f"{name}: {TITLES[measure]}", fontsize=10)
            ax.grid(True, linewidth=0.3)
    axes[0, -1].legend(fontsize=8)
    figure.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})


def psnr_table(curves: dict, counts: list[int]) -> str:
    """A markdown table per set of PSNR (dB) against the number of hints, the best of each column in bold (the
    tables docs/guided.md quotes)."""
    lines = []
    for name, models in curves.items():
        lines += [f"{name}, PSNR (dB):", "", "| hints per image | " + " | ".join(map(str, counts)) + " |"]
        lines.append("|---|" + "---:|" * len(counts))
        best = {n: max(c["points"][n]["psnr"] for c in models.values() if n in c["points"]) for n in counts}
        for label, curve in models.items():
            cells = []
            for n in counts:
                point = curve["points"].get(n)
                value = "" if point is None else f"{point['psnr']:.2f}"
                cells.append(f"**{value}**" if point is not None and point["psnr"] == best[n] else value)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _counts(text: str) -> list[int]:
    counts = sorted({int(value) for value in text.split(",")})
    if counts[0] < 0:
        raise argparse.ArgumentTypeError(f"hint counts must be 0 or more, got {text}")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="guided", help="the guided model: guided, or a weights file or run")
    parser.add_argument("--label", default="guided", help="its name in the curves and the points' file names")
    parser.add_argument("--out", required=True, help="folder for curves.json, curves.png and points/")
    parser.add_argument(
        "--data", action="append", help="a dataset spec (repeatable; default: BSDS500 test and CIFAR-10 test)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        help="a fixed random sample of N images of every set (default: all of BSDS500, 1000 of CIFAR-10)",
    )
    parser.add_argument("--counts", type=_counts, default=list(COUNTS), help="comma-separated hint counts")
    parser.add_argument("--hint-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    args.data = args.data or [spec for spec, _ in DATASETS.values()]
    if args.label in (*AUTOMATIC, "levin"):
        raise SystemExit(f"--label {args.label} is one of the fixed models' names; choose another, e.g. guided")

    curves = measure_curves(args)
    out = Path(args.out)
    (out / "curves.json").write_text(json.dumps(curves, indent=1))
    plot_curves(curves, args.counts, out / "curves.png")
    (out / "psnr.md").write_text(psnr_table(curves, args.counts))
    print(f"wrote {out / 'curves.json'}, {out / 'curves.png'} and {out / 'psnr.md'}")


if __name__ == "__main__":
    main()
