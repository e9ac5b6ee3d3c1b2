import pytest
import safetensors.torch
import timm
import torch

from polychrome.color import uint8_to_lab
from polychrome.models import BackboneError, create_model

L = torch.rand(3, 1, 16, 16) * 100


def training_images(n=6, side=16, seed=0):
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_gray_predicts_no_colour():
    assert torch.equal(create_model("gray")(L), torch.zeros(3, 2, 16, 16))


def test_mean_is_the_per_pixel_mean_of_the_training_ab():
    images = training_images()
    model = create_model("mean", size=16).fit([images[:4], (images[4:], None)])
    expected = uint8_to_lab(images)[:, 1:].mean(0)
    assert torch.allclose(model(L)[1], expected, atol=1e-4)
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_random_copies_a_training_image_and_is_repeatable():
    images = training_images()
    model = create_model("random", size=16).fit([images])
    bank = uint8_to_lab(images)[:, 1:]
    out = model(L)
    for picture in out:
        assert any(torch.allclose(picture, candidate, atol=1e-4) for candidate in bank)
    assert torch.equal(model(L), out)


def test_unfitted_baselines_say_what_to_do():
    with pytest.raises(RuntimeError, match="fit"):
        create_model("mean", size=16)(L)


def test_fusion_shapes_and_heads():
    regression = create_model("fusion", width=0.25)
    assert regression(L).shape == (3, 2, 16, 16)
    assert regression.backbone is None
    classify = create_model("fusion_classify", width=0.25)
    assert classify(L).shape == (3, 313, 8, 8)


@pytest.fixture
def resnet_weights(tmp_path):
    backbone = timm.create_model("resnet18", pretrained=False, num_classes=10)
    path = tmp_path / "classifier.safetensors"
    safetensors.torch.save_file(backbone.state_dict(), path)
    return path


def test_fusion_with_a_local_timm_classifier_is_frozen(resnet_weights):
    model = create_model(
        "fusion",
        width=0.25,
        backbone="timm:resnet18",
        backbone_weights=str(resnet_weights),
        backbone_classes=10,
        backbone_size=32,
    )
    assert model.fusion[0].in_channels == 64 + 10
    model.train()
    assert not model.backbone.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    out = model(L)
    out.sum().backward()
    assert out.shape == (3, 2, 16, 16)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.encoder[0].weight.grad is not None
    features = model.global_features(L)
    assert features.shape == (3, 10)


def test_fusion_backbone_errors(resnet_weights, tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        create_model("fusion", backbone="timm:resnet18", backbone_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(BackboneError, match="does not fit timm:resnet18 with 1000 classes"):
        create_model("fusion", backbone="timm:resnet18", backbone_weights=str(resnet_weights))
    with pytest.raises(BackboneError, match="'none' or 'timm:"):
        create_model("fusion", backbone="vgg16")
