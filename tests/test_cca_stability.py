"""PWCCA: stability on one-hot views, statistics vs direct computation, CV protocol helpers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.cca as cca
from bench.cca import (
    DEFAULT_EPS_GRID,
    PWCCAError,
    PWCCAFit,
    accumulate_stats,
    default_pairs,
    layer_score,
    pwcca_crossval,
    pwcca_fit,
    stratified_parts,
)

ROOT = Path(__file__).resolve().parents[1]
REF_NPZ = ROOT / "tests" / "data" / "pwcca_reference.npz"  # the reference numbers, committed


def _load_bench_script():
    spec = importlib.util.spec_from_file_location("bench_pwcca", ROOT / "scripts" / "bench_pwcca.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _perturb(a: np.ndarray, rel: float, seed: int) -> np.ndarray:
    return a * (1.0 + rel * np.random.default_rng(seed).standard_normal(a.shape))


def _onehot_data(n=1200, classes=12, empty=(3, 7), dim=24, seed=0):
    """Features that depend on a label, and the label's one-hot view with empty classes."""
    rng = np.random.default_rng(seed)
    present = np.array([c for c in range(classes) if c not in empty])
    labels = present[rng.integers(0, present.size, n)]
    onehot = np.eye(classes)[labels]
    feats = rng.standard_normal((classes, dim))[labels] + 1.5 * rng.standard_normal((n, dim)) + 0.5
    return feats, onehot, labels


# ------------------------------------------------------------------------ stability


@pytest.mark.parametrize("eps", [(1e-10, 1e-10), (1e-9, 1e-11), (1e-11, 1e-11)])
def test_c4_held_out_score_is_stable_under_tiny_perturbation(eps):
    z = np.load(REF_NPZ)
    x, y, fr, hr = z["c4_x"], z["c4_y"], z["c4_fit_rows"], z["c4_held_rows"]
    base = pwcca_fit(x[fr], y[fr], *eps)
    assert base.kept_dims_y == 17 and base.rank_y == 16 and base.rank_x == 64
    s0 = base.score(x[hr], y[hr])
    for seed in range(3):
        xp = _perturb(x, 1e-12, seed)
        s = pwcca_fit(xp[fr], y[fr], *eps).score(xp[hr], y[hr])
        assert abs(s - s0) < 1e-6


def test_c4_cross_validation_is_stable_under_tiny_perturbation():
    z = np.load(REF_NPZ)
    x, y = z["c4_x"], z["c4_y"]
    parts = [z[f"c4_part{i}"] for i in range(10)]
    pairs = [(0, 2), (8, 6), (9, 3)]
    s0 = pwcca_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID).mean_test_score
    s1 = pwcca_crossval(_perturb(x, 1e-12, 5), y, parts, pairs, DEFAULT_EPS_GRID).mean_test_score
    assert abs(s1 - s0) < 1e-6


@pytest.mark.parametrize("onehot_is_x", [False, True])
def test_own_onehot_data_is_stable_and_null_direction_removed(onehot_is_x):
    feats, onehot, _ = _onehot_data()
    fr, hr = np.arange(1000), np.arange(1000, 1200)

    def score(f, o):
        x, y = (o, f) if onehot_is_x else (f, o)
        fit = pwcca_fit(x[fr], y[fr], 1e-10, 1e-10)
        return fit, fit.score(x[hr], y[hr])

    fit, s0 = score(feats, onehot)
    rank_oh = fit.rank_x if onehot_is_x else fit.rank_y
    kept_oh = fit.kept_dims_x if onehot_is_x else fit.kept_dims_y
    assert kept_oh == 10 and rank_oh == 9  # two empty classes dropped, sum-to-one null removed
    assert fit.num_directions == 10 and fit.correlations[-1] == 0.0
    assert 0.3 < s0 < 1.0
    for seed in range(3):
        _, s_f = score(_perturb(feats, 1e-12, seed), onehot)
        _, s_o = score(feats, _perturb(onehot, 1e-12, seed + 10))
        assert abs(s_f - s0) < 1e-6 and abs(s_o - s0) < 1e-6


def test_null_removal_leaves_full_rank_views_alone():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 10))
    y = x[:, :6] @ rng.standard_normal((6, 6)) + rng.standard_normal((500, 6))
    a = pwcca_fit(x, y, 1e-10, 1e-10)
    b = pwcca_fit(x, y, 1e-10, 1e-10, null_tol=0.0)
    assert (a.rank_x, a.rank_y) == (10, 6)
    assert a.score(x, y) == b.score(x, y)


# ------------------------------------------------------- statistics vs direct computation


@pytest.mark.parametrize(
    "n, dx, dy, offset",
    [(900, 20, 12, 0.0), (900, 10, 16, 0.0), (900, 14, 14, 0.0), (900, 20, 12, 1e3)],
)
def test_score_from_statistics_equals_direct_qr(n, dx, dy, offset):
    """The weights from part statistics equal the reference's n x k QR on the rows."""
    base = _load_bench_script()
    rng = np.random.default_rng(n + dx + dy)
    lat = rng.standard_normal((n, 6))
    x = lat @ rng.standard_normal((6, dx)) + rng.standard_normal((n, dx)) + offset
    y = lat @ rng.standard_normal((6, dy)) + rng.standard_normal((n, dy)) - offset / 2
    fr, hr = np.arange(700), np.arange(700, n)
    for eps in [(1e-10, 1e-10), (1e-6, 1e-9)]:
        ours = pwcca_fit(x[fr], y[fr], *eps)
        ref = base.baseline_fit(x[fr], y[fr], *eps)
        for rows in (fr, hr):
            assert ours.score(x[rows], y[rows]) == pytest.approx(
                base.baseline_score(ref, x[rows], y[rows]), abs=1e-9)
        assert ours.weights_view == ("x" if dx < dy else "y")


def test_crossval_equals_baseline_that_recomputes_everything():
    base = _load_bench_script()
    x, y = base.make_frames(1500, 24, 10, seed=1)
    parts, pairs = stratified_parts(1500, 10, 1), default_pairs(10, 3, 1)
    ours = pwcca_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID)
    ref = base.baseline_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID)
    for a, b in zip(ours.per_pair, ref):
        assert (a.dev_part, a.test_part) == (b["dev_part"], b["test_part"])
        for key in ("dev_score", "test_score", "train_score"):
            assert getattr(a, key) == pytest.approx(b[key], abs=1e-9)


def test_bench_script_runs_small_and_agrees(tmp_path):
    out = tmp_path / "bench.json"
    res = _load_bench_script().main(["--n", "2000", "--dim-x", "32", "--dim-y", "8", "--out", str(out)])
    assert res["max_score_diff"] < 1e-8 and res["fits"] == 27
    assert json.loads(out.read_text())["n"] == 2000


def test_part_statistics_add_up_to_the_whole():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 5)) + 7, rng.standard_normal((300, 3))
    parts = stratified_parts(300, 4, seed=0)
    stats = accumulate_stats(x, y, parts)
    total = stats[0] + stats[1] + stats[2] + stats[3]
    z = np.hstack([x, y])
    assert total.n == 300
    np.testing.assert_allclose(total.mean.cpu().numpy(), z.mean(0), rtol=1e-13)
    np.testing.assert_allclose(total.scatter().cpu().numpy() / 299, np.cov(z.T), rtol=1e-11, atol=1e-13)


def test_torch_and_float32_inputs_match_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    y = (x[:, :4] + rng.standard_normal((400, 4))).astype(np.float32)
    a = pwcca_fit(x, y, 1e-10, 1e-10).score(x, y)
    b = pwcca_fit(torch.from_numpy(x), torch.from_numpy(y), 1e-10, 1e-10).score(torch.from_numpy(x), y)
    assert a == b and 0.3 < a < 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    base = _load_bench_script()
    x, y = base.make_frames(3000, 64, 16, seed=4)
    parts, pairs = stratified_parts(3000, 10, 0), default_pairs(10, 3, 0)
    cpu = pwcca_crossval(x, y, parts, pairs, device="cpu")
    gpu = pwcca_crossval(x, y, parts, pairs, device="cuda")
    assert gpu.mean_test_score == pytest.approx(cpu.mean_test_score, abs=1e-9)


# ------------------------------------------------------------------ protocol helpers


def test_stratified_parts_balance_every_label():
    labels = np.repeat(np.arange(5), [40, 23, 7, 100, 1])
    parts = stratified_parts(labels, 10, seed=3)
    allrows = np.concatenate(parts)
    assert np.array_equal(np.sort(allrows), np.arange(labels.size))  # a partition
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1
    for c, count in enumerate([40, 23, 7, 100, 1]):
        per_part = [int((labels[p] == c).sum()) for p in parts]
        assert min(per_part) >= count // 10 and max(per_part) <= -(-count // 10)
    again = stratified_parts(labels, 10, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = stratified_parts(labels, 10, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_random_parts_and_errors():
    parts = stratified_parts(1003, 10, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1003))
    assert {p.size for p in parts} == {100, 101}
    with pytest.raises(ValueError, match="cannot split 5 rows into 10 parts"):
        stratified_parts(5)


def test_default_pairs_are_disjoint_and_seeded():
    pairs = default_pairs(10, 3, seed=7)
    flat = [p for pair in pairs for p in pair]
    assert len(pairs) == 3 and len(set(flat)) == 6 and all(0 <= p < 10 for p in flat)
    assert pairs == default_pairs(10, 3, seed=7)
    assert pairs != default_pairs(10, 3, seed=8)
    with pytest.raises(ValueError, match="disjoint"):
        default_pairs(5, 3)


def test_default_eps_grid_is_the_reference_grid():
    assert len(DEFAULT_EPS_GRID) == 9
    assert set(DEFAULT_EPS_GRID) == {(a, b) for a in (1e-11, 1e-10, 1e-9) for b in (1e-11, 1e-10, 1e-9)}
    assert DEFAULT_EPS_GRID[0] == (1e-11, 1e-11)


def test_crossval_keeps_first_best_and_falls_back_on_failure(monkeypatch):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((600, 6))
    y = x[:, :3] + rng.standard_normal((600, 3))
    parts, pairs = stratified_parts(600, 10, 0), default_pairs(10, 3, 0)
    # duplicated candidates score identically: the first one must be kept
    res = pwcca_crossval(x, y, parts, pairs, [(1e-10, 1e-10), (1e-10, 1e-10)])
    assert all(not p.fallback for p in res.per_pair)

    real = PWCCAFit.from_stats.__func__

    def failing_small_eps(cls, stats, eps_x, eps_y, *a, **k):
        if eps_x < 1e-7:
            raise PWCCAError("simulated LAPACK failure")
        return real(cls, stats, eps_x, eps_y, *a, **k)

    monkeypatch.setattr(PWCCAFit, "from_stats", classmethod(failing_small_eps))
    res = pwcca_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID)
    for p in res.per_pair:
        assert p.fallback and (p.chosen_eps_x, p.chosen_eps_y) == (1e-7, 1e-7)
        assert len(p.failed_eps) == 10  # the 9 grid pairs and (1e-8, 1e-8)
    monkeypatch.setattr(cca, "FALLBACK_EPS", (1e-8,))
    with pytest.raises(PWCCAError, match="every epsilon"):
        pwcca_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID)


def test_bad_inputs_name_the_problem():
    x, y = np.zeros((50, 3)), np.zeros((40, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        pwcca_fit(x, y, 1e-10, 1e-10)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((100, 3)), rng.standard_normal((100, 2))
    parts = stratified_parts(100, 10)
    with pytest.raises(ValueError, match="dev and test parts must differ"):
        pwcca_crossval(x, y, parts, [(1, 1)], DEFAULT_EPS_GRID)
    with pytest.raises(ValueError, match="names part 12"):
        pwcca_crossval(x, y, parts, [(1, 12)], DEFAULT_EPS_GRID)
    with pytest.raises(ValueError, match="outside"):
        pwcca_crossval(x, y, parts[:-1] + [np.array([100])], [(0, 1)], DEFAULT_EPS_GRID)
    with pytest.raises(ValueError, match="eps_x"):
        pwcca_fit(x, y, 10.0, 1e-10)
    with pytest.raises(ValueError, match="fit is for dims"):
        pwcca_fit(x, y, 1e-10, 1e-10).score(x[:, :2], y)
    x[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pwcca_fit(x, y, 1e-10, 1e-10)
    with pytest.raises(ValueError, match="2-D"):
        pwcca_fit(x[:, 0], y, 1e-10, 1e-10)


# -------------------------------------------------------------------------- layer_score


def test_layer_score_separates_dependent_from_shuffled_and_is_jsonable():
    feats, onehot, labels = _onehot_data(n=1500, seed=1)
    real = layer_score(feats, onehot, labels=labels, seed=0)
    shuffled = onehot[np.random.default_rng(0).permutation(len(onehot))]
    ctrl = layer_score(feats, shuffled, labels=labels, seed=0)
    assert real["score"] > 0.5 and ctrl["score"] < 0.25
    json.dumps(real)
    assert real["num_splits"] == 3 and len(real["splits"]) == 3
    assert real["score"] == pytest.approx(np.mean([s["test_score"] for s in real["splits"]]))
    assert real == layer_score(feats, onehot, labels=labels, seed=0)  # reproducible
    assert real["splits"] != layer_score(feats, onehot, labels=labels, seed=1)["splits"]


def test_layer_score_over_sample_sets_and_repeats():
    base = _load_bench_script()
    sets = [base.make_frames(800, 16, 8, seed=s) for s in range(3)]
    res = layer_score([s[0] for s in sets], [s[1] for s in sets], seed=2, repeats=2)
    assert res["num_splits"] == 3 * 2 * 3 and res["num_samples"] == [800, 800, 800]
    assert {(s["sample_set"], s["repeat"]) for s in res["splits"]} == {(a, b) for a in range(3) for b in range(2)}
    single = layer_score(sets[1][0], sets[1][1], seed=2 + 1000)
    assert single["splits"][0]["test_score"] == pytest.approx(
        next(s for s in res["splits"] if s["sample_set"] == 1 and s["repeat"] == 0)["test_score"])
    with pytest.raises(ValueError, match="sample sets"):
        layer_score([sets[0][0]], [s[1] for s in sets])
