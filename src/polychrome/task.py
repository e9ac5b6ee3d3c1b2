"""The LightningModule of a colourisation run: only what is specific to colourisation.

The Trainer owns the loop, devices, precision, checkpoints and logging; this module says how a batch
becomes a loss (Lab conversion on the device, grayscale images masked out) and how validation measures
Zhang's raw and rebalanced AuC.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from polychrome.classifier import create_timm_classifier, normalize, timm_mean_std
from polychrome.color import ab_gamut, is_grayscale, uint8_to_lab
from polychrome.config import TrainConfig, config_to_dict, load_config
from polychrome.data.datasets import Batch
from polychrome.data.loader import mix_seed
from polychrome.hints import evaluation_hints, network_hints, simulate_hints
from polychrome.losses import colour_loss
from polychrome.metrics import compute_all, metrics_for
from polychrome.models import Colorizer, create_model, initialise_by_name
from polychrome.models.base import upsample_ab

# What validation logs (as val/<name>), read from polychrome.metrics.MEASURES; the first three on the progress bar.
VALIDATION_MEASURES = ("auc_raw", "auc_rebalanced", "mean_ab_error", "prediction_spread")


class _Task(L.LightningModule):
    """What both tasks share: the optimiser and schedule of the config, and RNG state in checkpoints."""

    cfg: TrainConfig
    model: torch.nn.Module
    flops_per_batch = None  # not counted: ThroughputMonitor (train.py) logs images per second only

    def configure_optimizers(self):
        return adam_with_schedule(self.model, self.cfg)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Data order and augmentation do not depend on global RNG state (see data/loader.py); the model's
        # own randomness (none in the registered models, but user models may add dropout) does.
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get("rng_states")
        if states:
            torch.set_rng_state(states["torch"])
            if states["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])


class ColorizationTask(_Task):
    monitor = "val/auc_rebalanced"  # what best.ckpt is chosen by
    model: Colorizer
    class_weights: Tensor  # (Q,) the rebalancing weight of each bin (ones without rebalancing)

    def __init__(self, config: dict, class_weights: Tensor | None = None):
        super().__init__()
        self.save_hyperparameters({"config": config}, ignore=["class_weights"])
        self.cfg: TrainConfig = load_config(base=config)
        self.model = create_model(self.cfg.model.name, **self.cfg.model.options)
        if self.cfg.trainer.common_init:
            initialise_by_name(self.model, self.cfg.trainer.seed)
        if self.cfg.trainer.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        bins = len(self.model.bins)
        if class_weights is None:
            class_weights = torch.ones(bins)
        self.register_buffer("class_weights", class_weights.float())
        self.measures = metrics_for(
            VALIDATION_MEASURES, bins=ab_gamut("zhang")
        )  # summed across processes by torchmetrics

    @classmethod
    def from_config(cls, config: TrainConfig, class_weights: Tensor | None = None) -> ColorizationTask:
        return cls(config_to_dict(config), class_weights)

    def forward(self, lightness: Tensor) -> Tensor:
        return self.model(lightness)

    def _lab(self, batch: Batch) -> tuple[Tensor, Tensor]:
        lab = uint8_to_lab(batch.images)
        if self.cfg.trainer.channels_last:
            lab = lab.contiguous(memory_format=torch.channels_last)
        return lab[:, :1], lab[:, 1:]

    def _training_hints(self, lightness: Tensor, ab: Tensor) -> tuple[Tensor, ...]:
        """Zhang et al. 2017's simulated user for this step's batch (nothing for a model without hints):
        drawn from a generator seeded by the run's seed and the step, so a resumed run draws the same."""
        if not self.model.local_hints and not self.model.global_hints:
            return ()
        generator = torch.Generator().manual_seed(mix_seed(self.cfg.trainer.seed, self.global_step))
        h = self.cfg.hints
        simulated = simulate_hints(
            torch.cat([lightness, ab], dim=1).float().cpu(),
            generator,
            max_points=h.max_points,
            placement=h.placement,
            global_probability=h.global_probability if self.model.global_hints else 0.0,
        )
        return self._hint_inputs([s.local for s in simulated], [s.global_hint for s in simulated], lightness)

    def _hint_inputs(self, local: list, global_hints: list, lightness: Tensor) -> tuple[Tensor, ...]:
        size = (int(lightness.shape[-2]), int(lightness.shape[-1]))
        ab_hints, mask, vector = network_hints(local, global_hints, size, size, lightness.device)
        return (ab_hints, mask, vector) if self.model.global_hints else (ab_hints, mask)

    def training_step(self, batch: Batch, batch_index: int) -> Tensor:
        lightness, ab = self._lab(batch)
        colour = ~is_grayscale(ab)
        output = self.model(lightness, *self._training_hints(lightness, ab))
        loss = colour_loss(output, ab, colour, self.cfg.loss, self.model.bins, self.class_weights)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(ab))
        return loss

    def _validation_hints(self, lightness: Tensor, ab: Tensor, batch_index: int) -> tuple[Tensor, ...]:
        """``hints.val_hints`` simulated local hints per image (no global hint), the same at every validation:
        seeded by the image's place in the validation set."""
        if not self.model.local_hints:
            return ()
        lab = torch.cat([lightness, ab], dim=1).float().cpu()
        first = batch_index * self.cfg.data.batch_size
        local = [evaluation_hints(image, 0, first + i, self.cfg.hints.val_hints) for i, image in enumerate(lab)]
        return self._hint_inputs(local, [None] * len(local), lightness)

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        lightness, ab = self._lab(batch)
        colour = ~is_grayscale(ab)
        if colour.any():
            hints = [planes[colour] for planes in self._validation_hints(lightness, ab, batch_index)]
            predicted = upsample_ab(
                self.model.predict_ab(lightness[colour], self.cfg.temperature, *hints), ab.shape[-2:]
            ).float()
            self.measures.update(predicted_ab=predicted, truth_ab=ab[colour])

    def on_validation_epoch_end(self) -> None:
        """Log the measures over every process's images (torchmetrics reduces the states), then start afresh."""
        results = compute_all(self.measures)  # on every process: computing is where torchmetrics reduces
        for name in VALIDATION_MEASURES:
            if results[name] is not None:
                self.log(
                    f"val/{name}", float(results[name]), prog_bar=name in VALIDATION_MEASURES[:2], rank_zero_only=False
                )
        self.measures.reset()


class ClassificationTask(_Task):
    """A timm classifier trained on the colour images' labels: the backbone polychrome can train itself
    for the fusion model, and the judge of 'semantic interpretability' in evaluation."""

    monitor = "val/accuracy"
    mean: Tensor
    std: Tensor

    def __init__(self, config: dict, num_classes: int):
        super().__init__()
        self.save_hyperparameters({"config": config, "num_classes": num_classes})
        self.cfg: TrainConfig = load_config(base=config)
        self.model = create_timm_classifier(self.cfg.model.name, num_classes, **self.cfg.model.options)
        mean, std = timm_mean_std(self.model)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.accuracy = MulticlassAccuracy(num_classes, average="micro")  # summed across processes by torchmetrics

    def _logits(self, batch: Batch) -> Tensor:
        return self.model(normalize(batch.images.float() / 255, self.mean, self.std))

    def training_step(self, batch: Batch, batch_index: int) -> Tensor:
        loss = torch.nn.functional.cross_entropy(self._logits(batch), batch.labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch.labels))
        return loss

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        self.accuracy.update(self._logits(batch).argmax(1), batch.labels)

    def on_validation_epoch_end(self) -> None:
        if self.accuracy.update_called:
            self.log("val/accuracy", float(self.accuracy.compute()) * 100, prog_bar=True, rank_zero_only=False)
        self.accuracy.reset()


def adam_with_schedule(model: torch.nn.Module, config: TrainConfig) -> dict:
    """Adam (Zhang's betas and weight decay by default) with optional warm-up, then constant, cosine decay
    or steps down at milestones, per step."""
    o, total = config.optim, config.trainer.max_steps
    if o.schedule not in ("constant", "cosine", "step"):
        raise ValueError(f"optim.schedule must be constant, cosine or step, got {o.schedule!r}")
    if o.schedule == "step" and len(o.milestones) != len(o.milestone_factors):
        raise ValueError(
            f"optim.milestones ({len(o.milestones)}) and optim.milestone_factors ({len(o.milestone_factors)}) must pair up"
        )

    def factor(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "cosine":
            progress = min(1.0, (step - o.warmup_steps) / max(1, total - o.warmup_steps))
            return o.final_lr_fraction + (1 - o.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))
        if o.schedule == "step":
            return next(
                (f for m, f in sorted(zip(o.milestones, o.milestone_factors, strict=True), reverse=True) if step >= m),
                1.0,
            )
        return 1.0

    trainable = [p for p in model.parameters() if p.requires_grad]  # a frozen fusion backbone stays out
    optimizer = torch.optim.Adam(trainable, lr=o.lr, betas=(o.betas[0], o.betas[1]), weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
