"""Helpers that write realistic result JSONs (the runner's schema) with answers known by construction."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from bench.results import config_hash, result_path, write_result

METRICS = {"pr": ("per", False), "asr": ("wer", False), "ic": ("accuracy", True), "slurp_scenario": ("accuracy", True),
           "slurp_action": ("accuracy", True), "ks": ("accuracy", True)}


def probe_result(
    upstream: str,
    task: str,
    test: Sequence[float | None],
    dev: Sequence[float | None] | None = None,
    weights: Sequence[float] | None = None,
    ws_test: float | None = None,
    ws_dev: float | None = None,
    label: str | None = None,
    diverged: Sequence[int] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """A probe result; `test`/`dev` are raw metrics (PER/WER as error %) for layers 0..L."""
    metric, hib = METRICS[task]
    dev = list(test) if dev is None else list(dev)
    n = len(test)
    per_layer = []
    for i in range(n):
        flags = ["diverged"] if i in diverged else []
        per_layer.append({
            "layer": i,
            "name": f"layer{i}",
            "dev": float("nan") if i in diverged else dev[i],
            "test": float("nan") if i in diverged else test[i],
            "flags": flags,
        })
    weights = [1.0 / n] * n if weights is None else list(weights)
    config = {"task": task, "upstream": upstream, "preset": "tiny", "seed": seed}
    return {
        "kind": "probe",
        "upstream": upstream,
        "label": label,
        "task": task,
        "metric": metric,
        "higher_is_better": hib,
        "per_layer": per_layer,
        "weighted_sum": {
            "dev": ws_dev if ws_dev is not None else ws_test,
            "test": ws_test,
            "weights": weights,
            "layers": list(range(n)),
            "flags": [],
        },
        "config": config,
        "config_hash": config_hash(config),
        "seed": seed,
        "timings": {"total_s": 12.5},
        "device": "cpu",
    }


def cca_result(upstream: str, prop: str, scores: Sequence[float | None], label: str | None = None, seed: int = 0) -> dict[str, Any]:
    config = {"property": prop, "upstream": upstream, "seed": seed}
    return {
        "kind": "cca",
        "upstream": upstream,
        "label": label,
        "property": prop,
        "per_layer": [{"layer": i, "name": f"layer{i}", "score": s, "n_samples": 400} for i, s in enumerate(scores)],
        "config": config,
        "config_hash": config_hash(config),
        "seed": seed,
        "timings": {"total_s": 3.0},
        "device": "cpu",
    }


def failure_result(upstream: str, task: str, error: str) -> dict[str, Any]:
    config = {"task": task, "upstream": upstream}
    return {"kind": "failure", "upstream": upstream, "task": task, "error": error,
            "config": config, "config_hash": config_hash(config), "seed": 0}


def write_all(out_dir: Path, results: Sequence[dict[str, Any]]) -> Path:
    """Write each result where the runner would (`<out>/<kind>/<upstream>__<unit>.json`)."""
    for r in results:
        name = r.get("task") or r.get("property")
        write_result(result_path(out_dir, r["kind"], r["upstream"], name), r)
    return out_dir


# A realistic two-upstream suite over 5 layers whose answers are known by construction:
#   "hf:tiny-hubert" (label "HuBERT tiny"): PER by layer [40, 30, 20, 25, 35] -> scores
#     [60, 70, 80, 75, 65], best layer 2; CCA-phone [0.2, 0.4, 0.8, 0.6, 0.3] ranks layers
#     identically (rho = 1, top-1 hit, regret 0); CCA-word [0.1, 0.2, 0.3, 0.4, 0.5] picks
#     layer 4 (regret 80 - 65 = 15). IC accuracy [50, 60, 70, 90, 85], best layer 3;
#     CCA-word picks layer 4 (regret 5). Weighted sum: PR 22 (score 78), IC 88.
#   "fbank" (no label): PER [50, 45, 40, 35, 30] -> scores rising to layer 4; CCA-phone falls
#     (rho = -1, picks layer 0, regret 20), CCA-word rises (rho = 1); weighted sum PER 33;
#     its IC unit failed.
HUBERT = "hf:tiny-hubert"
FBANK = "fbank"


def realistic_suite() -> list[dict[str, Any]]:
    return [
        probe_result(HUBERT, "pr", [40, 30, 20, 25, 35], weights=[0.1, 0.2, 0.3, 0.25, 0.15], ws_test=22.0, label="HuBERT tiny"),
        probe_result(HUBERT, "ic", [50, 60, 70, 90, 85], weights=[0.05, 0.1, 0.2, 0.3, 0.35], ws_test=88.0, label="HuBERT tiny"),
        cca_result(HUBERT, "mel", [0.9, 0.7, 0.5, 0.3, 0.2], label="HuBERT tiny"),
        cca_result(HUBERT, "phone", [0.2, 0.4, 0.8, 0.6, 0.3], label="HuBERT tiny"),
        cca_result(HUBERT, "word", [0.1, 0.2, 0.3, 0.4, 0.5], label="HuBERT tiny"),
        probe_result(FBANK, "pr", [50, 45, 40, 35, 30], weights=[0.3, 0.25, 0.2, 0.15, 0.1], ws_test=33.0),
        cca_result(FBANK, "phone", [0.5, 0.4, 0.3, 0.2, 0.1]),
        cca_result(FBANK, "word", [0.1, 0.2, 0.3, 0.4, 0.5]),
        failure_result(FBANK, "ic", "RuntimeError: CUDA out of memory"),
    ]
