"""Mutual information between k-means clusters of a layer and phone or word labels.

The layer's segment representations of a training split are clustered (MiniBatchKMeans,
seeded); the evaluation split's segments are assigned to those clusters, and the mutual
information between cluster and label on the evaluation split is divided by the label
entropy, so 1 means the clusters determine the label and 0 means they say nothing of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy.stats import entropy
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import mutual_info_score


@dataclass(frozen=True)
class MiResult:
    score: float  # mi / label_entropy
    mi: float  # nats
    label_entropy: float  # nats
    k: int
    n_train: int
    n_eval: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scaled_k(k: int, n_train: int, min_per_cluster: int = 5) -> int:
    """`k` clusters, fewer when the training data would give under `min_per_cluster` each."""
    return max(2, min(int(k), int(n_train) // max(1, int(min_per_cluster))))


def normalized_mi(clusters: Sequence[int], labels: Sequence[Any]) -> tuple[float, float, float]:
    """(MI / H(labels), MI, H(labels)) in nats; 0 when the labels have no entropy."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    h = float(entropy(counts))
    mi = float(mutual_info_score(labels, clusters))
    return (mi / h if h > 0 else 0.0), mi, h


def cluster_mi(
    x_train: np.ndarray,
    x_eval: np.ndarray,
    labels_eval: Sequence[Any],
    k: int,
    seed: int = 0,
    min_per_cluster: int = 5,
    batch_size: int = 4096,
    max_iter: int = 100,
    n_init: int = 3,
) -> MiResult:
    """Fit MiniBatchKMeans on `x_train`, predict `x_eval`, score MI with `labels_eval`."""
    x_train = np.asarray(x_train, dtype=np.float32)
    x_eval = np.asarray(x_eval, dtype=np.float32)
    if len(x_eval) != len(labels_eval):
        raise ValueError(f"x_eval has {len(x_eval)} rows but {len(labels_eval)} labels were given")
    if len(x_train) < 2 or len(x_eval) < 1:
        raise ValueError(f"MI needs at least 2 training and 1 evaluation rows (got {len(x_train)} and {len(x_eval)})")
    kk = scaled_k(k, len(x_train), min_per_cluster)
    km = MiniBatchKMeans(
        n_clusters=kk,
        batch_size=batch_size,
        max_iter=max_iter,
        n_init=n_init,
        random_state=seed,
    )
    km.fit(x_train)
    score, mi, h = normalized_mi(km.predict(x_eval), labels_eval)
    return MiResult(score=score, mi=mi, label_entropy=h, k=kk, n_train=len(x_train), n_eval=len(x_eval))
