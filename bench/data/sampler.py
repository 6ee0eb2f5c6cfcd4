"""Class-balanced sampling with replacement (SUPERB's KS training sampler), made reproducible."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BalancedSampler(Sampler[int]):
    """Draws `num_samples` indices with replacement, each with weight 1 / (its class count).

    Every class gets the same expected share, like torch's WeightedRandomSampler with the
    weights SUPERB uses for keyword spotting — but the draw depends only on (seed, epoch), so
    runs are reproducible. Each full iteration moves to the next epoch; `set_epoch` pins one.
    """

    def __init__(self, labels: Sequence[Hashable], num_samples: int | None = None, seed: int = 0):
        if len(labels) == 0:
            raise ValueError("BalancedSampler needs at least one label")
        counts = Counter(labels)
        weights = np.array([1.0 / counts[lab] for lab in labels], dtype=np.float64)
        self.p = weights / weights.sum()
        self.num_samples = len(labels) if num_samples is None else int(num_samples)
        if self.num_samples <= 0:
            raise ValueError(f"BalancedSampler num_samples must be positive, got {num_samples}")
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self, epoch: int) -> np.ndarray:
        """The draw for one epoch (pure function of seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        return rng.choice(len(self.p), size=self.num_samples, replace=True, p=self.p)

    def __iter__(self) -> Iterator[int]:
        idx = self.indices(self.epoch)
        self.epoch += 1
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples
