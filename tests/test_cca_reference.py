"""PWCCA against the reference numbers (reference/pwcca_reference.{json,npz}).

The numbers were computed with the paper's reference PWCCA (plus the svd_flip sign rule);
LayerBench must match them to 1e-8 on the well-conditioned cases and to 1e-2 on the
one-hot case c4, where the reference itself is ill-conditioned (bench/cca.py docstring).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cca import pwcca_crossval, pwcca_fit

# Reference numbers for the PWCCA protocol (pwcca_reference.{json,npz}), committed so the tests never skip.
REF_DIR = Path(__file__).parent / "data"
REF = json.loads((REF_DIR / "pwcca_reference.json").read_text())
ARR = np.load(REF_DIR / "pwcca_reference.npz")

TOL = {"c1": 1e-8, "c2": 1e-8, "c3": 1e-8, "c4": 1e-2, "c5": 1e-8}

FIT_CASES = [
    pytest.param(case["name"], res, id=f"{case['name']}-eps{res['eps_x']:g},{res['eps_y']:g}")
    for case in REF["cases"]
    for res in case["results"]
]
CV = REF["cross_validation"]
CV_CASES = [pytest.param(c, id=c["name"]) for c in CV["cases"]]


def test_every_case_has_a_tolerance():
    assert {c["name"] for c in REF["cases"]} == set(TOL)


@pytest.mark.parametrize("name, res", FIT_CASES)
def test_in_sample_all_rows(name, res):
    x, y = ARR[f"{name}_x"], ARR[f"{name}_y"]
    fit = pwcca_fit(x, y, res["eps_x"], res["eps_y"])
    assert fit.kept_dims_x == res["kept_dims_x"]
    assert fit.kept_dims_y == res["kept_dims_y"]
    assert fit.num_directions == min(res["kept_dims_x"], res["kept_dims_y"])
    assert fit.score(x, y) == pytest.approx(res["in_sample_all_rows"], abs=TOL[name])


@pytest.mark.parametrize("name, res", FIT_CASES)
def test_fit_rows_then_held_rows(name, res):
    x, y = ARR[f"{name}_x"], ARR[f"{name}_y"]
    fit_rows, held = ARR[f"{name}_fit_rows"], ARR[f"{name}_held_rows"]
    fit = pwcca_fit(x[fit_rows], y[fit_rows], res["eps_x"], res["eps_y"])
    assert fit.kept_dims_x == res["kept_dims_x"]
    assert fit.kept_dims_y == res["kept_dims_y"]
    assert fit.score(x[fit_rows], y[fit_rows]) == pytest.approx(res["fit_rows_in_sample"], abs=TOL[name])
    assert fit.score(x[held], y[held]) == pytest.approx(res["held_rows_score"], abs=TOL[name])


@pytest.mark.parametrize("case", CV_CASES)
def test_cross_validation(case):
    name = case["name"]
    x, y = ARR[f"{name}_x"], ARR[f"{name}_y"]
    parts = [ARR[f"{name}_part{i}"] for i in range(10)]
    pairs = [tuple(p) for p in CV["pairs"]]
    grid = [tuple(e) for e in CV["eps_candidates_in_order"]]
    res = pwcca_crossval(x, y, parts, pairs, grid)
    tol = TOL[name]
    assert len(res.per_pair) == len(case["per_pair"])
    for got, want in zip(res.per_pair, case["per_pair"]):
        assert (got.dev_part, got.test_part) == (want["dev_part"], want["test_part"])
        assert not got.fallback and got.failed_eps == []
        if tol <= 1e-8:
            # well-conditioned: the eps choice itself must be the reference's
            assert (got.chosen_eps_x, got.chosen_eps_y) == (want["chosen_eps_x"], want["chosen_eps_y"])
        assert (got.chosen_eps_x, got.chosen_eps_y) in grid
        assert got.dev_score == pytest.approx(want["dev_score"], abs=tol)
        assert got.test_score == pytest.approx(want["test_score"], abs=tol)
        assert got.train_score == pytest.approx(want["train_score"], abs=tol)
    assert res.mean_test_score == pytest.approx(case["mean_test_score"], abs=tol)
    assert res.mean_test_score == pytest.approx(np.mean([p.test_score for p in res.per_pair]), abs=1e-15)
