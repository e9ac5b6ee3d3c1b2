"""Image classifiers (timm models): the backbone of the fusion model and the judge of classifier accuracy.

A ``task: classify`` run exports its classifier as ``classifier.safetensors`` + ``classifier.json``;
``load_classifier`` reads it back as a ``Classifier``, the network with the facts needed to feed it (its
input normalisation and size) and where it came from, in one record instead of attributes on the module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BackboneError(Exception):
    """A classifier that cannot be built or whose weights are missing; the message says what to supply."""


def timm_mean_std(model: nn.Module) -> tuple[Tensor, Tensor]:
    """The input normalisation a timm model expects, as (1, 3, 1, 1) mean and std (ImageNet's by default)."""
    pretrained = getattr(model, "pretrained_cfg", None) or {}
    mean = torch.tensor(pretrained.get("mean", IMAGENET_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(pretrained.get("std", IMAGENET_STD)).view(1, 3, 1, 1)
    return mean, std


def create_timm_classifier(name: str, num_classes: int, **options) -> nn.Module:
    """A fresh (untrained) timm classifier; nothing is downloaded."""
    import timm

    try:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **options)
    except RuntimeError as error:
        raise BackboneError(f"timm has no model {name!r} ({error})") from None


def load_timm_backbone(name: str, weights: str | None, num_classes: int) -> nn.Module:
    """A frozen timm classifier with weights from a local file (nothing is downloaded)."""
    model = create_timm_classifier(name, num_classes)
    if weights is None:
        raise BackboneError(
            f"backbone timm:{name} needs its weights as a local file: set backbone_weights=PATH (for "
            f"inception_resnet_v2, model.safetensors of timm/inception_resnet_v2.tf_in1k on the Hugging Face hub)"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneError(
            f"backbone weights not found at {path}: download the timm weights for {name} and pass their path"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        state = saved.get("state_dict", saved) if isinstance(saved, dict) else saved
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise BackboneError(f"{path} does not fit timm:{name} with {num_classes} classes: {str(error)[:300]}") from None
    model.requires_grad_(False)
    return model.eval()


def normalize(rgb: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> a classifier's input: less ``mean``, over ``std`` (each (1, 3, 1, 1))."""
    return (rgb - mean.to(rgb)) / std.to(rgb)


@dataclass(frozen=True, eq=False)
class Classifier:
    """A frozen classifier and how to feed it: ``mean``/``std`` (1, 3, 1, 1), the side ``size`` it was
    trained at, and ``source`` (its run directory), which names it in results kept across evaluations."""

    module: nn.Module
    mean: Tensor
    std: Tensor
    size: int
    source: str

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Top-1 class of uint8 RGB images (N, 3, H, W), each resized (antialiased) to size x size -> (N,)."""
        x = torch.nn.functional.interpolate(
            images.cpu().float() / 255, size=(self.size,) * 2, mode="bilinear", antialias=True
        )
        return self.module(normalize(x, self.mean, self.std)).argmax(1)


def load_classifier(run_dir: str | Path) -> Classifier:
    """The classifier a ``task: classify`` run exported (classifier.safetensors + classifier.json)."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "classifier.json"
    if not meta_path.is_file():
        raise ValueError(f"{run_dir} holds no classifier.json: train one with task=classify (see README)")
    meta = json.loads(meta_path.read_text())
    module = load_timm_backbone(meta["arch"], str(run_dir / "classifier.safetensors"), meta["num_classes"])
    mean, std = timm_mean_std(module)
    return Classifier(module, mean, std, meta["size"], str(run_dir.resolve()))


def export_classifier(checkpoint: Path, run_dir: Path, classes: list) -> Path:
    """Write a ``task: classify`` checkpoint's classifier as ``classifier.safetensors`` + ``classifier.json``:
    a fusion backbone (``backbone=timm:<arch>``, ``backbone_weights=<run>/classifier.safetensors``) and the
    classifier ``load_classifier`` reads."""
    from safetensors.torch import save_file

    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = {k.removeprefix("model."): v.contiguous() for k, v in saved["state_dict"].items() if k.startswith("model.")}
    config = saved["hyper_parameters"]["config"]
    save_file(state, run_dir / "classifier.safetensors")
    meta = {
        "arch": config["model"]["name"],
        "num_classes": len(classes),
        "classes": [str(c) for c in classes],
        "size": config["data"]["size"],
        "checkpoint": checkpoint.name,
        "step": saved["global_step"],
    }
    (run_dir / "classifier.json").write_text(json.dumps(meta, indent=1))
    return run_dir / "classifier.safetensors"
