"""Cluster MI: high on clustered data whose clusters are the labels, ~0 once labels are shuffled."""

from __future__ import annotations

import numpy as np
import pytest

from bench.mi import cluster_mi, normalized_mi, scaled_k


def _blobs(n_per: int, n_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(scale=10.0, size=(n_labels, 16))
    labels = np.repeat(np.arange(n_labels), n_per)
    x = centres[labels] + rng.normal(scale=0.5, size=(len(labels), 16))
    return x.astype(np.float32), labels


def test_mi_high_on_clustered_data_and_near_zero_with_shuffled_labels():
    x_tr, _ = _blobs(60, 8, seed=0)
    x_ev, y_ev = _blobs(150, 8, seed=1)  # enough rows that the plug-in MI bias is small
    r = cluster_mi(x_tr, x_ev, y_ev, k=16, seed=0)
    assert r.k == 16 and r.n_train == 480 and r.n_eval == 1200
    assert r.label_entropy == pytest.approx(np.log(8))
    assert r.score > 0.95
    shuffled = np.random.default_rng(5).permutation(y_ev)
    r0 = cluster_mi(x_tr, x_ev, shuffled, k=16, seed=0)
    assert r0.score < 0.05
    assert r0.score == pytest.approx(r0.mi / r0.label_entropy)


def test_mi_is_seeded():
    x_tr, _ = _blobs(40, 5, seed=0)
    x_ev, y_ev = _blobs(20, 5, seed=1)
    x_tr = x_tr + np.random.default_rng(9).normal(scale=8.0, size=x_tr.shape).astype(np.float32)
    a = cluster_mi(x_tr, x_ev, y_ev, k=30, seed=3)
    b = cluster_mi(x_tr, x_ev, y_ev, k=30, seed=3)
    assert a == b


def test_normalized_mi_known_values():
    assert normalized_mi([0, 0, 1, 1], ["a", "a", "b", "b"])[0] == pytest.approx(1.0)
    assert normalized_mi([0, 1, 0, 1], ["a", "a", "b", "b"])[0] == pytest.approx(0.0, abs=1e-12)
    assert normalized_mi([0, 1, 2], ["a", "a", "a"]) == (0.0, 0.0, 0.0)


def test_k_scales_with_training_data():
    assert scaled_k(500, 100_000) == 500
    assert scaled_k(500, 1000) == 200
    assert scaled_k(5000, 1000, min_per_cluster=10) == 100
    assert scaled_k(500, 3) == 2


def test_mi_input_errors():
    x, y = _blobs(5, 2, seed=0)
    with pytest.raises(ValueError, match="rows but"):
        cluster_mi(x, x, y[:3], k=4)
