import pytest
import torch
from torch import nn

from polychrome.color import ab_gamut
from polychrome.hints import GlobalHint, global_hint_vector
from polychrome.models import BackboneError, build_model, count_parameters, create_model, decode_output, list_models

L = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 100
OTHER_L = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 100


NEEDS_WEIGHTS = {"fusion_inception"}  # built in test_fusion.py with a local weights file


def test_models_that_need_weights_say_so():
    for name in NEEDS_WEIGHTS:
        with pytest.raises(BackboneError, match="backbone_weights"):
            create_model(name)


# The side of each registered model's output for L of side 32: its output stride is part of its architecture
# (ECCV16's decoder stops at a quarter of the input, fusion's classification head at a half).
OUTPUT_SIDE = {
    "eccv16": 8,
    "eccv16_bilinear": 8,
    "eccv16_maxpool": 8,
    "eccv16_nobn": 8,
    "eccv16_nodilation": 8,
    "eccv16_regress": 8,
    "eccv16_tiny": 8,
    "fusion": 32,
    "fusion_classify": 16,
    "gray": 32,
    "levin": 32,
    "mean": 32,
    "random": 32,
    "siggraph17": 32,
    "unet": 32,
    "unet_guided": 32,
}
NARROWABLE = {name for name in OUTPUT_SIDE if name.startswith(("eccv16", "fusion"))}
IGNORE_THE_PHOTO = {"gray", "mean"}  # baselines whose colours are the same for every photo, by design
UNUSED_BY_DESIGN = {"siggraph17": "model_class."}  # in the released state dict, unused by its forward


def test_every_registered_model_has_an_expected_output():
    assert set(list_models()) - NEEDS_WEIGHTS == set(OUTPUT_SIDE)


def every_hint(model, n: int = 2, side: int = 32) -> tuple:
    """The hint inputs its card lists, all given: two clicks of different colours on each photo (with one, Levin
    spreads its colour everywhere whatever L is) and a reference."""
    hints: list = []
    if "ab_hints" in model.card.inputs:
        ab, mask = torch.zeros(n, 2, side, side), torch.zeros(n, 1, side, side)
        ab[:, :, 4:8, 20:24] = torch.tensor([50.0, -30.0])[:, None, None]
        ab[:, :, 24:28, 4:8] = torch.tensor([-20.0, 60.0])[:, None, None]
        mask[:, :, 4:8, 20:24] = mask[:, :, 24:28, 4:8] = 1
        hints += [ab, mask]
    if "global_hints" in model.card.inputs:
        hints.append(global_hint_vector([GlobalHint(torch.full((313,), 1 / 313), 30.0)] * n))
    return tuple(hints)


def calibrate(network: nn.Module, *inputs) -> None:
    """BatchNorm's running statistics from one batch, then eval mode: a fresh network's (mean 0, variance 1)
    shrink its activations block by block until its output hardly depends on its input."""
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: after one batch, that batch's statistics
    network.train()
    with torch.no_grad():
        network(*inputs)
    network.eval()


@pytest.mark.parametrize("name", sorted(OUTPUT_SIDE))
def test_every_registered_model_builds_and_predicts(name):
    """Its output has the shape its card implies, decodes to finite ab inside the gamut, depends on the photo
    (unless it is a constant baseline), is the same for a photo alone as in a batch, and every learned parameter
    reaches it."""
    torch.manual_seed(0)
    # Narrowed where the config has a width, for speed: the variants differ in structure, which is kept.
    options = {"size": 32} if name in ("random", "mean") else {"width": 0.25} if name in NARROWABLE else {}
    model = build_model(name, **options)
    network = model.network
    if hasattr(network, "fit"):
        network.fit([torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)])
    hints, side = every_hint(model), OUTPUT_SIDE[name]
    calibrate(network, L, *hints)
    output = network(L, *hints)
    bins = ab_gamut(model.card.gamut)
    channels = len(bins) if model.card.head == "classification" else 2
    assert output.shape == (2, channels, side, side)

    ab = decode_output(output.detach(), model.card.head, network.bins, model.card.temperature)
    assert ab.shape == (2, 2, side, side) and torch.isfinite(ab).all()
    # The annealed mean is a weighted mean of bin centres; a regression head is tanh x 110.
    if model.card.head == "classification":
        low, high = bins.amin(0)[:, None, None], bins.amax(0)[:, None, None]
    else:
        low, high = torch.tensor(-110.0), torch.tensor(110.0)
    assert (ab >= low - 1e-3).all() and (ab <= high + 1e-3).all()

    with torch.no_grad():
        alone = network(L[1:], *(hint[1:] for hint in hints))
        other = network(OTHER_L, *hints)
    torch.testing.assert_close(alone, output[1:].detach(), rtol=1e-4, atol=1e-3)  # no photo leaks into another
    # A network that ignores its input gives bit-identical outputs; an untrained deep one without BatchNorm
    # (eccv16_nobn) depends on it only by about 1e-6 of its output, so any difference counts.
    assert torch.equal(other, output.detach()) == (name in IGNORE_THE_PHOTO)

    unused = UNUSED_BY_DESIGN.get(name)
    learned = [
        (key, p) for key, p in network.named_parameters() if p.requires_grad and not (unused and key.startswith(unused))
    ]
    if learned:
        output.float().pow(2).mean().backward()
        unreached = [key for key, p in learned if p.grad is None or not p.grad.abs().sum() > 0]
        assert not unreached, f"parameters the output does not depend on: {unreached[:5]}"


def test_eccv16_is_zhangs_network():
    model = create_model("eccv16")
    # 32,236,011 in the release, 626 of them the fixed 313 -> 2 projection we replace by decoding.
    assert count_parameters(model) == 32_236_011 - 313 * 2
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 12
    assert [c.stride[0] for c in convs].count(2) == 3 and convs[1].stride == (2, 2) and convs[6].stride == (2, 2)
    assert [c.dilation[0] for c in convs] == [1] * 10 + [2] * 6 + [1] * 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.encoder.modules()) == 7
    assert isinstance(model.decoder[0], nn.ConvTranspose2d) and model.decoder[0].kernel_size == (4, 4)
    assert model.classifier.out_channels == 313
    assert model(L).shape == (2, 313, 8, 8)  # output stride 4


def test_ablations_are_config_fields():
    tiny = {"width": 0.125}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in create_model("eccv16_nobn", **tiny).modules())
    assert all(
        m.dilation == (1, 1) for m in create_model("eccv16_nodilation", **tiny).modules() if isinstance(m, nn.Conv2d)
    )
    maxpool = create_model("eccv16_maxpool", **tiny)
    assert sum(isinstance(m, nn.MaxPool2d) for m in maxpool.modules()) == 3
    assert all(m.stride == (1, 1) for m in maxpool.encoder.modules() if isinstance(m, nn.Conv2d))
    bilinear = create_model("eccv16_bilinear", **tiny)
    assert any(isinstance(m, nn.Upsample) and m.mode == "bilinear" for m in bilinear.modules())
    assert create_model("eccv16", width=0.25).encoder[0][0].out_channels == 16
    assert len(create_model("eccv16", blocks=6, **tiny).encoder) == 6
    assert len(create_model("eccv16", blocks=8, **tiny).encoder) == 8
    thin = create_model("eccv16", convs=1, **tiny)
    assert all(sum(isinstance(m, nn.Conv2d) for m in block) == 1 for block in thin.encoder)
    for downsamples, upsamples, side in [(3, 1, 8), (2, 1, 16), (3, 3, 32), (0, 0, 32), (3, 0, 4)]:
        model = create_model("eccv16", downsamples=downsamples, upsamples=upsamples, **tiny)
        assert model(L).shape[-1] == side
    nearest = create_model("eccv16", upsample="nearest", upsamples=2, **tiny)
    assert nearest(L).shape[-1] == 16
    regress = create_model("eccv16_regress", **tiny)
    assert regress.head == "regression" and regress(L).shape == (2, 2, 8, 8)


def test_bad_names_and_options_list_the_choices():
    with pytest.raises(ValueError, match=r"choose one of: .*eccv16"):
        create_model("eccv61")
    with pytest.raises(ValueError, match=r"valid options: .*width"):
        create_model("eccv16", widht=0.5)
    with pytest.raises(ValueError, match="downsample must be one of stride, maxpool"):
        create_model("eccv16", downsample="avgpool")
    with pytest.raises(ValueError, match="upsamples"):
        create_model("eccv16", downsamples=1, upsamples=2)
    with pytest.raises(ValueError, match="head must be one of"):
        create_model("eccv16", head="gan")


def test_unset_overrides_are_ignored():
    assert create_model("eccv16", width=0.25, head=None).head == "classification"


def test_the_global_hint_enters_after_conv4_as_in_zhang_2017():
    """Zhang et al. 2017 add their global hints network's output (512 channels) to conv4: encoder block 3. Blocks
    conv1-conv4 compute the same with and without a reference; conv5 sees conv4's output plus the projected hint
    at every position."""
    torch.manual_seed(0)
    model = create_model("eccv16", width=0.125, global_hints=True).eval()
    assert model.config.global_block == 3 and model.global_injection.project[-1].out_features == 512 // 8
    seen: dict[int, list] = {}
    for index, block in enumerate(model.encoder):
        block.register_forward_hook(
            lambda module, inputs, output, index=index: seen.setdefault(index, []).append((inputs[0], output))
        )
    reference = global_hint_vector([GlobalHint(torch.full((313,), 1 / 313), 30.0)] * 2)
    with torch.no_grad():
        model(L)
        model(L, None, None, reference)
        added = model.global_injection.project(reference)[:, :, None, None]
    for index in range(4):
        assert torch.equal(seen[index][0][1], seen[index][1][1]), f"block {index} saw the reference"
    assert torch.equal(seen[4][0][0], seen[3][0][1])  # without a reference conv5 takes conv4's output as it is
    torch.testing.assert_close(seen[4][1][0], seen[3][1][1] + added)


def test_the_global_hint_block_is_a_config_field():
    """global_block=2 is where networks built before the field existed took it (after conv3, 256 channels)."""
    model = create_model("eccv16", width=0.125, global_hints=True, global_block=2)
    assert model.global_injection.project[-1].out_features == 256 // 8
    shallow = create_model("eccv16", width=0.125, blocks=2, downsamples=2, global_hints=True, global_block=1)
    reference = global_hint_vector([GlobalHint(torch.full((313,), 1 / 313), 30.0)] * 2)
    with torch.no_grad():
        assert not torch.equal(shallow.eval()(L, None, None, reference), shallow(L))


@pytest.mark.parametrize(
    "options, got",
    [
        ({"blocks": 1, "downsamples": 1}, "got 3 (blocks=1)"),
        ({"blocks": 3}, "got 3 (blocks=3)"),
        ({"global_block": 7}, "got 7"),
        ({"global_block": -1}, "got -1"),
    ],
)
def test_a_global_hint_block_outside_the_encoder_is_refused(options, got):
    with pytest.raises(ValueError, match=r"global_block must be between 0 and blocks - 1 \(\d+\)") as error:
        create_model("eccv16", width=0.125, global_hints=True, **options)
    assert got in str(error.value)
    create_model("eccv16", width=0.125, **options)  # without global hints the field is not used


def test_initialise_by_name_starts_every_shared_layer_of_two_arms_alike():
    # Common random numbers for a study: the base and its one-conv arm at one seed start from the same weights in
    # each layer they share by name and shape, whatever was drawn from the global generator before each was built;
    # another seed draws other weights, and the global generator is left where it was.
    from polychrome.models import initialise_by_name

    torch.manual_seed(0)
    base = initialise_by_name(create_model("eccv16", width=0.25), seed=7)
    torch.manual_seed(1)
    torch.rand(1000)
    thin = create_model("eccv16", width=0.25, convs=1)
    state = torch.get_rng_state()
    initialise_by_name(thin, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    a, b = base.state_dict(), thin.state_dict()
    shared = [k for k in b if k in a and a[k].shape == b[k].shape and k.endswith("weight")]
    assert len(shared) >= 10 and all(torch.equal(a[k], b[k]) for k in shared)
    other = initialise_by_name(create_model("eccv16", width=0.25, convs=1), seed=8).state_dict()
    assert not torch.equal(other["encoder.0.0.weight"], b["encoder.0.0.weight"])


def test_initialise_by_name_keeps_frozen_layers_and_refuses_a_layer_it_cannot_redraw():
    from polychrome.models import initialise_by_name

    frozen = nn.Linear(4, 4).requires_grad_(False)
    kept = frozen.weight.clone()
    initialise_by_name(nn.Sequential(frozen, nn.Linear(4, 4)), seed=0)
    assert torch.equal(frozen.weight, kept)

    class Gain(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(3))

    with pytest.raises(ValueError, match=r"reset_parameters.*common_init"):
        initialise_by_name(nn.Sequential(Gain()), seed=0)
