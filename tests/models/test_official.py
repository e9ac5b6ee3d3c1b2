import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from polychrome.color import ab_gamut, decode_annealed_mean
from polychrome.models import OfficialWeightsError, count_parameters, load_official
from polychrome.models.official import SIGGRAPH17Net


def official_eccv16() -> nn.Module:
    """ECCV16 written out as richzhang/colorization lays it out (an independent reconstruction)."""

    def block(cin, cout, convs, stride_last=False, dilation=1):
        layers = []
        for i in range(convs):
            stride = 2 if stride_last and i == convs - 1 else 1
            layers += [
                nn.Conv2d(cin if i == 0 else cout, cout, 3, stride, padding=dilation, dilation=dilation),
                nn.ReLU(True),
            ]
        return nn.Sequential(*layers, nn.BatchNorm2d(cout))

    net = nn.Module()
    net.model1 = block(1, 64, 2, True)
    net.model2 = block(64, 128, 2, True)
    net.model3 = block(128, 256, 3, True)
    net.model4 = block(256, 512, 3)
    net.model5 = block(512, 512, 3, dilation=2)
    net.model6 = block(512, 512, 3, dilation=2)
    net.model7 = block(512, 512, 3)
    net.model8 = nn.Sequential(
        nn.ConvTranspose2d(512, 256, 4, 2, 1),
        nn.ReLU(True),
        nn.Conv2d(256, 256, 3, 1, 1),
        nn.ReLU(True),
        nn.Conv2d(256, 256, 3, 1, 1),
        nn.ReLU(True),
        nn.Conv2d(256, 313, 1),
    )
    net.model_out = nn.Conv2d(313, 2, 1, bias=False)
    with torch.no_grad():
        net.model_out.weight.copy_((ab_gamut("zhang").T / 110)[:, :, None, None])
    return net


def official_forward(net, lightness):
    x = (lightness - 50) / 100
    for i in range(1, 9):
        x = getattr(net, f"model{i}")(x)
    return F.interpolate(net.model_out(F.softmax(x, dim=1)), scale_factor=4, mode="bilinear") * 110


@pytest.fixture
def eccv16_release(tmp_path):
    torch.manual_seed(0)
    net = official_eccv16().eval()
    for module in net.modules():  # BatchNorm statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "colorization_release_v2-9b330a0b.pth"
    torch.save(state, path)
    return net, path


def test_eccv16_release_has_the_published_size(eccv16_release):
    net, _ = eccv16_release
    assert count_parameters(net) == 32_236_011


def test_eccv16_release_loads_and_reproduces_the_official_forward(eccv16_release):
    net, path = eccv16_release
    ours = load_official("eccv16", path)
    lightness = torch.rand(2, 1, 64, 64) * 100
    with torch.no_grad():
        expected = official_forward(net, lightness)
        logits = ours(lightness)
        mean = decode_annealed_mean(logits, ab_gamut("zhang"), temperature=1.0, from_logits=True)
        got = F.interpolate(mean, scale_factor=4, mode="bilinear")
    assert torch.allclose(got, expected, atol=1e-3)


def test_siggraph17_has_the_published_layout():
    net = SIGGRAPH17Net()
    assert count_parameters(net) == 34_187_027
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["model1.0.weight"] == (64, 4, 3, 3)
    assert shapes["model8up.0.weight"] == (512, 256, 4, 4)
    assert shapes["model3short8.0.weight"] == (256, 256, 3, 3)
    assert shapes["model10up.0.weight"] == (128, 128, 4, 4) and shapes["model1short10.0.weight"] == (128, 64, 3, 3)
    assert shapes["model_class.0.weight"] == (529, 256, 1, 1)
    assert shapes["model_out.0.weight"] == (2, 128, 1, 1)
    assert net(torch.rand(1, 1, 32, 40) * 100).shape == (1, 2, 32, 40)


def test_siggraph17_release_loads_strictly(tmp_path):
    state = {k: v for k, v in SIGGRAPH17Net().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "siggraph17.pth")
    model = load_official("siggraph17", tmp_path / "siggraph17.pth")
    assert torch.equal(model.network.state_dict()["model5.0.weight"], state["model5.0.weight"])
    del state["model_class.0.bias"]
    state["model_extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(
        OfficialWeightsError, match=re.escape("missing model_class.0.bias; unexpected model_extra.weight")
    ):
        load_official("siggraph17", tmp_path / "broken.pth")


def test_wrong_shapes_and_foreign_files_are_refused(eccv16_release, tmp_path):
    _, path = eccv16_release
    state = torch.load(path, weights_only=True)
    state["model4.0.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, tmp_path / "shapes.pth")
    with pytest.raises(OfficialWeightsError, match=re.escape("wrong shapes encoder.3.0.weight")):
        load_official("eccv16", tmp_path / "shapes.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(OfficialWeightsError, match="not a readable PyTorch state dict"):
        load_official("eccv16", tmp_path / "junk.pth")
    state = torch.load(path, weights_only=True)
    state["model_out.weight"] = state["model_out.weight"].flip(1)
    torch.save(state, tmp_path / "order.pth")
    with pytest.raises(OfficialWeightsError, match="313 bins in order"):
        load_official("eccv16", tmp_path / "order.pth")


def test_missing_release_says_where_to_get_it(tmp_path):
    with pytest.raises(OfficialWeightsError, match=re.escape("colorization_release_v2-9b330a0b.pth from https://")):
        load_official("eccv16", tmp_path / "nope.pth")


def test_official_weights_are_comparable_and_colourise(eccv16_release, tmp_path):
    from polychrome.colorize import load_colorizer
    from polychrome.models import load_model

    _, path = eccv16_release
    model = load_model(f"eccv16-official:{path}")
    assert (model.card.name, model.card.input_size, model.card.head) == ("eccv16", 256, "classification")
    assert model.card.weights == str(path) and len(model.card.weights_sha256) == 64
    pipeline = load_colorizer(f"eccv16-official:{path}")
    assert pipeline.input_size == 256
    assert pipeline.colorize(torch.randint(0, 256, (20, 30, 3), dtype=torch.uint8).numpy()).shape == (20, 30, 3)
    with pytest.raises(OfficialWeightsError, match=re.escape("siggraph17-df00044c.pth")):
        load_model(f"siggraph17-official:{tmp_path / 'missing.pth'}")
