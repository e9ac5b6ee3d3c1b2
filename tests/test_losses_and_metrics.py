import pytest
import torch

from polychrome.color import ab_gamut, encode_hard, encode_soft
from polychrome.losses import LossConfig, colour_loss, downsample_ab
from polychrome.metrics import AccuracyCurves, false_color

BINS = ab_gamut()


def random_ab(n=2, side=8, seed=0):
    return torch.rand(n, 2, side, side, generator=torch.Generator().manual_seed(seed)) * 120 - 60


def test_regression_losses_on_hand_computed_cases():
    ab = random_ab()
    everyone = torch.ones(2, dtype=torch.bool)
    assert colour_loss(ab, ab, everyone, LossConfig("mse")) == 0
    shifted = ab + 3.0
    assert torch.isclose(colour_loss(shifted, ab, everyone, LossConfig("mse")), torch.tensor(9.0))
    assert torch.isclose(colour_loss(shifted, ab, everyone, LossConfig("l1")), torch.tensor(3.0))
    assert torch.isclose(colour_loss(shifted, ab, everyone, LossConfig("sse")), torch.tensor(9.0 * 2 * 64))
    assert torch.isclose(colour_loss(shifted, ab, everyone, LossConfig("huber", huber_delta=10)), torch.tensor(4.5))


def test_targets_are_downsampled_to_the_output_resolution():
    ab = random_ab(side=8)
    output = downsample_ab(ab, (4, 4))
    assert torch.allclose(output[0, :, 0, 0], ab[0, :, :2, :2].mean(dim=(1, 2)))
    assert colour_loss(output, ab, torch.ones(2, dtype=torch.bool), LossConfig("mse")) < 1e-9


def test_grayscale_images_contribute_nothing():
    ab = random_ab()
    prediction = torch.zeros_like(ab)
    only_first = torch.tensor([True, False])
    loss = colour_loss(prediction, ab, only_first, LossConfig("mse"))
    assert torch.isclose(loss, (ab[0] ** 2).mean())
    logits = torch.randn(2, 313, 8, 8, requires_grad=True)
    none = colour_loss(logits, ab, torch.zeros(2, dtype=torch.bool), LossConfig("ce"), BINS)
    assert none == 0
    none.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_cross_entropy_is_smallest_at_the_soft_target():
    ab = random_ab()
    everyone = torch.ones(2, dtype=torch.bool)
    target = encode_soft(ab, BINS).to_dense(313)
    perfect = colour_loss(torch.log(target + 1e-12), ab, everyone, LossConfig("ce"), BINS)
    entropy = -(target * torch.log(target + 1e-12)).sum(1).mean()
    assert torch.isclose(perfect, entropy, atol=1e-4)
    assert colour_loss(torch.randn(2, 313, 8, 8), ab, everyone, LossConfig("ce"), BINS) > perfect


def test_rebalanced_ce_weights_each_pixel_by_its_true_bin():
    ab = random_ab()
    everyone = torch.ones(2, dtype=torch.bool)
    logits = torch.randn(2, 313, 8, 8)
    plain = colour_loss(logits, ab, everyone, LossConfig("ce"), BINS)
    assert torch.isclose(colour_loss(logits, ab, everyone, LossConfig("rebalanced_ce"), BINS, torch.ones(313)), plain)
    weights = torch.rand(313) + 0.5
    per_pixel_weights = weights[encode_hard(ab, BINS)]
    scaled = colour_loss(logits, ab, everyone, LossConfig("rebalanced_ce"), BINS, weights)
    assert not torch.isclose(scaled, plain)
    with pytest.raises(ValueError, match="rebalancing weights"):
        colour_loss(logits, ab, everyone, LossConfig("rebalanced_ce"), BINS)
    assert per_pixel_weights.shape == (2, 8, 8)


def test_losses_check_the_head():
    ab = random_ab()
    with pytest.raises(ValueError, match="regression head"):
        colour_loss(torch.randn(2, 313, 8, 8), ab, torch.ones(2, dtype=torch.bool), LossConfig("mse"))
    with pytest.raises(ValueError, match="classification head"):
        colour_loss(torch.randn(2, 2, 8, 8), ab, torch.ones(2, dtype=torch.bool), LossConfig("ce"), BINS)
    with pytest.raises(ValueError, match="loss kind must be one of"):
        LossConfig("gan")


def test_perfect_prediction_scores_100():
    ab = random_ab()
    curves = AccuracyCurves(BINS)
    curves.update(ab, ab)
    scores = curves.auc()
    assert scores["auc_raw"] == pytest.approx(100.0) and scores["auc_rebalanced"] == pytest.approx(100.0)
    assert scores["mean_ab_error"] == 0


def test_a_shift_by_d_moves_the_curve_by_exactly_d():
    ab = random_ab()
    curves = AccuracyCurves(BINS)
    curves.update(ab + torch.tensor([6.0, 8.0]).view(1, 2, 1, 1), ab)  # error exactly 10 everywhere
    raw, rebalanced = curves.curves()
    assert (raw[:10] == 0).all() and (raw[10:] == 1).all()
    assert torch.equal(raw, rebalanced)
    # Area: trapezoid over t = 0..150 of a step at 10, divided by 150.
    assert curves.auc()["auc_raw"] == pytest.approx((140 + 0.5) / 150 * 100)


def test_rebalanced_auc_matches_a_direct_slow_implementation():
    generator = torch.Generator().manual_seed(5)
    curves = AccuracyCurves(BINS)
    truths, predictions = [], []
    for _ in range(3):  # streamed in batches
        truth = torch.randn(2, 2, 6, 6, generator=generator) * 30
        prediction = truth + torch.randn(2, 2, 6, 6, generator=generator) * 25
        curves.update(prediction, truth)
        truths.append(truth)
        predictions.append(prediction)
    truth, prediction = torch.cat(truths), torch.cat(predictions)
    error = (prediction - truth).norm(dim=1).flatten().double()
    bins = encode_hard(truth, BINS).flatten()
    thresholds = torch.arange(151, dtype=torch.float64)
    raw = torch.stack([(error <= t).double().mean() for t in thresholds])
    frequency = torch.bincount(bins, minlength=313).double()
    weight = 1.0 / frequency[bins]
    rebalanced = torch.stack([(weight * (error <= t)).sum() / weight.sum() for t in thresholds])
    ours_raw, ours_rebalanced = curves.curves()
    assert torch.allclose(ours_raw, raw) and torch.allclose(ours_rebalanced, rebalanced)
    assert curves.pixels == len(error)


def test_false_color_counts_colour_that_is_worse_than_gray_by_the_margin():
    truth = torch.tensor([[-40.0, 40.0], [-40.0, 40.0], [-40.0, 40.0], [0.0, 0.0], [0.0, 0.0], [-40.0, 40.0]]).T[
        None, :, :, None
    ]
    predicted = torch.tensor(
        [
            [0.0, 0.0],  # gray: never false colour
            [40.0, 20.0],  # a red patch on a green leaf: 82.5 away, gray 56.6 -> false
            [10.0, 20.0],  # brown on green: about as far as gray is -> not counted
            [15.0, 15.0],  # a cast of chroma 21.2 on a neutral surface -> false
            [10.0, 10.0],  # chroma 14.1 on neutral: under the margin
            [-38.0, 41.0],
        ]  # nearly right
    ).T[None, :, :, None]
    assert false_color(predicted, truth)[0, :, 0].tolist() == [False, True, False, True, False, False]
    assert false_color(predicted, truth, margin=10)[0, :, 0].tolist() == [False, True, False, True, True, False]
