"""Class-balanced sampling with replacement (SUPERB's KS samplers), made reproducible."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BalancedSampler(Sampler[int]):
    """Draws indices with replacement so that every class gets the same expected share.

    This is torch's WeightedRandomSampler with the weights s3prl gives Speech Commands
    (`len(data) / class_count` per item), where an *item* is one entry of s3prl's list: a
    recording, or a whole background-noise file of which each draw takes a random 1-s crop.
    `groups` names each index's item (crops of one file share it): a draw picks an item with
    weight 1 / (items in its class), then one of its indices uniformly. Without `groups`
    every index is its own item. `num_samples` defaults to the number of items (s3prl's
    `len(dataset)`). The draw depends only on (seed, epoch, stream), so runs are
    reproducible; each full iteration moves to the next epoch, `set_epoch` pins one.
    """

    def __init__(self, labels: Sequence[Hashable], groups: Sequence[Hashable] | None = None,
                 num_samples: int | None = None, seed: int = 0, stream: int = 0):
        if len(labels) == 0:
            raise ValueError("BalancedSampler needs at least one label")
        groups = list(range(len(labels))) if groups is None else list(groups)
        if len(groups) != len(labels):
            raise ValueError(f"BalancedSampler: {len(groups)} groups for {len(labels)} labels")
        item_class: dict[Hashable, Hashable] = {}
        for lab, grp in zip(labels, groups):
            if item_class.setdefault(grp, lab) != lab:
                raise ValueError(f"BalancedSampler: group {grp!r} holds two classes ({item_class[grp]!r}, {lab!r})")
        items_per_class = Counter(item_class.values())
        size = Counter(groups)
        weights = np.array([1.0 / (items_per_class[lab] * size[grp]) for lab, grp in zip(labels, groups)])
        self.p = weights / weights.sum()
        self.num_samples = len(item_class) if num_samples is None else int(num_samples)
        if self.num_samples <= 0:
            raise ValueError(f"BalancedSampler num_samples must be positive, got {num_samples}")
        self.seed, self.stream = int(seed), int(stream)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self, epoch: int) -> np.ndarray:
        """The draw for one epoch (pure function of seed, epoch and stream)."""
        key = [self.seed, epoch] + ([self.stream] if self.stream else [])
        rng = np.random.default_rng(key)
        return rng.choice(len(self.p), size=self.num_samples, replace=True, p=self.p)

    def __iter__(self) -> Iterator[int]:
        idx = self.indices(self.epoch)
        self.epoch += 1
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples
