"""The training and validation data of a run, as a LightningDataModule."""

from __future__ import annotations

import lightning as L
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from polychrome.data.cache import DecodedImages
from polychrome.data.datasets import SkipUnreadable, classes_of, collate_images, length, open_dataset
from polychrome.data.loader import RunSampler, Transformed
from polychrome.data.transforms import eval_transform, split_train_val, train_transform


class ColorizationData(L.LightningDataModule):
    """Builds loaders from a ``DataConfig``; the training stream resumes at the trainer's global step."""

    def __init__(self, config, max_steps: int):
        super().__init__()
        self.config = config
        self.max_steps = max_steps
        self._train_set: Transformed | None = None
        self._val_set: Transformed | None = None

    def _source(self, spec: str | list[str]) -> tuple[Dataset, bool]:
        """The images of ``spec`` (a list: all of them, in order), and whether they come from the decoded
        cache (already at least cache_size)."""
        c = self.config
        if isinstance(spec, list):
            parts = [self._source(s)[0] for s in spec]
            # labels of different data sets do not mix
            return _Mix(parts, classes_of(parts[0]) if len(parts) == 1 else []), c.cache
        if c.cache:
            return SkipUnreadable(DecodedImages.build(spec, c.cache_size or c.size, workers=c.workers)), True
        return SkipUnreadable(open_dataset(spec)), False

    def setup(self, stage: str | None = None) -> None:
        if self._train_set is not None:
            return
        c = self.config
        train, cached = self._source(c.train)
        val: Dataset
        if c.val is None:
            train, val = split_train_val(train, c.val_fraction, c.seed)
        else:
            val, _ = self._source(c.val)
        if c.limit is not None:
            train = Subset(train, range(min(c.limit, length(train))))
        if c.val_limit is not None:
            val = Subset(val, range(min(c.val_limit, length(val))))
        self._train_set = Transformed(train, train_transform(c.size, flip=c.flip, resize=not cached))
        self._val_set = Transformed(val, eval_transform(c.size))

    @property
    def train_set(self) -> Transformed:
        if self._train_set is None:
            raise RuntimeError("ColorizationData has no data yet: call setup() first (the Trainer does)")
        return self._train_set

    @property
    def val_set(self) -> Transformed:
        if self._val_set is None:
            raise RuntimeError("ColorizationData has no data yet: call setup() first (the Trainer does)")
        return self._val_set

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        sampler = RunSampler(
            len(self.train_set),
            self.config.batch_size,
            self.max_steps,
            start_step=trainer.global_step if trainer else 0,
            seed=self.config.seed,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        return DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=self.config.workers,
            collate_fn=collate_images,
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader:
        val: Dataset = self.val_set
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:  # each rank validates its share; the metric sums counts
            val = Subset(val, range(trainer.global_rank, len(self.val_set), trainer.world_size))
        return DataLoader(
            val, batch_size=self.config.batch_size, num_workers=self.config.workers, collate_fn=collate_images
        )


class _Mix(ConcatDataset):
    """Several datasets in a row, with the class names they share (none when they are more than one)."""

    def __init__(self, parts: list[Dataset], classes: list):
        super().__init__(parts)
        self.classes = classes
