"""The ``polychrome`` command: parse arguments, call one library function, report."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from polychrome.person import ClickProtocol

STUDY_HOME = "$POLYCHROME_STUDIES, else $XDG_DATA_HOME/polychrome/studies (~/.local/share/polychrome/studies)"
CONSTANT_BASELINES = ("gray", "mean")  # models that ignore their input by design
HINTS_ONLY_MODELS = ("levin",)  # models that only spread the colours of hints: without any, the photo stays gray
DEBUG_VARIABLE = "POLYCHROME_DEBUG"  # set to 1 (any value but empty or 0): errors print their traceback too
DEFAULT_MODELS_MARK = "{serve's default models}"  # filled in by _ServeHelpFormatter


def _gamut(args: argparse.Namespace) -> int:
    from polychrome.color import ab_gamut

    bins = ab_gamut(args.gamut)
    (a_lo, b_lo), (a_hi, b_hi) = bins.amin(0).tolist(), bins.amax(0).tolist()
    print(f"{args.gamut}: {len(bins)} bins, a from {a_lo:g} to {a_hi:g}, b from {b_lo:g} to {b_hi:g}")
    if args.out:
        np.save(args.out, bins.numpy())
        print(f"wrote {args.out}")
    if args.plot:
        from polychrome.viz import plot_gamut

        plot_gamut(bins, args.plot, title=f"{args.gamut} gamut: {len(bins)} ab bins at L=50")
        print(f"wrote {args.plot}")
    return 0


def _data_stats(args: argparse.Namespace) -> int:
    from polychrome.color import ab_gamut
    from polychrome.data import dataset_stats

    stats = dataset_stats(args.spec, args.size, args.gamut, workers=args.workers, progress=not args.quiet)
    print(f"dataset     {stats.spec}")
    print(f"images      {stats.images} readable, {stats.grayscale} grayscale (no pixel with |ab| > 5)")
    print(f"unreadable  {len(stats.unreadable)}")
    for failure in stats.unreadable:
        print(f"  {failure}")
    counts = stats.counts
    print(
        f"prior       {int(counts.sum()):,} colour pixels at {stats.size}x{stats.size}, "
        f"{int((counts > 0).sum())} of {len(counts)} {stats.gamut} bins occupied"
    )
    if args.plot:
        from polychrome.viz import plot_prior

        title = f"ab prior of {args.spec} at {stats.size}px ({stats.images - stats.grayscale} colour images)"
        plot_prior(counts, ab_gamut(args.gamut), args.plot, title=title)
        print(f"wrote {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(stats.summary(), indent=1))
        print(f"wrote {args.json}")
    return 0


def _data_cache(args: argparse.Namespace) -> int:
    from polychrome.data import DecodedImages

    cached = DecodedImages.build(args.spec, args.size, workers=args.workers, progress=not args.quiet)
    print(f"{len(cached)} images of {args.spec} at {args.size}x{args.size} in {cached.folder}")
    print(f"unreadable  {len(cached.unreadable)}")
    for failure in cached.unreadable:
        print(f"  {failure}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from polychrome.models import BackboneError, build_model, count_parameters, list_models, model_entry

    print(f"{'name':<20} {'head':<15} {'parameters':>12}  {'takes':<19}  description")
    for name in list_models():
        try:
            model = build_model(name)
        except BackboneError:
            print(f"{name:<20} {'regression':<15} {'(weights)':>12}  {'L':<19}  {model_entry(name).description}")
            continue
        takes = ", ".join(TAKES[kind] for kind in model.card.inputs if kind in TAKES)
        print(
            f"{name:<20} {model.card.head:<15} {count_parameters(model):>12,}  {takes:<19}  {model_entry(name).description}"
        )
    return 0


# What a model's card inputs mean to a person choosing one: hints and a reference photo, or L alone.
TAKES = {"L": "L", "ab_hints": "hints", "global_hints": "reference"}


def _train(args: argparse.Namespace) -> int:
    from polychrome.config import load_config
    from polychrome.train import train

    config = load_config(args.config, args.set)
    trainer = train(config, args.run_dir)
    metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
    print(f"finished at step {trainer.global_step} in {args.run_dir}: {metrics}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    return _compare(args, [args.model])


def _compare(args: argparse.Namespace, names: list[str] | None = None) -> int:
    """Evaluate (``names``: one model, which must take the hints asked for) or compare (``--models``: the
    models that take no hints are measured without, as the no-hint baselines; see polychrome.compare)."""
    from polychrome.compare import hinted_name, markdown_table, write_report
    from polychrome.evaluate import HintProtocol, TruthCache, default_fit_data, evaluate, load_classifier
    from polychrome.models import load_model
    from polychrome.person import click_table

    fit_data = args.fit_data or default_fit_data(args.data)
    comparing = names is None
    names = names or [name.strip() for name in args.models.split(",") if name.strip()]
    classifier = load_classifier(args.classifier) if args.classifier else None
    cache = TruthCache()  # what depends on the true images only, computed once for every model
    asked = HintProtocol(args.hints, args.hint_seed, global_hints=args.global_hints)
    clicks = _click_protocol(args)
    models, results = {}, []
    for name in names:
        model = load_model(name, fit_data, args.size or 64)
        temperature = args.temperature if args.temperature is not None else model.card.temperature
        hints = asked.taken_by(model.card, name) if comparing else asked
        row = hinted_name(name, asked, hints)  # marked when it takes fewer hints than asked
        result = evaluate(
            model,
            args.data,
            args.size,
            args.eval_size,
            temperature,
            args.limit,
            classifier,
            args.segment_threshold,
            workers=args.workers,
            device=args.device,
            name=row,
            cache=cache,
            hints=hints,
            intervals=args.intervals,
            clicks=clicks if not comparing or "ab_hints" in model.card.inputs else None,  # the others: no clicks
        )
        models[row] = model
        results.append(result)
        print(
            f"{row}: {result['images']} images ({result['grayscale_skipped']} grayscale skipped, "
            f"{len(result['unreadable'])} unreadable), {result['seconds']:.1f} s",
            file=sys.stderr,
        )
        _warn_if_constant(result, name)
    print(markdown_table(results) + click_table(results), end="")
    _print_protocol(results, models, asked.describe() if asked.record() else "")
    if args.json:
        Path(args.json).write_text(json.dumps(results if len(results) > 1 else results[0], indent=1))
    if args.out:
        write_report(results, models, args.out, args.examples)
        print(f"wrote {args.out}")
    return 0


def _warn_if_constant(result: dict, name: str) -> None:
    """A warning for a model that predicts the same colours for every image (not gray and mean, by design)."""
    if (
        result["prediction_spread"] is not None
        and result["prediction_spread"] < 1e-3
        and name not in CONSTANT_BASELINES
    ):
        print(
            f"warning: {name} predicts the same colours for every image (it ignores its input); its numbers "
            "measure one fixed pattern, not a colourisation",
            file=sys.stderr,
        )


def _click_protocol(args: argparse.Namespace) -> ClickProtocol:
    """The simulated person of ``--clicks N [--person errors|segments]`` (``polychrome.person``)."""
    from polychrome.person import ClickProtocol

    if args.person is not None and not args.clicks:
        raise ValueError(f"--person {args.person} is the simulated person of --clicks N; give --clicks too")
    return ClickProtocol(args.clicks, args.person or "errors")


def _print_protocol(results: list[dict], models: dict, hints: str) -> None:
    """The protocol line under the table. A full-resolution model (``card.full_resolution``: Levin) is never
    resized, so it is named apart from the sizes the others see L at, as the results' ``model_input`` says."""
    own = [r["model"] for r in results if models[r["model"]].card.full_resolution]
    resized = [f"{r['model']} {r['protocol']['size']}" for r in results if r["model"] not in own]
    seen = [f"L resized to its input size ({', '.join(resized)})"] if resized else []
    seen += [f"L at each photo's own resolution ({', '.join(own)})"] if own else []
    print(
        f"protocol: the model sees {' or '.join(seen)}; ab upsampled bilinearly and joined with the "
        f"image's own L; measured at {results[0]['protocol']['resolution']} resolution; temperature "
        f"{', '.join(str(r['protocol']['temperature']) for r in results)}; "
        f"segments from {results[0]['segment_source']}"
        + (f"; {hints}, the same for every model that takes them" if hints else "")
    )


def _evaluation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset spec, e.g. cifar10@test or folder:bsds500/images/test")
    parser.add_argument("--size", type=int, help="side of the model's input (default: its training size, else 256)")
    parser.add_argument(
        "--eval-size", type=int, help="resize and centre-crop every image to N x N first (the papers' 256)"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help="annealed-mean temperature (classification heads; default: the model's own, else Zhang et al.'s)",
    )
    parser.add_argument("--limit", type=int, help="a fixed random sample of N images")
    parser.add_argument(
        "--fit-data",
        help="training images the random and mean baselines are fitted on "
        "(default: the training split of cifar10, places365 or imagenet data)",
    )
    parser.add_argument("--classifier", help="run directory of a task=classify run, for classifier_accuracy")
    parser.add_argument(
        "--segment-threshold", type=int, default=10, help="ab error a segment's majority must be within"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the results as JSON")
    parser.add_argument("--out", help="folder for the table, accuracy curves, error histogram and example grids")
    parser.add_argument(
        "--examples", type=_count, default=4, help="photos per example grid in --out (default 4; 0: no grids)"
    )
    parser.add_argument(
        "--hints",
        type=_count,
        default=0,
        metavar="N",
        help="N simulated colour hints per image from its truth (Zhang et al. 2017; docs/guided.md); compare "
        "measures the models that take no hints without them, as the no-hint baselines",
    )
    parser.add_argument("--hint-seed", type=int, default=0, metavar="S", help="seed of the simulated hints (default 0)")
    parser.add_argument(
        "--intervals",
        type=_count,
        default=0,
        metavar="R",
        help="give each measure's 95%% test-set interval in brackets, a bootstrap of R replicates over the test "
        "images (1000 is usual; default 0: none)",
    )
    parser.add_argument(
        "--global-hints",
        metavar="truth|reference:DIR",
        help="global hints: each image's own colour distribution (truth), or that of the photo in DIR with its file "
        "name (reference:DIR)",
    )
    _click_options(parser)


def _click_options(parser: argparse.ArgumentParser) -> None:
    """``--clicks N`` and ``--person``: a simulated person's clicks (``polychrome.person``)."""
    parser.add_argument(
        "--clicks",
        type=_count,
        default=0,
        metavar="N",
        help="also measure after each of N clicks by a simulated person (docs/evaluation.md#clicks-by-a-simulated-"
        "person): PSNR, ab error and harm per click, clicks needed to reach 25 and 28 dB; compare gives clicks to "
        "the models that take hints",
    )
    parser.add_argument(
        "--person",
        choices=("errors", "segments"),
        help="who clicks with --clicks: errors (default: deepest inside the largest region whose ab error exceeds "
        "15) or segments (one click per BSDS500 human segment, largest first)",
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _plot_runs(args: argparse.Namespace) -> int:
    from polychrome.train import read_metrics
    from polychrome.viz import plot_training_curves

    runs = {Path(run).name: read_metrics(run) for run in args.runs}
    empty = [name for name, series in runs.items() if not series]
    if empty:
        raise ValueError(f"no metrics logged in {', '.join(empty)} (expected logs/version_*/metrics.csv)")
    baselines = {}
    for item in args.baseline:
        name, _, values = item.partition("=")
        raw, _, rebalanced = values.partition(",")
        baselines[name] = {"val/auc_raw": float(raw), "val/auc_rebalanced": float(rebalanced)}
    plot_training_curves(runs, args.out, baselines=baselines)
    print(f"wrote {args.out}")
    return 0


def inference_threads(requested: int | None) -> int:
    """Set up this process for colourising (the ``colorize`` and ``serve`` commands): torch's intra-op
    threads, ``requested`` or half the cores (at least one), and subnormal floats flushed to zero.

    Both commands run work beside the network in threads of their own (``colorize`` reads and writes photos
    while the network runs; the server's two lanes each run a job), and OpenMP's waiting threads spin, so
    torch's default of a thread per core collapses when the machine is shared: a guided colourisation took
    0.47 s with one thread against 1.22 s with two beside two training-like torch jobs on 2 cores (0.16 and
    0.14 s idle; benchmarks/threads.py). For a batch the difference is small either way
    (benchmarks/colorize.py, docs/colourise.md).

    NumPy's and SciPy's OpenBLAS (the hint correction's solves) get as many threads, for the same reason: by
    default each keeps a thread per core, whose spinning took a core from the merge, the JPEG and the browser
    beside it (on the guided page, click -> painted p95 141 against 208-225 ms; docs/web.md)."""
    import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS now, so that the limit reaches it too)
    import torch
    from threadpoolctl import threadpool_limits

    threads = requested or max(1, (os.cpu_count() or 1) // 2)
    torch.set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")
    torch.set_flush_denormal(True)  # subnormals slow CPU inference many times over (an entry point may set it)
    return threads


THREADS_HELP = "torch's threads for the network (default: half the CPU cores, at least one)"


def _colorize(args: argparse.Namespace) -> int:
    from polychrome.colorize import attach_hints, colorize_paths, load_colorizer, plan_outputs

    inference_threads(args.threads)

    jobs, problems = plan_outputs(args.inputs, args.out, args.allow_inside, args.distribution)
    pipeline = load_colorizer(args.model, args.device, args.backend)
    pipeline.check_hints(args.hints is not None, args.reference is not None)  # before anything runs
    hints_only = pipeline.card.name in HINTS_ONLY_MODELS
    if hints_only and args.hints is None:
        print(
            f"warning: {pipeline.card.name} spreads the colours of hints; without hints (--hints FILE.json, "
            "docs/hints.md) it can only give gray photos. For colours without hints use a model that predicts "
            "them, e.g. --model default",
            file=sys.stderr,
        )
    jobs, unhinted = attach_hints(jobs, args.hints, args.out) if args.hints is not None else (jobs, [])
    report = colorize_paths(
        pipeline,
        jobs,
        args.temperature,
        args.batch_size,
        args.overwrite,
        progress=not args.quiet,
        distribution=args.distribution,
        reference=args.reference,
    )
    failed = problems + report.failed
    rate = len(report.written) / report.seconds if report.seconds else 0.0
    print(f"colourised {len(report.written)} of {len(jobs) + len(problems)} into {args.out} ({rate:.1f} images/s)")
    for path, hint_file in unhinted:
        print(f"  without hints: {path} (no {hint_file})" + ("; left gray" if hints_only else ""))
    for path, reason in failed:
        print(f"  failed: {path}: {reason}")
    return 1 if failed else 0


def _export_weights(args: argparse.Namespace) -> int:
    from polychrome.checkpoints import export_weights

    path = export_weights(args.checkpoint, args.out, args.temperature, args.half, args.hint_propagation)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from polychrome.models import load_model
    from polychrome.onnx_backend import export_onnx

    model = load_model(args.model)
    size = args.size or model.card.input_size
    path = export_onnx(model, args.out, size)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, input {size}x{size})")
    return 0


def _study_run(args: argparse.Namespace) -> int:
    from polychrome.study import load_study, run_study
    from polychrome.study.runner import must_train

    states = run_study(args.study, args.only, args.dry_run, args.executor, args.workers, refresh=args.refresh)
    study = load_study(args.study)
    retrain = {run.key for run, state in states if state == "older" and must_train(study, run)}
    for run, state in states:
        gone = ", gone: trains again" if run.key in retrain else ""
        print(f"{state:8s} {run.key}" + ("" if run.factor == "baseline" else f"  (training {run.train_id}{gone})"))
    done = sum(state == "done" for _, state in states)
    older = sum(state == "older" for _, state in states)
    summary = f"{done} of {len(states)} done"
    if older:
        trains = f"; {len(retrain)} of them train again, their checkpoints gone" if retrain else ""
        summary += f", {older} more by an older runner (--refresh rewrites them{trains})"
    print(summary)
    return 0 if args.dry_run or done + older == len(states) or args.executor == "slurm" else 1


def _study_report(args: argparse.Namespace) -> int:
    from polychrome.study import write_report

    print(f"wrote {write_report(args.study)}")
    return 0


def _study_plan(args: argparse.Namespace) -> int:
    from polychrome.study.plan import write_plan

    found, path = write_plan(args.study)
    print(found.markdown, end="")
    print(f"wrote {path} and {path.with_suffix('.webp')}")
    return 0


def _study_findings(args: argparse.Namespace) -> int:
    from polychrome.study.findings import differences, write_findings

    if args.check:
        found = differences()
        print("\n".join(found) if found else "the findings are current")
        return 1 if found else 0
    for path in write_findings():
        print(f"wrote {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import secrets

    from polychrome.human_study import default_db, studies_home
    from polychrome.serve import serve

    inference_threads(args.threads)

    token = args.admin_token or secrets.token_urlsafe(16)
    print(
        f"polychrome: http://{args.host}:{args.port}/ ; human-study results: http://{args.host}:{args.port}/study/NAME/results?token={token}"
    )
    serve(
        args.model or None,
        args.host,
        args.port,
        args.db or str(default_db()),
        upload_limit=int(args.upload_limit * 2**20),
        max_pixels=args.max_pixels,
        study_data=args.study_data or studies_home(),
        admin_token=token,
    )
    return 0


def _human_study_create(args: argparse.Namespace) -> int:
    from polychrome.human_study import create_study, default_db, open_store, studies_home

    db, study_data = args.db or str(default_db()), args.study_data or str(studies_home())
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    study = create_study(
        open_store(db), args.name, args.images, models, args.pairs, args.practice, args.exposure, study_data
    )
    serve = "polychrome serve" + (
        "" if args.db is None and args.study_data is None else f" --db {db} --study-data {study_data}"
    )
    print(
        f"created study {study.name!r}: {len(models)} models, {args.practice} practice + {args.pairs} test pairs per participant; "
        f"run `{serve}` and open /study/{study.name}"
    )
    return 0


def _human_study_results(args: argparse.Namespace) -> int:
    from polychrome.human_study import StudyError, default_db, fool_rates, open_store, results_csv, store_exists
    from polychrome.viz import plot_fool_rates

    db = args.db or str(default_db())
    if not store_exists(db):
        raise StudyError(
            f"there is no study database at {db}; create a study with `polychrome human-study create`, or pass --db"
        )
    store = open_store(db)
    rates = fool_rates(store, args.name)
    print(_fool_rate_table(rates), end="")
    if not any(r["judgements"] for r in rates):
        print(f"no judgements yet: nobody has answered a test pair of study {args.name!r}")
    if args.csv:
        results_csv(store, args.name, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        plot_fool_rates(rates, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _fool_rate_table(rates: list[dict]) -> str:
    """The fool rates as a Markdown table; a model nobody has judged yet shows "-"."""

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    lines = ["| model | fool rate | 95% CI | participants | judgements |", "|---|---:|---:|---:|---:|"]
    for r in rates:
        interval = "-" if r["ci_low"] is None else f"{percent(r['ci_low'])} - {percent(r['ci_high'])}"
        lines.append(
            f"| {r['model']} | {percent(r['fool_rate'])} | {interval} | {r['participants']} | {r['judgements']} |"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    from polychrome import __version__

    parser = argparse.ArgumentParser(prog="polychrome", description="Learned image colourisation in CIE Lab.")
    parser.add_argument("--version", action="version", version=f"polychrome {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for add_commands in (
        _add_data_commands,
        _add_evaluation_commands,
        _add_colorize_commands,
        _add_export_commands,
        _add_study_commands,
        _add_web_commands,
        _add_training_commands,
    ):
        add_commands(commands)
    _add_debug_to_commands(parser)
    return parser


DEBUG_HELP = (
    f"on an error, print its traceback before the one-line message (for reporting a bug; or set {DEBUG_VARIABLE}=1)"
)


def _add_debug_to_commands(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after a command's name too (``polychrome colorize ... --debug``); SUPPRESS keeps a subcommand
    from resetting the value given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
                _add_debug_to_commands(command)


def _debugging(args: argparse.Namespace) -> bool:
    """Whether an error shows its traceback: ``--debug``, or POLYCHROME_DEBUG set to anything but empty or 0."""
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    """The subcommands of the quantised gamut and the dataset tools."""
    from polychrome.color import GAMUTS

    gamut = commands.add_parser("gamut", help="the quantised ab bins: save them and/or draw them")
    gamut.add_argument("--gamut", choices=GAMUTS, default="zhang", help="Zhang's 313 bins or the computed sRGB gamut")
    gamut.add_argument("--out", help="write the bins as a (Q, 2) .npy array of (a, b)")
    gamut.add_argument("--plot", help="draw the bins on the ab plane, coloured at L=50 (PNG)")
    gamut.set_defaults(run=_gamut)

    data = commands.add_parser("data", help="inspect datasets").add_subparsers(dest="data_command", required=True)
    stats = data.add_parser("stats", help="count images and plot a dataset's ab prior")
    stats.add_argument("spec", help="dataset spec, e.g. cifar10@train, folder:imagenette2-224/train, photos/")
    stats.add_argument(
        "--size", type=int, default=64, help="side length images are resized and cropped to (default 64)"
    )
    stats.add_argument("--gamut", choices=GAMUTS, default="zhang")
    stats.add_argument("--plot", help="draw the prior (log scale) on the ab plane (PNG)")
    stats.add_argument("--json", help="write the counts as JSON")
    stats.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    stats.add_argument("--quiet", action="store_true", help="no progress bar")
    stats.set_defaults(run=_data_stats)

    cache = data.add_parser("cache", help="decode a dataset once into the memory-mapped image cache")
    cache.add_argument("spec", help="dataset spec, as for data stats")
    cache.add_argument("--size", type=int, required=True, help="side length images are resized and cropped to")
    cache.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    cache.set_defaults(run=_data_cache)


def _add_evaluation_commands(commands: argparse._SubParsersAction) -> None:
    """The subcommands of evaluate, compare and plot-runs: measuring models and runs."""
    evaluate = commands.add_parser("evaluate", help="every colour measure of one model on a dataset")
    evaluate.add_argument(
        "--model", required=True, help="model name (gray, random, mean, ...), checkpoint or run directory"
    )
    _evaluation_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    compare = commands.add_parser("compare", help="several models under one protocol: one table and side-by-side grids")
    compare.add_argument("--models", required=True, help="comma-separated: gray,random,RUN_A,RUN_B,...")
    _evaluation_options(compare)
    compare.set_defaults(run=_compare)

    plot = commands.add_parser("plot-runs", help="training curves (loss, validation AuC) of one or more runs")
    plot.add_argument("runs", nargs="+", help="run directories")
    plot.add_argument("--out", required=True, help="PNG to write")
    plot.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=RAW,REBALANCED",
        help="draw a baseline's AuC as dashed lines, e.g. gray=90.9,63.4",
    )
    plot.set_defaults(run=_plot_runs)


def _add_colorize_commands(commands: argparse._SubParsersAction) -> None:
    """The subcommands of colourising photos, and exporting a model as weights or ONNX."""
    colorize = commands.add_parser("colorize", help="colourise photos: files, folders (recursive) or globs")
    colorize.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    colorize.add_argument("--out", required=True, help="folder for the results: OUT/<path relative to the input>.png")
    colorize.add_argument(
        "--model",
        default="default",
        help="default (the bundled model), a .safetensors weights file, a checkpoint "
        "or run directory, gray, levin (with --hints), eccv16-official:PATH, siggraph17-official:PATH; "
        "with --backend onnx an .onnx file",
    )
    colorize.add_argument(
        "--temperature",
        type=float,
        help="annealed-mean temperature (classification models); default: the model's own, else Zhang et al.'s",
    )
    colorize.add_argument(
        "--backend", choices=("torch", "onnx"), default="torch", help="run the network with PyTorch or onnxruntime"
    )
    colorize.add_argument(
        "--distribution",
        action="store_true",
        help="also write OUT/<name>.distribution.png: where the model is unsure (entropy) and its colour distribution at a few pixels",
    )
    colorize.add_argument(
        "--hints",
        metavar="FILE|DIR",
        help="colour hints (docs/hints.md): a JSON file for one photo, or a folder of them, HINTS/<path relative "
        "to the input>.json per photo (a photo without one is colourised without hints); a model that takes hints",
    )
    colorize.add_argument(
        "--reference", metavar="PHOTO", help="a photo whose colours steer every photo (replaces a hint file's own)"
    )
    colorize.add_argument("--batch-size", type=int, default=8)
    colorize.add_argument("--device", default="cpu", help="cpu or cuda")
    colorize.add_argument("--threads", type=int, help=THREADS_HELP)
    colorize.add_argument("--overwrite", action="store_true", help="replace results that already exist")
    colorize.add_argument("--allow-inside", action="store_true", help="allow the output folder inside an input folder")
    colorize.add_argument("--quiet", action="store_true", help="no progress bar")
    colorize.set_defaults(run=_colorize)


def _add_export_commands(commands: argparse._SubParsersAction) -> None:
    from polychrome.models.card import HINT_PROPAGATIONS

    export = commands.add_parser(
        "export-weights", help="a run's best checkpoint as a standalone .safetensors weights file"
    )
    export.add_argument("checkpoint", metavar="RUN", help="run directory or checkpoint file")
    export.add_argument("out", help="the .safetensors file to write")
    export.add_argument("--temperature", type=float, help="decoding temperature stored with it (default: the run's)")
    export.add_argument("--half", action="store_true", help="store the learned weights as float16 (half the file)")
    export.add_argument(
        "--hint-propagation",
        choices=HINT_PROPAGATIONS,
        help="what corrects a hint-taking model's prediction towards its hints (levin: the residual at the hints "
        "spread by Levin et al.'s optimisation; default none)",
    )
    export.set_defaults(run=_export_weights)

    onnx = commands.add_parser("export-onnx", help="a model as ONNX, for `colorize --backend onnx` or any onnxruntime")
    onnx.add_argument("model", help="default, a .safetensors file, a checkpoint or run directory, or an official model")
    onnx.add_argument("out", help="the .onnx file to write")
    onnx.add_argument("--size", type=int, help="input side (default: the model's)")
    onnx.set_defaults(run=_export_onnx)


def _add_study_commands(commands: argparse._SubParsersAction) -> None:
    """The subcommands of comparison studies: run them, write their reports and the findings drawn from them."""
    study = commands.add_parser(
        "study", help="a comparison study: run it, write its report, plan its seeds, or write the findings"
    ).add_subparsers(dest="study_command", required=True)
    study_run = study.add_parser("run", help="train and evaluate every unfinished run of a study file (resumable)")
    study_run.add_argument("study", help="study file, e.g. configs/study/zhang-cifar10.yaml")
    study_run.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    study_run.add_argument("--only", help="only runs whose key (factor--level--sSEED) or run id matches this glob")
    study_run.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="run here, or submit one SLURM job per run (submitit)",
    )
    study_run.add_argument("--workers", type=int, default=2, help="DataLoader workers for evaluation")
    study_run.add_argument(
        "--refresh",
        action="store_true",
        help="also rewrite rows an older runner wrote with fewer columns (evaluating again, training again where "
        "the run's folder is gone), so every row comes from one implementation",
    )
    study_run.set_defaults(run=_study_run)
    study_report = study.add_parser("report", help="regenerate the study's README and figures from its results.csv")
    study_report.add_argument("study", help="study file")
    study_report.set_defaults(run=_study_report)
    study_plan = study.add_parser(
        "plan", help="how many seeds a confirmatory study needs, from its pilot's spread over seeds (power)"
    )
    study_plan.add_argument(
        "study", help="a study file with preregistration.power, e.g. configs/study/confirm-leads.yaml"
    )
    study_plan.set_defaults(run=_study_plan)
    study_findings = study.add_parser(
        "findings",
        help="write the findings in docs/studies.md and README.md from their templates and the studies' results.csv",
    )
    study_findings.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming the first line that differs"
    )
    study_findings.set_defaults(run=_study_findings)


class _ServeHelpFormatter(argparse.HelpFormatter):
    """Serve's help, with its default models read from ``polychrome.serve.app.DEFAULT_MODELS`` so that the two
    cannot drift. The app is imported only when the help is printed: it pulls in torch and fastapi, seconds that
    every other command would wait for."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text is None or DEFAULT_MODELS_MARK not in text:
            return text
        from polychrome.serve.app import DEFAULT_MODELS

        return text.replace(DEFAULT_MODELS_MARK, ", ".join(DEFAULT_MODELS))


def _add_web_commands(commands: argparse._SubParsersAction) -> None:
    """The subcommands of the web server and the human study it runs."""
    serve = commands.add_parser(
        "serve",
        help="the web page: colourise in the browser, per-pixel distributions, human studies",
        formatter_class=_ServeHelpFormatter,
    )
    serve.add_argument("--model", action="append", help=f"a model to offer (repeat; default: {DEFAULT_MODELS_MARK})")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--threads", type=int, help=THREADS_HELP)
    serve.add_argument(
        "--db",
        help="human-study database: an SQLite file or an SQLAlchemy URL, opened only when a study is "
        f"asked for (default: studies.sqlite in {STUDY_HOME})",
    )
    serve.add_argument("--study-data", help=f"folder of the studies' prepared images (default: {STUDY_HOME})")
    serve.add_argument("--admin-token", help="token for the results pages (default: a random one, printed)")
    serve.add_argument("--upload-limit", type=float, default=25, help="largest upload in MiB (2^20 bytes; default 25)")
    serve.add_argument(
        "--max-pixels",
        type=int,
        default=50_000_000,
        help="largest photo in pixels (default 50 megapixels); larger uploads are refused",
    )
    serve.set_defaults(run=_serve)

    human = commands.add_parser("human-study", help="Zhang et al.'s real-or-fake test").add_subparsers(
        dest="human_command", required=True
    )
    create = human.add_parser("create", help="colourise the photos with each model now and store the study's plan")
    create.add_argument("name")
    create.add_argument("--images", required=True, help="folder of real colour photos")
    create.add_argument("--models", required=True, help="comma-separated models, e.g. default,gray")
    create.add_argument("--pairs", type=int, default=40, help="test pairs per participant (default 40)")
    create.add_argument("--practice", type=int, default=10, help="practice pairs with feedback (default 10)")
    create.add_argument(
        "--exposure", type=float, default=1.0, help="seconds each pair is shown (default 1; 0 = until answered)"
    )
    create.add_argument(
        "--db", help=f"study database: an SQLite file or an SQLAlchemy URL (default: studies.sqlite in {STUDY_HOME})"
    )
    create.add_argument("--study-data", help=f"folder for the study's prepared images (default: {STUDY_HOME})")
    create.set_defaults(run=_human_study_create)
    results = human.add_parser("results", help="fool rate per model with a 95%% bootstrap interval")
    results.add_argument("name")
    results.add_argument("--db", help=f"study database (default: studies.sqlite in {STUDY_HOME})")
    results.add_argument("--csv", help="write every judgement as CSV")
    results.add_argument("--plot", help="draw the fool rates (PNG)")
    results.set_defaults(run=_human_study_results)


def _add_training_commands(commands: argparse._SubParsersAction) -> None:
    """The subcommands of the registered models, and training."""
    models = commands.add_parser("models", help="list the registered models with their parameter counts")
    models.set_defaults(run=_models)

    train = commands.add_parser("train", help="train (or resume) a run: the same command again resumes it")
    train.add_argument("--config", help="experiment YAML (see configs/); omitted keys keep their defaults")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. trainer.max_steps=500",
    )
    train.add_argument("--run-dir", required=True, help="where the config, logs and checkpoints go")
    train.set_defaults(run=_train)


def main(argv: list[str] | None = None) -> int:
    from polychrome.data import DatasetNotFoundError
    from polychrome.models import BackboneError, WeightsError
    from polychrome.train import RunDirError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DatasetNotFoundError, WeightsError, BackboneError, RunDirError, ValueError, OSError) as error:
        # One line is what a user can act on; a bug inside polychrome raises these too, and then its traceback
        # is what a report needs: --debug or POLYCHROME_DEBUG=1 prints it first.
        if _debugging(args):
            traceback.print_exc()
        print(f"polychrome: error: {error}", file=sys.stderr)
        return 2
