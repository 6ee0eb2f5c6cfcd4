"""Result records as the harness writes them (built from the JSON the writers produce), with answers
known by construction, and a helper that writes them where the runner would."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import tasks
from bench import records
from bench.results import config_hash, result_path, write_record

METRICS = {name: (tasks.get(name).metric, tasks.get(name).higher_is_better) for name in tasks.names()}


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
) -> records.ProbeResult:
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
    return records.from_json({
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
    })


def cca_result(upstream: str, prop: str, scores: Sequence[float | None], label: str | None = None,
               seed: int = 0) -> records.CCAResult:
    config = {"property": prop, "upstream": upstream, "seed": seed}
    return records.from_json({
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
    })


def failure_result(upstream: str, task: str, error: str) -> records.FailureRecord:
    config = {"task": task, "upstream": upstream}
    return records.FailureRecord(unit_kind="probe", upstream=upstream, unit=task, error=error, config=config,
                                 config_hash=config_hash(config), seed=0)


def stand_in(kind: str, upstream: str, name: str, config: dict[str, Any], chash: str, seed: int) -> records.Result:
    """A one-layer probe or CCA record carrying a planned unit's config and hash (stand-in unit functions)."""
    made = probe_result(upstream, name, [50.0]) if kind == "probe" else cca_result(upstream, name, [0.5])
    return replace(made, config=config, config_hash=chash, seed=seed)


def write_all(out_dir: Path, results: Sequence[records.Result]) -> Path:
    """Write each result where the runner would (`<out>/<kind>/<upstream>__<unit>.json`)."""
    for r in results:
        name = r.unit if isinstance(r, records.FailureRecord) else r.task if r.kind == "probe" else r.property
        write_record(result_path(out_dir, r.kind, r.upstream, name), r)
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


def realistic_suite() -> list[records.Result]:
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


# ----------------------------------------------------------------------------- zoo-shaped result sets
# Many upstreams x all six tasks x CCA-mel/phone/word, with layer curves of a known shape: every
# task peaks at a known depth (PR/ASR at 40 %, the utterance tasks at 70 %), CCA-phone peaks with
# PR, CCA-word with the utterance tasks, CCA-mel falls with depth. Used to check that reports
# stay readable at the demo's and a full zoo's size; the numbers are synthetic, never results.
TASKS = tuple(tasks.names())
_PEAK = {"pr": 0.4, "asr": 0.4, "ic": 0.7, "slurp_scenario": 0.7, "slurp_action": 0.7, "ks": 0.6}
_CCA_PEAK = {"phone": 0.4, "word": 0.7}

DEMO_ZOO = [("FBANK", "fbank", 1), ("MFCC", "mfcc", 1), ("wav2vec2-tiny (rand)", "randinit:wav2vec2-tiny", 5),
            ("HuBERT-tiny (rand)", "randinit:hubert-tiny", 5), ("WavLM-tiny (rand)", "randinit:wavlm-tiny", 5)]


def superb_zoo() -> list[tuple[str, str, int]]:
    """The 19 upstreams of configs/zoo/superb.yaml with their layer counts (Large, XLS*: 25, else 13; FBANK: 1)."""
    from bench.config import CONFIG_DIR, load_yaml

    zoo = load_yaml(CONFIG_DIR / "zoo" / "superb.yaml")["upstreams"]
    zoo.sort(key=lambda u: "(rand)" not in u["name"])  # the random-init control first: the weakest curves
    return [(u["name"], u["spec"], 1 if u["spec"] == "fbank" else 25 if "Large" in u["name"] or "XLS" in u["name"] else 13)
            for u in zoo]


def zoo_suite(zoo: Sequence[tuple[str, str, int]], tasks: Sequence[str] = TASKS, seed: int = 0) -> list[records.Result]:
    """Probe and CCA results for `zoo` ((label, spec, layers) triples) on `tasks`; deterministic in `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[records.Result] = []
    for i, (label, spec, n) in enumerate(zoo):
        depth = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        quality = 1.0 + 0.5 * i / max(1, len(zoo) - 1)  # later upstreams are better
        for task in tasks:
            bump = np.exp(-((depth - _PEAK[task]) ** 2) / 0.05) * quality
            if METRICS[task][1]:  # accuracy in %
                test = 30 + 40 * bump + rng.normal(0, 1.0, n)
                ws = float(test.max() + rng.normal(1.0, 1.5))
            else:  # error rate in %
                test = 80 - 40 * bump + rng.normal(0, 1.0, n)
                ws = float(test.min() - rng.normal(1.0, 1.5))
            dev = test + rng.normal(0, 0.5, n)
            weights = np.exp(3 * bump) / np.exp(3 * bump).sum()
            out.append(probe_result(spec, task, [round(float(v), 2) for v in test], dev=[round(float(v), 2) for v in dev],
                                    weights=[float(w) for w in weights], ws_test=round(ws, 2), label=label, seed=seed))
        for prop in ("mel", "phone", "word"):
            if prop == "mel":
                scores = 0.8 - 0.5 * depth
            else:
                scores = 0.1 + 0.5 * np.exp(-((depth - _CCA_PEAK[prop]) ** 2) / 0.06) * quality / 1.5
            scores = scores + rng.normal(0, 0.01, n)
            out.append(cca_result(spec, prop, [round(float(v), 4) for v in scores], label=label, seed=seed))
    return out
