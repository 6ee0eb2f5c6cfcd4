"""CCA-guided layer selection: measure CCA first, then probe only the CCA top-K layers.

The paper's practical question is "can I pick the layer before paying for a full probe
sweep?". `select_layer` answers it for one (upstream, task): it runs (or reuses) the CCA
property that predicts the task, probes the K layers CCA ranks highest, reports the layer
with the best dev score among them, and the compute that cost against a full sweep — in
heads trained and, where a full-sweep result exists, in measured wall time, with the regret
of the chosen layer against the sweep's best layer.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.compare import best_probed_layer, ranking
from bench.config import ConfigError, merge
from bench.records import CCAResult, ProbeResult
from bench.results import is_done, read_record, slug, write_json_atomic


@dataclass
class Selection:
    """What `select_layer` decided and what it cost; `to_dict` is the JSON report."""

    upstream: str
    task: str
    property: str
    top_k: int
    cca_ranking: list[int]  # layer indices, best CCA score first
    probed_layers: list[int]
    chosen_layer: int
    chosen_dev: float
    chosen_test: float | None
    metric: str
    higher_is_better: bool
    heads_trained: int  # guided: K single-layer heads
    heads_full_sweep: int  # full sweep: L+1 single-layer heads + the weighted sum
    head_fraction: float
    cca_reused: bool  # a finished CCA result of the same config was found in `results_dir`
    cca_seconds: float
    probe_seconds: float
    full_sweep_seconds: float | None  # measured, from an existing full-sweep result
    time_fraction: float | None
    full_best_layer: int | None
    regret: float | None  # best full-sweep layer's test score minus the chosen layer's (sign: worse >= 0)
    best_in_probed: bool | None
    cca_result: str
    probe_result: str
    full_result: str | None
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "select", **asdict(self)}


def property_for_task(task: str, mapping: dict[str, Any] | None = None) -> str:
    """The CCA property that predicts `task` (first listed in the comparator's mapping)."""
    from bench import compare

    props = (mapping or compare.load_compare_config().mapping).get(task)
    if not props:
        raise ConfigError(f"no CCA property is mapped to task {task!r} in the comparator mapping")
    return props[0]


def select_layer(
    upstream: str,
    task: str,
    corpus: str | Path,
    top_k: int,
    *,
    preset: str = "quick",
    cca_preset: str = "default",
    property: str | None = None,
    overrides: dict[str, Any] | None = None,
    cca_overrides: dict[str, Any] | None = None,
    mapping: dict[str, Any] | None = None,
    out_dir: str | Path = "runs/select",
    results_dir: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Selection, Path]:
    """CCA, then a probe over the CCA top-K layers; writes `<out>/reports/<upstream>__<task>.json`.

    `results_dir` (e.g. a suite's results folder) is searched for a finished CCA result to
    reuse and for a full-sweep probe result to compare with; the guided probe goes to
    `<out>/guided/` so it never replaces a full-sweep result. `overrides` are the probe
    config overrides shared by the guided run and the full sweep it is compared with; the
    guided run trains no weighted-sum head (it only picks a single layer).
    """
    from bench import layerwise_cca, probe

    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}")
    prop = property or property_for_task(task, mapping)
    out_dir = Path(out_dir)

    # 1. CCA: reuse a finished result from results_dir when its config matches, else compute.
    t0 = time.perf_counter()
    cca_path = None
    if results_dir is not None:
        for _, path, _, chash in layerwise_cca.plan_cca(upstream, corpus, [prop], preset=cca_preset,
                                                        overrides=cca_overrides, out_dir=results_dir, seed=seed):
            if is_done(path, chash):
                cca_path = Path(path)
    cca_reused = cca_path is not None
    if cca_path is None:
        (outcome,) = layerwise_cca.run_cca(upstream, corpus, [prop], preset=cca_preset, overrides=cca_overrides,
                                           out_dir=out_dir, seed=seed, device=device, progress=progress)
        cca_path = Path(outcome.path)
    cca_result = read_record(cca_path, CCAResult)
    cca_seconds = time.perf_counter() - t0
    order = ranking(cca_result.scores)
    if not order:
        raise ValueError(f"CCA result {cca_path} has no per-layer scores")
    probed = sorted(order[:top_k])

    # 2. Probe only the top-K layers.
    t0 = time.perf_counter()
    guided_overrides = merge(overrides or {}, {"weighted_sum": {"enabled": False}}, strict=False)
    guided = probe.run_probe(upstream, task, corpus, preset=preset, overrides=guided_overrides, layers=probed,
                             out_dir=out_dir / "guided", seed=seed, device=device, progress=progress)
    probe_seconds = time.perf_counter() - t0
    guided_result = guided.result
    if guided.skipped:  # the guided run was already there: count the time it took when it ran
        probe_seconds = guided_result.wall_seconds or probe_seconds
    chosen = _best_on_dev(guided_result)
    n_layers = len(cca_result.per_layer)

    # 3. Against a full sweep, when one exists with the same probe config (all layers).
    full_path, full_seconds, full_best, regret, in_probed = None, None, None, None, None
    if results_dir is not None:
        path, _, chash = probe.plan_probe(upstream, task, corpus, preset=preset, overrides=overrides,
                                          out_dir=results_dir, seed=seed)
        if is_done(path, chash):
            full = read_record(path, ProbeResult)
            full_path = str(path)
            full_seconds = full.wall_seconds
            full_best = _best_on_dev(full).layer
            in_probed = full_best in probed
            test = full.scores("test")  # higher is better: regret >= 0 when the chosen layer is worse
            if full_best in test and chosen.layer in test:
                regret = test[full_best] - test[chosen.layer]
    guided_total = cca_seconds + probe_seconds
    selection = Selection(
        upstream=upstream, task=task, property=prop, top_k=top_k, cca_ranking=order, probed_layers=probed,
        chosen_layer=chosen.layer, chosen_dev=chosen.dev, chosen_test=chosen.test,
        metric=guided_result.metric, higher_is_better=guided_result.higher_is_better,
        heads_trained=len(probed), heads_full_sweep=n_layers + 1,
        head_fraction=len(probed) / (n_layers + 1),
        cca_reused=cca_reused, cca_seconds=cca_seconds, probe_seconds=probe_seconds,
        full_sweep_seconds=full_seconds,
        time_fraction=None if not full_seconds else guided_total / full_seconds,
        full_best_layer=full_best, regret=regret, best_in_probed=in_probed,
        cca_result=str(cca_path), probe_result=str(guided.path), full_result=full_path, seed=seed,
    )
    report = write_json_atomic(out_dir / "reports" / f"{slug(upstream)}__{slug(task)}.json", selection.to_dict())
    return selection, report


def _best_on_dev(result: ProbeResult):
    """The per-layer entry the comparator calls the best probed layer (by dev; diverged heads left out)."""
    layer, _, on_test = best_probed_layer(result)
    if layer is None or on_test:
        raise ValueError(f"probe result {result.path} has no per-layer dev scores")
    return result.layer(layer)


def format_selection(s: Selection) -> str:
    lines = [
        f"{s.upstream} x {s.task}: CCA-{s.property} ranking (best first): {s.cca_ranking}",
        f"probed the top-{s.top_k} layers {s.probed_layers}; chosen layer {s.chosen_layer} "
        f"(dev {s.metric} {s.chosen_dev:.4g}" + (f", test {s.chosen_test:.4g})" if s.chosen_test is not None else ")"),
        f"compute: {s.heads_trained} single-layer heads trained vs {s.heads_full_sweep} in a full sweep "
        f"({100 * s.head_fraction:.0f}% of the head-steps); wall time "
        + (f"CCA reused from {s.cca_result}" if s.cca_reused else f"CCA {s.cca_seconds:.1f} s")
        + f" + probe {s.probe_seconds:.1f} s",
    ]
    if s.full_sweep_seconds:
        lines.append(f"full sweep took {s.full_sweep_seconds:.1f} s: guided run = {100 * s.time_fraction:.0f}% of it")
    if s.full_best_layer is not None:
        lines.append(f"full sweep's best dev layer: {s.full_best_layer} ({'in' if s.best_in_probed else 'NOT in'} the "
                     f"probed set)" + (f"; regret of the chosen layer on test: {s.regret:.4g}" if s.regret is not None else ""))
    return "\n".join(lines)
