import dataclasses
import json
import math

import pytest
import safetensors.torch
import timm
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from polychrome.cli import main
from polychrome.color import ab_gamut, is_grayscale, uint8_to_lab
from polychrome.data import SkipUnreadable, collate_images, eval_transform, open_dataset
from polychrome.evaluate import evaluate, load_classifier
from polychrome.metrics import (
    CURVES,
    MEASURES,
    AccuracyCurves,
    SegmentAccuracy,
    TruthCache,
    colorfulness,
    metrics_for,
    nazeri_correct,
    psnr,
    segment_median_errors,
    ssim,
)
from polychrome.models import Colorizer, as_loaded, load_model
from tests.conftest import measurement_stack, shared

RED = (200, 40, 40)


class Constant(Colorizer):
    """Predicts one ab everywhere: with a one-colour dataset, an oracle; shifted, a known error."""

    def __init__(self, ab):
        super().__init__(head="regression")
        self.register_buffer("ab", torch.tensor(ab, dtype=torch.float32).view(1, 2, 1, 1))

    def forward(self, lightness):
        return self.ab.expand(lightness.shape[0], 2, *lightness.shape[-2:])


def red_ab():
    return uint8_to_lab(torch.tensor(RED, dtype=torch.uint8).view(1, 3, 1, 1))[0, 1:, 0, 0].tolist()


@pytest.fixture
def red_folder(tmp_path):
    folder = tmp_path / "red"
    for i, size in enumerate([(20, 12), (16, 16), (9, 30)]):
        (folder / "warm").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, RED).save(folder / "warm" / f"{i}.png")
    (folder / "cold").mkdir()
    Image.new("RGB", (10, 10), (128, 128, 128)).save(folder / "cold" / "gray.png")
    (folder / "cold" / "broken.png").write_bytes(b"no")
    return folder


def test_colorfulness_on_hand_computed_images():
    gray = torch.full((1, 3, 4, 4), 90, dtype=torch.uint8)
    assert colorfulness(gray).item() == 0
    red = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 255
    assert colorfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5))
    half = red.clone()
    half[..., :2] = 0  # rg: half 255, half 0 -> sigma 127.5; yb: half 127.5, half 0 -> sigma 63.75
    expected = math.hypot(127.5, 63.75) + 0.3 * math.hypot(127.5, 63.75)
    assert colorfulness(half).item() == pytest.approx(expected)


def test_psnr_ssim_and_nazeri_on_hand_computed_images():
    image = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(psnr(image, image)).all() and torch.allclose(
        ssim(image, image), torch.ones(2, dtype=torch.float64)
    )
    brighter = (image.int() + 5).clamp(max=255).to(torch.uint8)
    mse = ((brighter.double() - image.double()) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(brighter, image), 10 * torch.log10(255**2 / mse))
    assert (ssim(brighter, image) < 1).all()
    lab = torch.zeros(1, 3, 1, 4)
    other = lab + torch.tensor([[2.0], [4.4], [-4.4]]).view(1, 3, 1, 1)
    other[..., 1] += torch.tensor([2.1, 0, 0]).view(1, 3, 1)
    other[..., 2] += torch.tensor([0, 0.1, 0]).view(1, 3, 1)
    other[..., 3] += torch.tensor([0, 0, -0.1]).view(1, 3, 1)
    assert nazeri_correct(other, lab)[0, 0].tolist() == [True, False, False, False]


def test_segment_majority_errors():
    error = torch.tensor([[1.0, 2.0, 30.0], [4.0, 50.0, 60.0]])
    segments = torch.tensor([[0, 0, 0], [1, 1, 1]])
    # segment 0: errors 1, 2, 30 -> the majority (2 of 3) is within 2; segment 1: 4, 50, 60 -> within 50
    assert segment_median_errors(error, segments).tolist() == [2.0, 50.0]
    even = segment_median_errors(torch.tensor([[1.0, 9.0]]), torch.tensor([[3, 3]]))
    assert even.tolist() == [9.0]  # 1 of 2 is not a majority
    measure = SegmentAccuracy(threshold=10)  # the same errors as a prediction off in a by them
    measure.update(
        torch.stack([error, torch.zeros_like(error)])[None], torch.zeros(1, 2, 2, 3), [segments], torch.tensor([False])
    )
    result = measure.compute()
    assert result["segment_accuracy"] == 0.5 and result["curve_segments"][50] == 1.0 and result["segments"] == 2
    assert result["segment_source"] == "slic"


def test_ssim_is_scikit_image_structural_similarity_with_the_papers_settings():
    """SSIM is scikit-image's on a CPU and kornia's, batched, on an accelerator: the same numbers (the
    accelerator's path is checked here on the CPU)."""
    from skimage.metrics import structural_similarity

    from polychrome.metrics.functional import ssim_kornia

    generator = torch.Generator().manual_seed(1)
    for side in ((11, 11), (24, 37)):
        truth = torch.randint(0, 256, (2, 3, *side), dtype=torch.uint8, generator=generator)
        predicted = (
            (truth.int() + torch.randint(-40, 40, truth.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
        )
        expected = [
            structural_similarity(
                p.permute(1, 2, 0).numpy(),
                t.permute(1, 2, 0).numpy(),
                channel_axis=2,
                data_range=255,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for p, t in zip(predicted, truth, strict=True)
        ]
        for measured in (ssim(predicted, truth), ssim_kornia(predicted, truth)):
            assert torch.allclose(measured, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)
    assert ssim(truth[..., :10, :], truth[..., :10, :]).isnan().all()  # no window fits: no SSIM


def test_an_oracle_scores_perfectly_and_bad_files_are_counted(red_folder):
    result = evaluate(Constant(red_ab()), f"folder:{red_folder}", size=8, workers=0)
    assert (result["images"], result["grayscale_skipped"], len(result["unreadable"])) == (3, 1, 1)
    assert result["pixels"] == 20 * 12 + 16 * 16 + 9 * 30  # each image at its own resolution
    assert result["mean_ab_error"] < 1e-4 and result["mean_ab_l1"] < 1e-4  # float32 round-off only
    assert result["auc_raw"] == pytest.approx(100) and result["auc_rebalanced"] == pytest.approx(100)
    assert math.isinf(result["psnr"]) and result["ssim"] == pytest.approx(1)
    assert result["pixel_accuracy_2pct"] == 1 and result["segment_accuracy"] == 1
    assert result["delta_colorfulness"] == pytest.approx(0, abs=1e-6)
    assert result["per_class"]["warm"]["images"] == 3 and result["per_class"]["warm"]["auc_raw"] == pytest.approx(100)


def test_gray_on_a_known_image_and_a_known_shift(red_folder):
    chroma = math.hypot(*red_ab())
    gray = evaluate(load_model("gray"), f"folder:{red_folder}", size=8, workers=0)
    assert gray["mean_ab_error"] == pytest.approx(chroma, rel=1e-5)
    assert gray["colorfulness"] == pytest.approx(0, abs=0.5)
    a, b = red_ab()
    shifted = evaluate(Constant([a + 6, b + 8]), f"folder:{red_folder}", size=8, workers=0)
    assert shifted["mean_ab_error"] == pytest.approx(10, abs=1e-3)
    raw = torch.tensor(shifted["curves"]["raw"])
    assert (raw[:10] == 0).all() and (raw[11:] == 1).all()  # the curve steps at exactly 10
    assert shifted["segment_accuracy"] == 1  # within 10 (the threshold) everywhere
    assert gray["tint"] == pytest.approx([0, 0], abs=1e-4) and gray["tint_truth"] == pytest.approx([a, b], rel=1e-4)
    assert gray["tint_error"] == pytest.approx(chroma, rel=1e-4) and shifted["tint_error"] == pytest.approx(
        10, abs=1e-3
    )
    assert shifted["tint"] == pytest.approx([a + 6, b + 8], rel=1e-4)
    assert gray["false_color"] == 0 and shifted["false_color"] == 0  # 10 off is nearer than gray, far from the margin
    opposite = evaluate(Constant([-a, -b]), f"folder:{red_folder}", size=8, workers=0)
    assert opposite["false_color"] == 1 and set(opposite["per_image_false_color"].values()) == {1.0}
    assert evaluate(Constant([a + 9, b + 8]), f"folder:{red_folder}", size=8, workers=0)["segment_accuracy"] == 0


@pytest.fixture
def varied_folder(tmp_path):
    """Four same-sized photos of different colours and shapes."""
    folder = tmp_path / "varied"
    folder.mkdir()
    y, x = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    for i in range(4):
        rgb = torch.stack([x * (60 + 60 * i), y * 200, (1 - x) * (200 - 40 * i)], dim=-1)
        Image.fromarray(rgb.to(torch.uint8).numpy()).save(folder / f"{i}.png")
    return folder


def test_prediction_spread_tells_a_model_that_ignores_its_input(red_folder, varied_folder, monkeypatch, capsys):
    assert evaluate(Constant([10, 20]), f"folder:{varied_folder}", size=16, workers=0)["prediction_spread"] == 0
    assert evaluate(load_model("default"), f"folder:{varied_folder}", workers=0)["prediction_spread"] > 1
    assert (
        evaluate(Constant([10, 20]), f"folder:{red_folder}", size=8, workers=0)["prediction_spread"] is None
    )  # no two of one size

    import polychrome.models

    monkeypatch.setattr(
        polychrome.models,
        "load_model",
        lambda name, *args: as_loaded(Constant([10, 20])) if name == "collapsed" else load_model(name),
    )
    assert (
        main(["compare", "--data", f"folder:{varied_folder}", "--models", "gray,collapsed,default", "--size", "16"])
        == 0
    )
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: collapsed predicts the same colours for every image")


def test_eval_size_and_limit(red_folder):
    result = evaluate(Constant(red_ab()), f"folder:{red_folder}", size=8, eval_size=6, workers=0, limit=2)
    assert result["images"] + result["grayscale_skipped"] + len(result["unreadable"]) == 2
    assert result["protocol"]["eval_size"] == 6


@pytest.fixture
def classifier_dir(tmp_path):
    """A classifier run folder as ``task: classify`` exports it: an untrained ResNet-18 for two classes."""
    folder = tmp_path / "classifier"
    folder.mkdir()
    network = timm.create_model("resnet18", pretrained=False, num_classes=2)
    safetensors.torch.save_file(network.state_dict(), folder / "classifier.safetensors")
    (folder / "classifier.json").write_text(
        json.dumps({"arch": "resnet18", "num_classes": 2, "classes": ["cold", "warm"], "size": 16})
    )
    return folder


def test_classifier_accuracy_beside_gray_and_truth(red_folder, classifier_dir, tmp_path):
    classifier = load_classifier(classifier_dir)
    # One frozen record of the network and how to feed it, nothing attached to the timm module
    assert (classifier.size, classifier.source, tuple(classifier.mean.shape)) == (
        16,
        str(classifier_dir.resolve()),
        (1, 3, 1, 1),
    )
    assert not [name for name in vars(classifier.module) if name.startswith("polychrome")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        classifier.size = 32
    result = evaluate(Constant(red_ab()), f"folder:{red_folder}", size=8, workers=0, classifier=classifier)
    # The oracle's colourisations are the true images, so the classifier must agree on both.
    assert result["classifier_accuracy"] == result["classifier_accuracy_truth"]
    assert result["classifier_accuracy_gray"] is not None
    with pytest.raises(ValueError, match="task=classify"):
        load_classifier(tmp_path)


def test_bsds500_images_are_segmented_by_the_human_annotations():
    shared("bsds500")
    result = evaluate(load_model("gray"), "folder:bsds500/images/test", size=32, limit=2, workers=0)
    assert result["segment_source"] == "bsds500" and result["pixels"] == 2 * 481 * 321
    resized = evaluate(load_model("gray"), "folder:bsds500/images/test", size=32, eval_size=64, limit=2, workers=0)
    assert resized["segment_source"] == "slic"


@pytest.mark.slow
def test_gray_anchor_on_real_imagenet_photos_at_256():
    """Zhang et al. Table 1 gives gray 89.1 raw / 58.0 rebalanced AuC on ImageNet at 256x256."""
    shared("imagenette2-224")
    dataset = open_dataset("folder:imagenette2-224/train", eval_transform(256))
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:2000].tolist()
    curves = AccuracyCurves(ab_gamut())
    for batch in DataLoader(
        SkipUnreadable(Subset(dataset, chosen)), batch_size=64, num_workers=2, collate_fn=collate_images
    ):
        ab = uint8_to_lab(batch.images)[:, 1:]
        ab = ab[~is_grayscale(ab)]
        curves.update(torch.zeros_like(ab), ab)
    scores = curves.auc()
    assert 88.5 <= scores["auc_raw"] <= 90.5
    assert 56.0 <= scores["auc_rebalanced"] <= 60.0


def test_compare_writes_a_table_and_grids(red_folder, tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        main(
            [
                "compare",
                "--data",
                f"folder:{red_folder}",
                "--models",
                "gray,mean",
                "--fit-data",
                f"folder:{red_folder}",
                "--size",
                "8",
                "--workers",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = (out / "table.md").read_text()
    assert table.startswith("| model | images | mean_ab_error") and "| gray | 3 |" in table and "| mean | 3 |" in table
    assert {p.name for p in out.iterdir()} >= {
        "table.md",
        "table.csv",
        "results.json",
        "curves.png",
        "errors.png",
        "examples.png",
    }
    assert (
        main(
            [
                "evaluate",
                "--data",
                f"folder:{red_folder}",
                "--model",
                "gray",
                "--size",
                "8",
                "--workers",
                "0",
                "--out",
                str(tmp_path / "one"),
            ]
        )
        == 0
    )
    assert (tmp_path / "one" / "examples-worst.png").exists() and (tmp_path / "one" / "examples-best.png").exists()
    assert "protocol:" in capsys.readouterr().out


def test_examples_sets_how_many_photos_each_grid_shows(red_folder, tmp_path):
    from PIL import Image

    heights = []
    for count in (1, 3):
        out = tmp_path / str(count)
        assert (
            main(
                [
                    "evaluate",
                    "--data",
                    f"folder:{red_folder}",
                    "--model",
                    "gray",
                    "--size",
                    "8",
                    "--workers",
                    "0",
                    "--out",
                    str(out),
                    "--examples",
                    str(count),
                ]
            )
            == 0
        )
        heights.append(Image.open(out / "examples-random.png").height)
    assert heights[1] > 2 * heights[0]
    assert (
        main(
            [
                "evaluate",
                "--data",
                f"folder:{red_folder}",
                "--model",
                "gray",
                "--size",
                "8",
                "--workers",
                "0",
                "--out",
                str(tmp_path / "none"),
                "--examples",
                "0",
            ]
        )
        == 0
    )
    assert (tmp_path / "none" / "table.md").exists() and not list((tmp_path / "none").glob("examples*"))


def test_the_random_examples_are_the_same_photos_whatever_the_model():
    from polychrome.compare import random_images

    one, other = {i: float(i) for i in range(50)}, {i: float(-i) for i in range(50)}  # opposite error rankings
    assert random_images(one, 4) == random_images(other, 4) and len(set(random_images(one, 4))) == 4


def test_random_and_mean_fit_on_the_training_split_by_default(tmp_path):
    from polychrome.evaluate import default_fit_data

    assert default_fit_data(f"cifar10:{tmp_path}@test") == f"cifar10:{tmp_path}@train"
    assert default_fit_data(f"places365:{tmp_path}@val") == f"places365:{tmp_path}@train-standard"
    assert default_fit_data(f"folder:{tmp_path}") is None
    with pytest.raises(ValueError, match="--fit-data"):
        load_model("random", None)


def test_what_depends_on_the_true_images_only_is_computed_once_and_gives_the_same_results(red_folder, classifier_dir):
    cache = TruthCache()
    fresh = evaluate(
        Constant(red_ab()),
        f"folder:{red_folder}",
        size=8,
        workers=0,
        classifier=load_classifier(classifier_dir),
        cache=cache,
    )
    assert sorted({key[0] for key in cache.kept}) == ["classify", "slic"]
    kept = dict(cache.kept)
    again = evaluate(
        Constant(red_ab()),
        f"folder:{red_folder}",
        size=8,
        workers=0,
        classifier=load_classifier(classifier_dir),
        cache=cache,
    )
    assert cache.kept.keys() == kept.keys()  # nothing new computed: the second classifier object is the same run
    assert {k: v for k, v in fresh.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    alone = evaluate(
        Constant(red_ab()), f"folder:{red_folder}", size=8, workers=0, classifier=load_classifier(classifier_dir)
    )
    assert {k: v for k, v in alone.items() if k != "seconds"} == {k: v for k, v in fresh.items() if k != "seconds"}


def test_every_measure_in_the_table_is_in_the_results_and_every_result_is_in_the_table(red_folder, classifier_dir):
    result = evaluate(
        Constant(red_ab()), f"folder:{red_folder}", size=8, workers=0, classifier=load_classifier(classifier_dir)
    )
    for name in MEASURES:
        assert name in (result["curves"] if name in CURVES else result) or CURVES.get(name) in result["curves"], name
    bookkeeping = {
        "model",
        "data",
        "protocol",
        "images",
        "grayscale_skipped",
        "unreadable",
        "pixels",
        "segment_threshold",
        "segment_source",
        "segments",
        "curves",
        "seconds",
    }
    assert set(result) - bookkeeping == set(MEASURES) - set(CURVES)


def test_the_measures_of_two_processes_merged_are_those_of_one_process_over_all_images(classifier_dir):
    """What DDP validation relies on: every metric's states reduce across processes (sum, cat or max) to
    exactly what one process measuring every image holds."""
    context = {"bins": ab_gamut(), "classes": ["a", "b"], "classifier": load_classifier(classifier_dir)}
    one, first, second = (metrics_for(list(MEASURES), **context) for _ in range(3))
    for seed in range(3):
        one.update(**measurement_stack(seed))
        (first if seed < 2 else second).update(**measurement_stack(seed))
    for name, metric in first.items():
        metric.merge_state(second[name])
    together, apart = (dict(sorted((k, v) for m in c.values() for k, v in m.compute().items())) for c in (one, first))
    assert together.keys() == apart.keys()
    for key, value in together.items():
        assert apart[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key
