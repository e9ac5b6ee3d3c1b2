import pickle
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from polychrome.data import (
    DatasetNotFoundError,
    ImageFolder,
    SkipUnreadable,
    collate_images,
    eval_transform,
    open_dataset,
    parse_spec,
    split_train_val,
    train_transform,
)
from tests.conftest import shared


def write_image(path, colour=(200, 30, 30), size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def labelled_folder(tmp_path):
    write_image(tmp_path / "cats" / "a.png")
    write_image(tmp_path / "cats" / "deeper" / "b.jpg")
    write_image(tmp_path / "dogs" / "c.PNG", colour=(20, 200, 20))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    (tmp_path / "dogs" / "broken.png").write_bytes(b"garbage")
    return tmp_path


def test_folder_is_recursive_with_labels_from_class_folders(labelled_folder):
    dataset = ImageFolder(labelled_folder)
    assert dataset.classes == ["cats", "dogs"]
    assert [p.name for p in dataset.paths] == ["a.png", "b.jpg", "broken.png", "c.PNG"]
    assert dataset.labels == [0, 0, 1, 1]
    image, label = dataset[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 10, 12) and label == 0


def test_flat_folder_has_no_labels(tmp_path):
    write_image(tmp_path / "x.png")
    write_image(tmp_path / "sub" / "y.png")
    dataset = ImageFolder(tmp_path)
    assert dataset.classes == [] and dataset.labels == [-1, -1]


def test_unreadable_files_are_skipped_and_reported_by_path(labelled_folder):
    dataset = SkipUnreadable(ImageFolder(labelled_folder, transform=eval_transform(8)))
    batches = list(DataLoader(dataset, batch_size=4, collate_fn=collate_images))
    assert len(batches) == 1
    batch = batches[0]
    assert batch.images.shape == (3, 3, 8, 8) and batch.labels.tolist() == [0, 0, 1]
    assert len(batch.errors) == 1 and "broken.png" in str(batch.errors[0])


def test_empty_or_missing_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no image files"):
        ImageFolder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="image folder not found"):
        open_dataset(f"folder:{tmp_path / 'missing'}")


def test_spec_parsing_and_resolution_against_the_data_root(tmp_path, monkeypatch):
    write_image(tmp_path / "photos" / "x.png")
    monkeypatch.setenv("POLYCHROME_DATA", str(tmp_path))
    assert parse_spec("photos").path == tmp_path / "photos"
    assert parse_spec("folder:photos").kind == "folder"
    spec = parse_spec("cifar10@test")
    assert (spec.kind, spec.path, spec.split) == ("cifar10", tmp_path / "cifar10", "test")
    assert parse_spec("imagenet:/data/in").split == "train"
    with pytest.raises(ValueError, match="choose one of train, test"):
        parse_spec("cifar10@validation")
    with pytest.raises(ValueError, match="only splits are @heldout and @rest"):
        parse_spec("folder:photos@train")


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def fake_cifar_pickles(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [0, 1, 2, 3]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES}, f)


def test_cifar10_in_torchvisions_pickle_format(tmp_path, monkeypatch):
    fake_cifar_pickles(tmp_path)
    # The fake files cannot carry the real archives' md5 sums; everything else is torchvision's real code.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    train = open_dataset(f"cifar10:{tmp_path}@train")
    assert len(train) == 20 and train.classes == CIFAR_CLASSES
    image, label = train[1]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8 and label == 1
    assert len(open_dataset(f"cifar10:{tmp_path}@test")) == 4


def test_cifar10_in_class_folder_layout(tmp_path):
    for split in ("train", "test"):
        for name in CIFAR_CLASSES[:2]:
            write_image(tmp_path / split / name / "0000.jpg", size=(32, 32))
    test = open_dataset(f"cifar10:{tmp_path}@test")
    assert len(test) == 2 and test.classes == CIFAR_CLASSES[:2]


def test_missing_cifar10_says_what_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=re.escape("cifar-10-python.tar.gz")) as error:
        open_dataset(f"cifar10:{tmp_path}")
    assert "\n" not in str(error.value)


def test_imagenet_layout_through_torchvision(tmp_path):
    write_image(tmp_path / "train" / "n01440764" / "n01440764_1.JPEG")
    write_image(tmp_path / "train" / "n02102040" / "n02102040_7.JPEG")
    torch.save(({"n01440764": ("tench",), "n02102040": ("English springer",)}, []), tmp_path / "meta.bin")
    dataset = open_dataset(f"imagenet:{tmp_path}@train")
    assert len(dataset) == 2
    assert dataset.classes == [("tench",), ("English springer",)]
    assert dataset[1][1] == 1 and dataset[1][0].dtype == torch.uint8


def test_missing_imagenet_says_what_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=re.escape("ILSVRC2012_devkit_t12.tar.gz")):
        open_dataset(f"imagenet:{tmp_path}@val")


def test_places365_layout_through_torchvision(tmp_path, monkeypatch):
    (tmp_path / "categories_places365.txt").write_text("/a/airfield 0\n/b/bakery 1\n")
    (tmp_path / "places365_val.txt").write_text("Places365_val_00000001.jpg 1\n")
    write_image(tmp_path / "val_256" / "Places365_val_00000001.jpg")
    monkeypatch.setattr("torchvision.datasets.places365.check_integrity", lambda *args, **kwargs: True)
    dataset = open_dataset(f"places365:{tmp_path}@val")
    assert len(dataset) == 1 and dataset[0][1] == 1 and dataset[0][0].shape == (3, 10, 12)


def test_missing_places365_says_what_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=re.escape("places2.csail.mit.edu")):
        open_dataset(f"places365:{tmp_path}@val")


def test_transforms_give_the_requested_size():
    image = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    assert train_transform(16)(image).shape == (3, 16, 16)
    out = eval_transform(16)(image)
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8
    assert torch.equal(out, eval_transform(16)(image))


def test_split_is_deterministic_disjoint_and_complete():
    data = list(range(100))
    train, val = split_train_val(data, 0.1, seed=3)
    again, _ = split_train_val(data, 0.1, seed=3)
    other, _ = split_train_val(data, 0.1, seed=4)
    assert train.indices == again.indices and train.indices != other.indices
    assert len(val) == 10 and sorted(train.indices + val.indices) == data
    with pytest.raises(ValueError, match="val_fraction"):
        split_train_val(data, 1.5)


def test_shared_cifar10_and_imagenette_open():
    shared("cifar10")
    test = open_dataset("cifar10@test")
    assert len(test) == 10_000 and len(test.classes) == 10
    shared("imagenette2-224")
    imagenette = open_dataset("folder:imagenette2-224/train")
    assert len(imagenette) == 9_469 and len(imagenette.classes) == 10


def test_a_folder_splits_into_a_fixed_heldout_tenth_by_path_hash(tmp_path):
    from polychrome.data.datasets import open_dataset

    for i in range(200):
        (tmp_path / f"c{i % 3}").mkdir(exist_ok=True)
        Image.new("RGB", (2, 2)).save(tmp_path / f"c{i % 3}" / f"{i}.png")
    heldout = open_dataset(f"folder:{tmp_path}@heldout")
    rest = open_dataset(f"folder:{tmp_path}@rest")
    assert not set(heldout.paths) & set(rest.paths) and len(heldout) + len(rest) == 200
    assert 8 <= len(heldout) <= 35  # about 10%
    assert heldout.classes == rest.classes == ["c0", "c1", "c2"]
    assert open_dataset(f"folder:{tmp_path}@heldout").paths == heldout.paths  # the same files every time
    with pytest.raises(ValueError, match="only splits are @heldout and @rest"):
        open_dataset(f"folder:{tmp_path}@test")
