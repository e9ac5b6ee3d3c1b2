import pytest
import torch
from torch import nn

from polychrome.models import BackboneError, count_parameters, create_model, list_models

L = torch.rand(2, 1, 32, 32) * 100


NEEDS_WEIGHTS = {"fusion_inception"}  # built in test_fusion.py with a local weights file


def test_models_that_need_weights_say_so():
    for name in NEEDS_WEIGHTS:
        with pytest.raises(BackboneError, match="backbone_weights"):
            create_model(name)


@pytest.mark.parametrize("name", sorted(set(list_models()) - NEEDS_WEIGHTS))
def test_every_registered_model_builds_and_predicts(name):
    model = create_model(name, **({"size": 32} if name in ("random", "mean") else {}))
    if hasattr(model, "fit"):
        model.fit([torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)])
    model.eval()
    with torch.no_grad():
        ab = model.predict_ab(L)
    assert ab.shape[:2] == (2, 2) and torch.isfinite(ab).all()
    assert ab.abs().max() <= 110 + 1e-3


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
