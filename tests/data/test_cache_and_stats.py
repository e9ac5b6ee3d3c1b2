import numpy as np
import pytest
import torch
from PIL import Image

from polychrome.color import ab_gamut
from polychrome.data import DecodedImages, dataset_prior, dataset_stats, eval_transform, open_dataset
from tests.conftest import shared


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / f"colour{i}.png")
    Image.new("L", (30, 20), 90).save(tmp_path / "gray.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return tmp_path


def test_decoded_cache_holds_the_same_pixels_and_is_reused(photos):
    cached = DecodedImages.build(f"folder:{photos}", size=16, workers=0)
    assert len(cached) == 6
    assert len(cached.unreadable) == 1 and "broken.jpg" in cached.unreadable[0]
    direct = open_dataset(f"folder:{photos}", eval_transform(16))
    readable = [i for i, p in enumerate(direct.paths) if p.name != "broken.jpg"]
    for row, index in enumerate(readable):
        assert torch.equal(cached[row][0], direct[index][0])
    stamp = (cached.folder / "images.npy").stat().st_mtime_ns
    again = DecodedImages.build(f"folder:{photos}", size=16, workers=0)
    assert again.folder == cached.folder and (again.folder / "images.npy").stat().st_mtime_ns == stamp
    assert not list(cached.folder.parent.glob("*.tmp*"))


def test_decoded_cache_notices_changed_files(photos):
    first = DecodedImages.build(f"folder:{photos}", size=8, workers=0)
    Image.new("RGB", (9, 9), (0, 0, 255)).save(photos / "new.png")
    second = DecodedImages.build(f"folder:{photos}", size=8, workers=0)
    assert second.folder != first.folder and len(second) == 7


def test_decoded_cache_applies_a_training_transform(photos):
    from polychrome.data import train_transform

    cached = DecodedImages.build(f"folder:{photos}", size=16, transform=train_transform(12), workers=0)
    assert cached[0][0].shape == (3, 12, 12)


def test_stats_count_images_grayscale_unreadable_and_pixels(photos):
    stats = dataset_stats(f"folder:{photos}", size=8, workers=0)
    assert (stats.images, stats.grayscale) == (6, 1)
    assert len(stats.unreadable) == 1 and "broken.jpg" in stats.unreadable[0]
    assert stats.counts.shape == (313,) and stats.counts.sum() == 5 * 8 * 8
    again = dataset_stats(f"folder:{photos}", size=8, workers=0)  # from the cache
    assert np.array_equal(again.counts, stats.counts) and again.unreadable == stats.unreadable
    prior = dataset_prior(f"folder:{photos}", size=8, workers=0)
    assert torch.isclose(prior.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert dataset_stats(f"folder:{photos}", size=8, gamut="srgb", workers=0).counts.shape == (261,)


def test_cifar10_test_stats_on_the_shared_copy():
    shared("cifar10")
    stats = dataset_stats("cifar10@test", size=32, workers=2)
    assert stats.images == 10_000 and not stats.unreadable
    assert 100 < stats.grayscale < 300  # JPEG-derived copy; a few percent of CIFAR-10 is near-gray
    assert stats.counts.sum() == (10_000 - stats.grayscale) * 32 * 32
    prior = torch.from_numpy(stats.counts / stats.counts.sum())
    gray_bin = ((ab_gamut() == torch.tensor([0.0, 0.0])).all(1)).nonzero().item()
    assert prior.argmax() == gray_bin  # desaturated colours dominate natural images (Zhang et al., Fig. 3)


@pytest.mark.parametrize(
    "compute",
    [lambda spec: dataset_stats(spec, 16, workers=0), lambda spec: DecodedImages.build(spec, 16, workers=0)],
    ids=["stats", "decoded images"],
)
def test_a_cached_computation_draws_nothing_from_the_global_generator_hit_or_miss(photos, compute):
    """Training seeds, computes the rebalancing prior (cached), then builds the network: a cache miss that drew
    from torch's global generator gave the network other initial weights than a hit, so a run computed cold and
    its resumption computed warm started from different weights."""
    draws = []
    for _ in ("miss", "hit"):
        torch.manual_seed(0)
        compute(f"folder:{photos}")
        draws.append(torch.rand(3))
    torch.manual_seed(0)
    untouched = torch.rand(3)
    assert torch.equal(draws[0], untouched) and torch.equal(draws[1], untouched)
