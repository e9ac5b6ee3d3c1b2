"""The study report from made-up rows (nothing trained): the statistics it calls differences by, the
verdicts on every measure, the cost, the budget curve, ordered sweeps, a study with no rows, a study set
against another's ranking, and byte-identical regeneration."""

import csv
import shutil

import numpy as np
import pytest
import yaml
from scipy.stats import ttest_ind

from polychrome.study import write_report
from polychrome.study.rows import COLUMNS
from polychrome.study.significance import ALPHA, change_p, compare, correct, holm, welch_p
from polychrome.study.spec import load_study
from polychrome.study.summary import StudyNumbers, sweep


def test_holm_matches_the_worked_example():
    # Holm (1979) as Wikipedia works it: four p-values at alpha 0.05 reject H4 (0.005) and H1 (0.01) only.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p <= 0.05 for p in adjusted] == [True, False, False, True]
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_a_change_between_studies_is_welchs_test_when_the_first_does_not_vary():
    level, base = [63.1, 63.9, 63.4], [62.0, 62.8, 62.1, 62.5]
    p = ttest_ind(level, base, equal_var=False).pvalue
    assert change_p([1.0, 1.0], [1.0, 1.0], level, base) == pytest.approx(p, rel=1e-9)
    shifted = ttest_ind([v - 1.0 for v in level], base, equal_var=False).pvalue  # a lead of exactly 1 there
    assert change_p([2.0, 2.0], [1.0, 1.0], level, base) == pytest.approx(shifted, rel=1e-9)
    assert change_p([1.0], [1.0, 1.0], level, base) is None  # one seed: not tested
    assert change_p([1.0, 1.0], [0.0, 0.0], [2.0, 2.0], [1.0, 1.0]) == 1.0  # the same lead, no spread anywhere


def test_welch_is_scipys_and_needs_two_seeds_a_side():
    a, b = [63.5, 63.9, 63.7], [62.4, 62.5, 62.3, 62.45]
    assert welch_p(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p([63.5], b) is None and welch_p(a, [62.4]) is None
    assert welch_p([1.0, 1.0], [1.0, 1.0]) == 1.0 and welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0
    corrected = correct({"x": compare(a, b, True), "one seed": compare([70.0], b, True), "y": compare(b, a, False)})
    assert corrected["one seed"].p_holm is None and not corrected["one seed"].called
    assert corrected["x"].p_holm == pytest.approx(min(1.0, 2 * corrected["x"].p))  # two tested comparisons
    assert corrected["x"].called == (corrected["x"].p_holm <= ALPHA) and corrected["x"].better
    assert corrected["y"].better  # lower, and lower is better there


BASE_SEEDS = {"cifar": [63.5, 63.9, 63.7], "photos": [65.8, 65.7, 65.9]}


def _row(factor, level, seed, eval_set, auc, **values):
    row = {c: "" for c in COLUMNS}
    row |= {
        "run": f"{factor}-{level}-s{seed}",
        "factor": factor,
        "level": level,
        "seed": seed,
        "eval_set": eval_set,
        "train_images": 0 if factor == "baseline" else 1000,
        "wall_s": 10,
        "device": "cpu",
        "params": 10,
        "macs": 0 if factor == "baseline" else 2000,
        "auc_rebalanced": auc,
        "auc_raw": 89.0 + auc / 100,
        "psnr": 23.0,
        "ssim": 0.94,
        "colorfulness": 24.0,
        "colorfulness_truth": 31.0,
        "segment_accuracy": 0.3,
        "classifier_accuracy": 0.61 if eval_set == "cifar" else "",
        "temperature": 0.38,
        "eval_s": 5,
        "curve_raw": " ".join(f"{v:.4f}" for v in np.linspace(0.1, 1, 31)),
        "curve_rebalanced": " ".join(f"{v:.4f}" for v in np.linspace(0.05, 1, 31) ** 1.1),
    }
    return row | values


def _rows():
    rows = [
        _row("baseline", name, 0, e, auc, auc_raw=raw)
        for e in BASE_SEEDS
        for name, auc, raw in (("gray", 61.3, 90.0), ("mean", 62.0, 89.3))
    ]
    for e, base in BASE_SEEDS.items():
        for seed, auc in enumerate(base):
            rows += [
                _row(f, level, seed, e, auc, psnr=23.0 + seed / 100)
                for f, level in (("batchnorm", "on"), ("loss", "lambda=0.5"))
            ]
            # off: rebalanced AuC far lower, PSNR far higher (a mixed verdict), colourfulness further from the truth
            rows.append(
                _row(
                    "batchnorm",
                    "off",
                    seed,
                    e,
                    auc - 3.0 + seed / 50,
                    psnr=25.0 + seed / 100,
                    colorfulness=15.0 + seed / 10,
                )
            )
            for level, mix in (("lambda=0", -0.5), ("lambda=0.25", 0.2)):
                rows.append(_row("loss", level, seed, e, auc + mix + seed / 40))
            rows.append(_row("loss", "plain CE", seed, e, auc - 0.1 + seed / 30))
        rows += [_row("depth", "6 blocks", 0, e, base[0] + 2.0), _row("depth", "7 blocks", 0, e, base[0])]
        rows += [
            _row(
                "budget", "x2", 0, e, 64.5 + k / 10, checkpoint_images=str(images), train_images=2000, auc_raw=90.5 - k
            )
            for k, images in enumerate((1000, 2000))
        ]
    return rows


FACTORS = {
    "batchnorm": {"seeds": [0, 1, 2], "levels": {"on": [], "off": ["model.batchnorm=false"]}},
    "depth": {"seeds": [0], "levels": {"6 blocks": ["model.blocks=6"], "7 blocks": []}},
    "loss": {
        "seeds": [0, 1, 2],
        "levels": {
            "lambda=0": ["loss.mix=0.0"],
            "lambda=0.25": ["loss.mix=0.25"],
            "lambda=0.5": [],
            "plain CE": ["loss.kind=ce"],
        },
    },
}


def _study(root, name="tiny", rows=None, **extra):
    (root / "base.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {"train": "folder:photos", "size": 16, "batch_size": 4},
                "model": {"name": "eccv16", "width": 0.125},
                "loss": {"kind": "rebalanced_ce"},
            }
        )
    )
    study = {
        "name": name,
        "base": "base.yaml",
        "train_images": 1000,
        "results_root": str(root / "docs"),
        "baselines": ["gray", "mean"],
        "evaluate": [
            {"name": "cifar", "data": "cifar10@test"},
            {"name": "photos", "data": "folder:bsds500/images/test"},
        ],
        "headline": ["loss"],
        "factors": FACTORS,
        "findings": {
            "batchnorm": {"papers": "Zhang et al. use BatchNorm.", "expect": "on", "otherwise": "tiny images."},
            "depth": {"papers": "Seven blocks.", "expect": "7 blocks", "otherwise": "one seed."},
            "loss": {"papers": "Rebalancing helps.", "expect": "lambda=0.25", "otherwise": "short training."},
        },
    } | extra
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    if rows is not None:
        (root / "docs" / name).mkdir(parents=True, exist_ok=True)
        with open(root / "docs" / name / "results.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    path = _study(root, rows=_rows())
    return path, write_report(path).read_text()


def test_levels_are_compared_with_the_bases_all_seed_mean(report):
    path, text = report
    numbers = StudyNumbers(load_study(path), _rows())
    depth = next(f for f in numbers.study.factors if f.name == "depth")
    six = numbers.comparison(depth, "6 blocks", "cifar", "auc_rebalanced")
    assert six.difference == pytest.approx(
        BASE_SEEDS["cifar"][0] + 2.0 - np.mean(BASE_SEEDS["cifar"])
    )  # not +2.0 (seed 0)
    assert not six.tested and "| 6 blocks | +1.80 (one seed: not tested) |" in text
    assert "| 7 blocks (base) | 3 |" in text  # the base level shows the base's three seeds, though depth ran one
    depth_finding = next(line for line in text.splitlines() if line.startswith("**depth.**"))
    assert (
        "`6 blocks` has a higher mean than `7 blocks` on one seed: not tested" in depth_finding
        and "does not agree" not in depth_finding
    )
    # batchnorm off is called worse and nothing better than the papers' `on`: consistent with them, not agreement
    batchnorm_finding = next(line for line in text.splitlines() if line.startswith("**batchnorm.**"))
    assert "Ours is consistent with it on cifar: no level is called better than `on`." in batchnorm_finding
    assert "agrees" not in batchnorm_finding
    # the papers' lambda=0.25 is higher but not called, and no other level is called better: not confirmed
    loss_finding = next(line for line in text.splitlines() if line.startswith("**loss.**"))
    assert "Ours does not confirm it on cifar: `lambda=0.25` is not called better than the base (+0.23" in loss_finding
    assert "does not agree" not in loss_finding and "Likely reason: short training." in loss_finding


def test_p_values_are_holm_corrected_over_every_comparison_of_the_study(report):
    path, text = report
    numbers = StudyNumbers(load_study(path), _rows())
    tested = [c for c in numbers.comparisons.values() if c.tested]
    assert (
        numbers.tested == len(tested) == 4 * 2 * 5 + 4 * 1
    )  # 4 tested levels x 2 sets x 5 measures, + classifier on one set
    assert [c.p_holm for c in tested] == pytest.approx(holm([c.p for c in tested]))
    batchnorm = next(f for f in numbers.study.factors if f.name == "batchnorm")
    off = numbers.comparison(batchnorm, "off", "cifar", "auc_rebalanced")
    assert off.called and not off.better and off.p_holm > off.p
    assert f"{numbers.tested} here" in text and "| batchnorm | off | cifar | rebalanced AuC |" in text
    assert f"{numbers.tested} comparisons tested (of {len(numbers.comparisons)}; the rest have one seed); " in text
    assert "**-2.98 (" in text  # the called cell is bold: difference, raw / Holm p


def test_every_measure_gets_a_verdict_and_a_mixed_one_says_so(report):
    _, text = report
    verdict = next(line for line in text.splitlines() if line.startswith("- `off`:"))
    assert "worse on rebalanced AuC" in verdict and "better on PSNR" in verdict
    assert "worse on colourfulness distance to the truth" in verdict
    assert (
        "It helps one measure and hurts another: better on PSNR, worse on colourfulness distance to the truth, raw AuC and rebalanced AuC."
        in verdict
    )
    assert "- `6 blocks`: on cifar, one seed: not tested; on photos, one seed: not tested." in text
    assert "0 of 44 trained runs' rows have them" in text and "Test-set interval: none yet" in text


def test_rows_written_since_false_colour_and_intervals_give_them_and_older_rows_stay(tmp_path):
    """Seeds 1 and 2 as a runner that measures false colour and test-set intervals writes them, seed 0 as an
    older one did: false colour is compared on the seeds that have it, and the interval table is drawn."""
    rows = _rows()
    for row in rows:
        if row["factor"] != "baseline" and row["seed"] != 0:
            worse = row["factor"] == "batchnorm" and row["level"] == "off"
            row["false_color"] = (0.09 if worse else 0.05) + row["seed"] / 1000
            row["interval_auc_rebalanced"] = f"{row['auc_rebalanced'] - 0.4} {row['auc_rebalanced'] + 0.4}"
            row["interval_false_color"] = f"{row['false_color'] - 0.01} {row['false_color'] + 0.01}"
    text = write_report(_study(tmp_path, rows=rows)).read_text()
    assert "24 of 44 trained runs' rows have them" in text and "--refresh" in text
    assert "| cifar | rebalanced AuC | 0.20 | ±0.40 (12) |" in text  # sd over the base's 3 seeds; 12 rows with one
    assert "| cifar | false colour | 0.0707% | ±1% (12) |" in text  # sd over the 2 seeds that have it
    off = next(line for line in text.splitlines() if line.startswith("| off | **"))
    assert "**+4% (<0.001 / 0.014)**" in off  # batchnorm off against the base's seeds 1-2, called


def test_compute_budget_protocol_and_ordered_sweeps(report):
    path, text = report
    assert "| on (base) | 3 | 2.000e+06 (x1.00) |" in text
    folder = load_study(path).results_dir
    for eval_set in ("cifar", "photos"):  # one panel per factor against compute, a figure per evaluation set
        assert f"![cost on {eval_set}](cost-{eval_set}.webp)" in text and (folder / f"cost-{eval_set}.webp").is_file()
    assert (
        "On photos, the base's raw AuC falls below gray's (90.00) along the budget curve at 2,000 images (89.50)."
        in text
    )
    assert "the model sees the photo's L resized to its input size (16 x 16 px)" in text
    assert "segment accuracy uses BSDS500's human segmentations" in text
    study = load_study(path)
    loss, batchnorm = (next(f for f in study.factors if f.name == n) for n in ("loss", "batchnorm"))
    assert sweep(study, loss) == {"lambda=0": 0.0, "lambda=0.25": 0.25, "lambda=0.5": 0.5}  # plain CE is not on it
    assert sweep(study, batchnorm) == {}
    assert "Along `lambda=0` → `lambda=0.25` → `lambda=0.5` on cifar: rebalanced AuC" in text
    assert "colourfulness 24.00 → 24.00 → 24.00 (not monotonic" in text


def test_a_study_with_no_rows_says_so_and_is_set_against_the_one_it_reruns(tmp_path):
    _study(tmp_path, "short", rows=_rows())
    longer = _study(tmp_path, "longer", findings="short.yaml", train_images=4000)
    text = write_report(longer).read_text()
    assert "**No rows yet**" in text and "| batchnorm | cifar | on 63.70 > off 60.72 |  | no rows yet |" in text
    partial = [r for r in _rows() if r["factor"] in ("batchnorm", "baseline")]
    for row in partial:
        if row["level"] == "off" and row["eval_set"] == "photos":
            row["auc_rebalanced"] = 70.0
    _study(tmp_path, "longer", rows=partial, findings="short.yaml", train_images=4000)
    text = write_report(longer).read_text()
    assert "| batchnorm | cifar | on 63.70 > off 60.72 | on 63.70 > off 60.72 | holds; no change called |" in text
    assert (
        "| batchnorm | photos | on 65.80 > off 62.82 | off 70.00 > on 65.80 | changes; change called: `off` |" in text
    )
    # the difference from each study's own base mean, with each study's own p, and the change between them
    # tested (Holm over the table's 2 changes): off crosses the base on photos, and that change is called
    same = (
        "| batchnorm | off | cifar | **-2.98 (<0.001 / 0.002)** | **-2.98 (<0.001 / <0.001)** | +0.00 (1.000 / 1.000) |"
    )
    assert same + " same |" in text
    crosses = "| batchnorm | off | photos | **-2.98 (<0.001 / <0.001)** | **+4.20 (<0.001 / <0.001)** | **+7.18 (<0.001 / <0.001)** |"
    assert crosses + " crosses |" in text and "Holm's correction over the 2 changes of this table" in text
    assert "| loss | lambda=0 | photos | -0.47 (0.006 / 0.214) |  |  | no rows yet |" in text
    assert "11 comparisons tested; 8 have p <= 0.05 before Holm's correction, 8 after it." in text  # one seed nowhere
    # a factor with only the base's rows says so, and sets nothing against the papers' expected base
    assert "only `7 blocks` has rows so far (rebalanced AuC 63.70 ± 0.20); no level is tested." in text
    assert "On cifar, no level but `7 blocks` has rows yet: nothing to set against it." in text
    # the cost figure sets each level beside the same level at the other budget
    assert "A hollow point joined to a level is the same level in `short` (1,000 training images)" in text


def test_the_report_regenerates_byte_identically(tmp_path):
    outputs = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        path = _study(tmp_path / folder, rows=_rows())
        readme = write_report(path)
        outputs.append(
            {p.name: p.read_bytes() for p in sorted(readme.parent.iterdir()) if p.suffix in (".md", ".webp")}
        )
    assert outputs[0] == outputs[1] and len([n for n in outputs[0] if n.endswith(".webp")]) >= 6
    shutil.rmtree(tmp_path / "two")


def test_a_figure_is_saved_as_a_lossless_webp_of_what_matplotlib_draws(tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    from polychrome.study.figures import SAVE, save

    figure = Figure(figsize=(3, 2))
    figure.subplots().plot([0, 1, 3], [2, 0, 1], color="C1")
    figure.savefig(tmp_path / "drawn.png", **SAVE)
    save(figure, tmp_path / "saved.webp")
    drawn = np.asarray(Image.open(tmp_path / "drawn.png").convert("RGB"))
    saved = Image.open(tmp_path / "saved.webp")
    assert saved.format == "WEBP" and np.array_equal(np.asarray(saved.convert("RGB")), drawn)


def test_the_study_reads_measures_from_the_one_table():
    """Every measure a study records is an entry of metrics.MEASURES, a verdict's direction is the table's,
    and each verdict measure has its test-set interval column."""
    from polychrome.metrics import MEASURES
    from polychrome.study.rows import COLUMNS, INTERVAL_MEASURES
    from polychrome.study.summary import VERDICT_MEASURES

    identity = {
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
        "checkpoint_images",
        "temperature",
        "eval_s",
    }
    intervals = {f"interval_{m}" for m in INTERVAL_MEASURES}
    assert set(COLUMNS) - identity - intervals <= set(MEASURES)
    assert tuple(m.column for m in VERDICT_MEASURES) == INTERVAL_MEASURES
    for measure in VERDICT_MEASURES:
        assert MEASURES[measure.column].better in ("higher", "lower")
    assert {m.column: m.higher_is_better for m in VERDICT_MEASURES}["psnr"] is True
    assert {m.column: m.higher_is_better for m in VERDICT_MEASURES}["false_color"] is False


def test_a_base_whose_copies_come_from_different_trainings_is_flagged_before_any_finding(tmp_path, report):
    """A base run retrained (its checkpoint gone) has its copies under each factor rewritten one at a time; until
    all are, the copies disagree and the report says so rather than quietly take one."""
    assert "Not consistent yet" not in report[1]  # every copy of the fixture's base agrees
    retrained = ("loss", "lambda=0.5", 1, "cifar")
    rows = [
        r | {"auc_rebalanced": r["auc_rebalanced"] - 1.3}
        if (r["factor"], r["level"], r["seed"], r["eval_set"]) == retrained
        else r
        for r in _rows()
    ]
    path = _study(tmp_path, rows=rows)
    numbers = StudyNumbers(load_study(path), rows)
    assert numbers.base_disagreements() == [(1, "cifar")]
    assert numbers.base[("cifar", "auc_rebalanced")] == BASE_SEEDS["cifar"]  # the first copy met: batchnorm's
    text = write_report(path).read_text()
    assert (
        "**Not consistent yet:** the base's rows under different factors hold different numbers for seed 1 (cifar):"
        in text
    )
    assert text.index("Not consistent yet") < text.index("**batchnorm.**")


def test_a_decode_only_level_is_tested_paired_by_seed_and_the_report_names_each_test(tmp_path):
    # T 0.1 decodes the base's own three trainings and loses 0.8 at every seed, while the seeds spread by about 0.8:
    # Welch counts that shared spread as noise (p about 0.27), the paired test does not (p < 0.001); a trained level
    # stays Welch. (The screening's T 0.1 on BSDS500: -0.76 / -0.84 / -0.79 per seed, paired p 0.0009, Welch 0.027.)
    from scipy.stats import ttest_rel

    from polychrome.study.significance import paired_p

    rows = _rows()
    for e, base in BASE_SEEDS.items():
        spread = [b + 0.8 * (seed - 1) for seed, b in enumerate(base)]  # a wider base, to tell the tests apart
        for seed, auc in enumerate(spread):
            for row in rows:
                if (
                    row["factor"] in ("batchnorm", "loss")
                    and row["level"] in ("on", "lambda=0.5")
                    and row["seed"] == seed
                    and row["eval_set"] == e
                ):
                    row["auc_rebalanced"] = auc
            rows.append(_row("temperature", "0.1", seed, e, auc - 0.8 + (0.01, -0.02, 0.01)[seed], temperature=0.1))
            rows.append(_row("temperature", "0.38", seed, e, auc))
    temperature = {
        "decode_only": True,
        "seeds": [0, 1, 2],
        "levels": {"0.1": ["temperature=0.1"], "0.38": ["temperature=0.38"]},
    }
    path = _study(tmp_path, rows=rows, factors=FACTORS | {"temperature": temperature})
    numbers = StudyNumbers(load_study(path), rows)
    factor = next(f for f in numbers.study.factors if f.name == "temperature")
    cold = numbers.comparison(factor, "0.1", "cifar", "auc_rebalanced")
    base = [
        r["auc_rebalanced"] for r in rows if (r["factor"], r["level"], r["eval_set"]) == ("loss", "lambda=0.5", "cifar")
    ]
    level = [
        r["auc_rebalanced"] for r in rows if (r["factor"], r["level"], r["eval_set"]) == ("temperature", "0.1", "cifar")
    ]
    assert cold.test == "paired" and cold.p == pytest.approx(ttest_rel(level, base).pvalue) and cold.p < 0.001
    assert ttest_ind(level, base, equal_var=False).pvalue > 0.1  # what Welch would have said
    batchnorm = next(f for f in numbers.study.factors if f.name == "batchnorm")
    assert numbers.comparison(batchnorm, "off", "cifar", "auc_rebalanced").test == "welch"
    text = write_report(path).read_text()
    assert "(`temperature`) decode the base's own trainings, so each is tested against the base paired by seed" in text
    assert "Test: paired t by seed (each level decodes the base's own trainings)." in text and "Test: Welch." in text
    assert paired_p([1.0, 2.0], [1.0, 2.0]) == 1.0 and paired_p([1.0], [2.0]) is None
    with pytest.raises(ValueError, match="matched"):
        paired_p([1.0, 2.0], [1.0])
