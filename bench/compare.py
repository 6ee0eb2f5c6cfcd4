"""Comparator: does cheap layer-wise CCA predict which layer a (costly) probe finds best?

For every (upstream, task, CCA property) named by the mapping (by default each task's
`cca_properties`; configs/compare.yaml or the user's file may replace it) it
relates the per-layer CCA scores of a CCA result file to the per-layer scores of a probe
result file, as in Pasad, Shi & Livescu (ICASSP 2023).

Protocol choices (documented because they change numbers):
- Task scores are made "higher is better": error rates (PER, WER) become 100 - error.
- Rank correlations (Spearman rho, Kendall tau) use the per-layer TEST scores, as the paper
  does; layers whose head diverged (flag "diverged" or a non-finite metric) and layers with a
  non-finite CCA score are left out. Fewer than two layers, or a constant vector, leave the
  correlation undefined: it is reported as null with a note, never as 0.
- The "best probed layer" used for top-k hits, the recommendation's regret, guided search
  and best-single-layer versus weighted sum is chosen by DEV score (no test leakage) and
  scored on test. The oracle best-by-test layer is reported beside it. Regret can therefore
  be negative when the CCA pick happens to test better than the dev-selected layer.
- Ties (equal CCA scores or equal dev scores) go to the lower layer index, so results are
  deterministic.
- A pair is *ranked* when its correlation covers at least MIN_RANKED_LAYERS layers: over one
  layer nothing is ranked, over two every correlation is +-1 and every top-k "hits". Only
  ranked pairs enter the aggregates, the single-layer-versus-weighted-sum count, the report's
  pair table and the CSV; the others are listed once per upstream ("not ranked (one layer)")
  and stay in comparison.json with `ranked: false`.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import stats

import tasks
from bench import cca_properties, schema
from bench.config import CONFIG_DIR, ConfigError, load_yaml, merge
from bench.records import CCAResult, FailureRecord, ProbeResult, Result, finite
from bench.results import write_json_atomic

DEFAULT_CONFIG = CONFIG_DIR / "compare.yaml"
MIN_RANKED_LAYERS = 3


# ----------------------------------------------------------------------------- parsing


@dataclass
class ResultSet:
    """All result files of a run, indexed by unit; failures kept for the report."""

    probes: dict[tuple[str, str], ProbeResult] = field(default_factory=dict)
    ccas: dict[tuple[str, str], CCAResult] = field(default_factory=dict)
    failures: list[FailureRecord] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def display(self, upstream: str) -> str:
        return self.labels.get(upstream) or upstream

    @property
    def upstreams(self) -> list[str]:
        ups = {u for u, _ in self.probes} | {u for u, _ in self.ccas}
        return sorted(ups, key=lambda u: (self.display(u), u))

    @property
    def tasks(self) -> list[str]:
        return sorted({t for _, t in self.probes}, key=tasks.sort_key)

    @property
    def properties(self) -> list[str]:
        return sorted({p for _, p in self.ccas}, key=cca_properties.sort_key)


def parse_results(results: Iterable[Result]) -> ResultSet:
    """Index probe / CCA / failure records (from bench.results.load_results); other kinds (e.g.
    clustering) are ignored.

    Two files for the same unit are an error: picking one silently could mix runs.
    """
    rs = ResultSet()
    for rec in results:
        if isinstance(rec, FailureRecord):
            rs.failures.append(rec)
            continue
        if isinstance(rec, ProbeResult):
            key, table = (rec.upstream, rec.task), rs.probes
        elif isinstance(rec, CCAResult):
            key, table = (rec.upstream, rec.property), rs.ccas
        else:
            continue
        if key in table:
            raise ValueError(
                f"two {rec.kind} results for {key[0]} / {key[1]}: {table[key].path} and {rec.path}; "
                "point the command at one run's results folder"
            )
        table[key] = rec
        if rec.label and rec.upstream not in rs.labels:
            rs.labels[rec.upstream] = str(rec.label)
    # A failure superseded by a later successful run of the same unit is not a failure any more.
    rs.failures = [f for f in rs.failures
                   if (f.upstream, f.task) not in rs.probes and (f.upstream, f.property) not in rs.ccas]
    rs.failures.sort(key=lambda f: (f.upstream, f.unit))
    return rs


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class CompareConfig:
    """Which CCA properties predict which task (first = the recommending one) and the top-k list
    (configs/compare.yaml; a bare name or number stands for a list of one)."""

    mapping: dict[str, list[str] | str] = field(metadata={"nonempty": True})
    top_k: list[int] | int = field(metadata={"ge": 1})

    def checked(self, loc: str) -> "CompareConfig":
        mapping = {task: [props] if isinstance(props, str) else props for task, props in self.mapping.items()}
        for task, props in mapping.items():
            if not props or not all(props):
                raise ConfigError(f"{loc}: mapping.{task} must be a non-empty list of property names, got {props!r}")
        top = [self.top_k] if isinstance(self.top_k, int) else self.top_k
        if not top or min(top) < 1:
            raise ConfigError(f"{loc}: top_k must be a list of positive integers, got {self.top_k!r}")
        return replace(self, mapping=mapping, top_k=sorted(set(top)))

    @property
    def top_ks(self) -> tuple[int, ...]:
        return tuple(self.top_k)


def default_mapping() -> dict[str, list[str]]:
    """Each registered task's `cca_properties` (the properties its task module says predict it)."""
    return {name: list(tasks.get(name).cca_properties) for name in tasks.names() if tasks.get(name).cca_properties}


def load_compare_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> CompareConfig:
    """configs/compare.yaml, optionally replaced by the user's file, then `key=value` overrides.

    A user file may give only some keys; the defaults fill the rest. `mapping` in a user
    file replaces the default mapping as a whole (a task left out is not compared).
    """
    base = load_yaml(DEFAULT_CONFIG)
    if base.get("mapping") is None:
        base["mapping"] = default_mapping()
    where = str(DEFAULT_CONFIG)
    if path is not None:
        user = load_yaml(path)
        schema.check_keys(user, schema.keys(CompareConfig), f"config file {path}")
        base = {**base, **user}
        where = str(path)
    if overrides:
        mapping_over = overrides.get("mapping")
        if isinstance(mapping_over, dict):
            # New tasks may be added to the mapping from the command line.
            base = {**base, "mapping": {**base["mapping"], **mapping_over}}
            overrides = {k: v for k, v in overrides.items() if k != "mapping"}
        base = merge(base, overrides, where=f"{where} overrides")
    return schema.load(CompareConfig, base, where)


# ----------------------------------------------------------------------------- statistics


def rank_correlation(
    x: Sequence[float], y: Sequence[float], names: tuple[str, str] = ("CCA", "task")
) -> tuple[float | None, float | None, str | None]:
    """Spearman rho and Kendall tau, or (None, None, why) when they are undefined; `names` name x and y in why."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.size < 2:
        return None, None, f"only {a.size} layer(s) with valid scores"
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        which = names[0] if np.ptp(a) == 0 else names[1]
        return None, None, f"{which} scores are constant across layers"
    rho = float(stats.spearmanr(a, b).statistic)
    tau = float(stats.kendalltau(a, b).statistic)
    return finite(rho), finite(tau), None


def argmax(scores: dict[int, float]) -> int | None:
    """Layer with the highest score; ties go to the lower layer index."""
    if not scores:
        return None
    return min(scores, key=lambda layer: (-scores[layer], layer))


def ranking(scores: dict[int, float]) -> list[int]:
    """Layers by score, best first; ties go to the lower layer index."""
    return sorted(scores, key=lambda layer: (-scores[layer], layer))


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


# ----------------------------------------------------------------------------- comparison


@dataclass
class GuidedSearch:
    """Probe only the CCA top-k layers and keep the best by dev."""

    k: int
    layer: int | None
    test: float | None
    regret: float | None
    probed: int
    total: int
    saved_fraction: float


@dataclass
class PairComparison:
    """One (upstream, task, CCA property) pair. Scores are test, higher is better."""

    upstream: str
    display: str
    task: str
    property: str
    primary: bool  # first property mapped to the task: its arg-max is the recommended layer
    metric: str
    n_layers: int  # layers in the correlation
    rho_cca: float | None
    tau_cca: float | None
    rho_weights: float | None
    tau_weights: float | None
    best_layer: int | None  # by dev
    best_test: float | None
    best_layer_by_test: int | None
    recommended_layer: int | None  # arg-max CCA among the probed layers
    recommended_test: float | None
    regret: float | None
    top_k_hit: dict[int, bool | None]
    cca_ranking: list[int]
    weighted_sum_test: float | None
    best_minus_ws: float | None
    guided: list[GuidedSearch]
    probe_path: str
    cca_path: str
    notes: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> bool:
        """Enough layers for a rank correlation to mean something (see the module docstring)."""
        return self.n_layers >= MIN_RANKED_LAYERS


@dataclass
class PredictorAggregate:
    """Means over pairs of one predictor (a CCA property, or "weights" for layer weights)."""

    predictor: str
    pairs: int
    defined: int  # pairs whose rank correlation is defined
    mean_rho: float | None
    mean_tau: float | None
    top_k_hit_rate: dict[int, float | None]
    mean_regret: float | None
    mean_guided_regret: dict[int, float | None]


@dataclass
class SingleVsWeighted:
    """Best single layer (dev-chosen, test-scored) against the weighted sum, over (upstream, task)."""

    pairs: int
    single_better_or_equal: int
    mean_difference: float | None  # best single - weighted sum, higher-is-better units


@dataclass
class Comparison:
    pairs: list[PairComparison]
    aggregates: list[PredictorAggregate]
    single_vs_ws: SingleVsWeighted
    mapping: dict[str, list[str]]
    top_ks: tuple[int, ...]
    failures: list[FailureRecord]
    notes: list[str]

    def pair(self, upstream: str, task: str, prop: str) -> PairComparison:
        for p in self.pairs:
            if (p.upstream, p.task, p.property) == (upstream, task, prop):
                return p
        raise KeyError(f"no comparison for upstream {upstream!r}, task {task!r}, property {prop!r}")

    def aggregate(self, predictor: str) -> PredictorAggregate:
        for a in self.aggregates:
            if a.predictor == predictor:
                return a
        raise KeyError(f"no aggregate for predictor {predictor!r}")

    @property
    def ranked_pairs(self) -> list[PairComparison]:
        return [p for p in self.pairs if p.ranked]

    def not_ranked(self) -> list[str]:
        """What the ranking leaves out, once per upstream where all its pairs are out for one reason.

        E.g. ["FBANK (one layer)", "HuBERT / asr / phone (2 layers with valid scores)"].
        """
        by_up: dict[str, list[PairComparison]] = {}
        for p in self.pairs:
            by_up.setdefault(p.upstream, []).append(p)
        out = []
        for ps in by_up.values():
            left = [p for p in ps if not p.ranked]
            if left and len(left) == len(ps) and len({p.n_layers for p in left}) == 1:
                out.append(f"{left[0].display} ({_layers_text(left[0].n_layers)})")
            else:
                out += [f"{p.display} / {p.task} / {p.property} ({_layers_text(p.n_layers)} with valid scores)" for p in left]
        return out

    def grouped_notes(self) -> list[str]:
        """Run-level notes, then one line per distinct note of the ranked pairs, naming where it applies.

        A task whose score is the same on every layer makes every correlation with it undefined
        (CCA and layer weights alike): that is one note per (upstream, task). Long lists are
        summarised per task ("asr (3 upstreams)").
        """
        by_note: dict[str, dict[tuple[str, str, str], None]] = {}
        for p in self.ranked_pairs:
            for n in p.notes:
                if n.endswith("task scores are constant across layers"):
                    n, where = _FLAT_TASK, (p.display, p.task, "")
                elif n.startswith(("weight", "no weighted-sum")):  # weights belong to (upstream, task)
                    where = (p.display, p.task, "")
                else:
                    where = (p.display, p.task, p.property)
                by_note.setdefault(n, {})[where] = None
        return [*self.notes, *(f"{n}: {_where_text(list(where))}" for n, where in by_note.items())]

    def recommended(self, upstream: str, task: str) -> PairComparison | None:
        """The pair of the task's primary (first mapped) property, if it was compared."""
        for p in self.pairs:
            if p.upstream == upstream and p.task == task and p.primary:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        return _json_clean(
            {
                "mapping": self.mapping,
                "top_k": list(self.top_ks),
                "aggregates": [asdict(a) for a in self.aggregates],
                "single_vs_weighted_sum": asdict(self.single_vs_ws),
                "min_ranked_layers": MIN_RANKED_LAYERS,
                "pairs": [{**asdict(p), "ranked": p.ranked} for p in self.pairs],
                "not_ranked": self.not_ranked(),
                "failures": [_failure_summary(f) for f in self.failures],
                "notes": self.notes,
            }
        )

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per ranked pair (the CSV)."""
        out = []
        for p in self.ranked_pairs:
            row: dict[str, Any] = {
                "upstream": p.upstream,
                "display": p.display,
                "task": p.task,
                "property": p.property,
                "primary": p.primary,
                "metric": p.metric,
                "n_layers": p.n_layers,
                "spearman_cca": p.rho_cca,
                "kendall_cca": p.tau_cca,
                "spearman_weights": p.rho_weights,
                "kendall_weights": p.tau_weights,
                "best_layer_dev": p.best_layer,
                "best_test": p.best_test,
                "best_layer_test": p.best_layer_by_test,
                "cca_layer": p.recommended_layer,
                "cca_layer_test": p.recommended_test,
                "regret": p.regret,
            }
            for k in self.top_ks:
                row[f"top{k}_hit"] = p.top_k_hit.get(k)
            for g in p.guided:
                row[f"guided{g.k}_layer"] = g.layer
                row[f"guided{g.k}_regret"] = g.regret
                row[f"guided{g.k}_saved"] = g.saved_fraction
            row["weighted_sum_test"] = p.weighted_sum_test
            row["best_minus_ws"] = p.best_minus_ws
            row["notes"] = "; ".join(p.notes)
            out.append({k: round(v, 6) if isinstance(v, float) else v for k, v in _json_clean(row).items()})
        return out

    def to_markdown(self) -> str:
        return render_markdown(self)


_FLAT_TASK = "no rank correlation where the task score is the same on every layer"
_MAX_LISTED = 6


def _where_text(where: list[tuple[str, str, str]]) -> str:
    """`A / asr, B / asr / word` for a few places; per task counts (`asr (3 upstreams)`) for many."""
    if len(where) <= _MAX_LISTED:
        return ", ".join(" / ".join(part for part in w if part) for w in where)
    per_task: dict[str, set[str]] = {}
    for display, task, _ in where:
        per_task.setdefault(task, set()).add(display)
    return ", ".join(f"{task} ({len(ups)} upstream{'s' if len(ups) > 1 else ''})" for task, ups in per_task.items())


def _layers_text(n: int) -> str:
    return {0: "no layer", 1: "one layer"}.get(n, f"{n} layers")


def _failure_summary(f: FailureRecord) -> dict[str, Any]:
    return {"upstream": f.upstream, "unit": f.unit, "error": f.error, "path": f.path}


def _json_clean(obj: Any) -> Any:
    """NaN/inf -> None and tuple -> list so the JSON is strict; dict keys become strings."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def best_probed_layer(probe: ProbeResult, layers: set[int] | None = None) -> tuple[int | None, dict[int, float], bool]:
    """The best probed layer by dev score (test only when no dev score exists).

    Returns (layer, the higher-is-better scores it was chosen on, whether those are test).
    """
    dev = {l: s for l, s in probe.scores("dev").items() if layers is None or l in layers}
    if dev:
        return argmax(dev), dev, False
    test = {l: s for l, s in probe.scores("test").items() if layers is None or l in layers}
    return argmax(test), test, bool(test)


def compare_pair(probe: ProbeResult, cca: CCAResult, top_ks: Sequence[int], primary: bool, display: str) -> PairComparison:
    """All per-pair numbers; see the module docstring for the protocol."""
    notes: list[str] = []
    probed = {ls.layer for ls in probe.per_layer}
    common = sorted(probed & set(cca.names))
    if set(cca.names) != probed:
        notes.append(
            f"probe and CCA cover different layers; using the {len(common)} in both"
        )
    test = {l: s for l, s in probe.scores("test").items() if l in common}
    cca_scores = {l: s for l, s in cca.scores.items() if l in common}
    diverged = sorted(ls.layer for ls in probe.per_layer if ls.diverged and ls.layer in common)
    if diverged:
        notes.append(f"diverged layer(s) {diverged} left out")

    corr_layers = [l for l in common if l in test and l in cca_scores]
    rho, tau, why = rank_correlation([cca_scores[l] for l in corr_layers], [test[l] for l in corr_layers])
    if why:
        notes.append(f"CCA rank correlation undefined: {why}")
    w_layers = [l for l in common if l in test and l in probe.ws_weights]
    if probe.ws_weights:
        rho_w, tau_w, why_w = rank_correlation([probe.ws_weights[l] for l in w_layers], [test[l] for l in w_layers],
                                           ("layer weight", "task"))
        if why_w:
            notes.append(f"weight rank correlation undefined: {why_w}")
    else:
        rho_w = tau_w = None
        notes.append("no weighted-sum weights in the probe result")

    best, select_on, on_test = best_probed_layer(probe, set(common))
    if on_test:
        notes.append("no dev scores: best layer chosen on test")
    best_test = test.get(best) if best is not None else None
    order = ranking(cca_scores)
    rec = order[0] if order else None
    rec_test = test.get(rec) if rec is not None else None
    regret = None if best_test is None or rec_test is None else best_test - rec_test
    if rec is not None and rec_test is None:
        notes.append(f"CCA-recommended layer {rec} has no valid probe score")
    hits = {k: (best in order[:k]) if (best is not None and order) else None for k in top_ks}

    guided = []
    total = len(common)
    for k in top_ks:
        cand = {l: select_on[l] for l in order[:k] if l in select_on}
        g_layer = argmax(cand)
        g_test = test.get(g_layer) if g_layer is not None else None
        g_regret = None if best_test is None or g_test is None else best_test - g_test
        probed_n = min(k, len(order))
        guided.append(
            GuidedSearch(k, g_layer, g_test, g_regret, probed_n, total, 1.0 - probed_n / total if total else 0.0)
        )

    ws = probe.ws_score
    return PairComparison(
        upstream=probe.upstream,
        display=display,
        task=probe.task,
        property=cca.property,
        primary=primary,
        metric=probe.metric,
        n_layers=len(corr_layers),
        rho_cca=rho,
        tau_cca=tau,
        rho_weights=rho_w,
        tau_weights=tau_w,
        best_layer=best,
        best_test=best_test,
        best_layer_by_test=argmax(test),
        recommended_layer=rec,
        recommended_test=rec_test,
        regret=regret,
        top_k_hit=hits,
        cca_ranking=order,
        weighted_sum_test=ws,
        best_minus_ws=None if ws is None or best_test is None else best_test - ws,
        guided=guided,
        probe_path=probe.path,
        cca_path=cca.path,
        notes=notes,
    )


def _aggregate(predictor: str, pairs: list[PairComparison], top_ks: Sequence[int], weights: bool) -> PredictorAggregate:
    rhos = [p.rho_weights if weights else p.rho_cca for p in pairs]
    taus = [p.tau_weights if weights else p.tau_cca for p in pairs]
    rates: dict[int, float | None] = {}
    guided: dict[int, float | None] = {}
    for k in top_ks:
        hits = [p.top_k_hit[k] for p in pairs if p.top_k_hit.get(k) is not None]
        rates[k] = None if weights or not hits else sum(hits) / len(hits)
        guided[k] = None if weights else _mean(g.regret for p in pairs for g in p.guided if g.k == k)
    return PredictorAggregate(
        predictor=predictor,
        pairs=len(pairs),
        defined=sum(r is not None for r in rhos),
        mean_rho=_mean(rhos),
        mean_tau=_mean(taus),
        top_k_hit_rate=rates,
        mean_regret=None if weights else _mean(p.regret for p in pairs),
        mean_guided_regret=guided,
    )


def compare(
    results: Iterable[Result] | ResultSet,
    mapping: dict[str, list[str]] | None = None,
    top_ks: Sequence[int] = (1, 3, 6),
) -> Comparison:
    """Relate CCA to probe results for every mapped (upstream, task, property) pair.

    `results` are records from bench.results.load_results (or a parsed ResultSet);
    `mapping` defaults to configs/compare.yaml's.
    """
    rs = results if isinstance(results, ResultSet) else parse_results(results)
    if mapping is None:
        mapping = load_compare_config().mapping
    top_ks = tuple(sorted({int(k) for k in top_ks}))
    if not top_ks or min(top_ks) < 1:
        raise ValueError(f"top-k values must be positive integers, got {top_ks}")
    pairs: list[PairComparison] = []
    notes: list[str] = []
    for (up, task), probe in sorted(rs.probes.items(), key=lambda kv: (rs.display(kv[0][0]), kv[0][0], tasks.sort_key(kv[0][1]))):
        props = mapping.get(task)
        if isinstance(props, str):
            props = [props]
        if not props:
            notes.append(f"{rs.display(up)} / {task}: no CCA property mapped to task {task!r}")
            continue
        for i, prop in enumerate(props):
            cca = rs.ccas.get((up, prop))
            if cca is None:
                notes.append(f"{rs.display(up)} / {task}: no CCA-{prop} result")
                continue
            if not ({ls.layer for ls in probe.per_layer} & set(cca.names)):
                notes.append(f"{rs.display(up)} / {task} / {prop}: probe and CCA share no layer index")
                continue
            pairs.append(compare_pair(probe, cca, top_ks, primary=(i == 0), display=rs.display(up)))

    ranked = [p for p in pairs if p.ranked]
    props_seen = sorted({p.property for p in ranked}, key=cca_properties.sort_key)
    aggregates = [_aggregate(prop, [p for p in ranked if p.property == prop], top_ks, weights=False) for prop in props_seen]
    # Layer weights do not depend on the CCA property: one entry per (upstream, task).
    by_unit: dict[tuple[str, str], PairComparison] = {}
    for p in ranked:
        by_unit.setdefault((p.upstream, p.task), p)
    unit_pairs = list(by_unit.values())
    if unit_pairs:
        aggregates.append(_aggregate("weights", unit_pairs, top_ks, weights=True))
    diffs = [p.best_minus_ws for p in unit_pairs if p.best_minus_ws is not None]
    svw = SingleVsWeighted(
        pairs=len(diffs),
        single_better_or_equal=sum(d >= 0 for d in diffs),
        mean_difference=_mean(diffs),
    )
    return Comparison(
        pairs=pairs,
        aggregates=aggregates,
        single_vs_ws=svw,
        mapping={k: list(v) for k, v in mapping.items()},
        top_ks=top_ks,
        failures=list(rs.failures),
        notes=notes,
    )


# ----------------------------------------------------------------------------- output


def fmt(value: Any, digits: int = 2) -> str:
    """Table cell text: numbers rounded, None as an en dash, booleans as yes/no."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def predictor_name(predictor: str) -> str:
    return "layer weights" if predictor == "weights" else f"CCA-{predictor}"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """A plain aligned table for the terminal: the first `left` columns left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(v.ljust(w) if i < left else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def aggregate_table(comp: Comparison) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the aggregates (means over ranked pairs; `pairs` = how many were averaged)."""
    ks = comp.top_ks
    headers = ["predictor", "pairs", "mean rho", "mean tau"] + [f"hit@{k}" for k in ks] + ["regret"]
    headers += [f"regret@{k}" for k in ks]
    rows = [
        [predictor_name(a.predictor), a.pairs, fmt(a.mean_rho), fmt(a.mean_tau)]
        + [fmt(a.top_k_hit_rate.get(k)) for k in ks]
        + [fmt(a.mean_regret)]
        + [fmt(a.mean_guided_regret.get(k)) for k in ks]
        for a in comp.aggregates
    ]
    return headers, rows


def pair_table(comp: Comparison) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the ranked pairs, one row per (upstream, task, property)."""
    ks = comp.top_ks
    headers = ["upstream", "task", "property", "layers", "rho CCA", "tau CCA", "rho weights", "best layer", "CCA layer",
               "regret"] + [f"top-{k}" for k in ks] + ["best - WS"]
    rows = [
        [p.display, p.task, p.property, p.n_layers, fmt(p.rho_cca), fmt(p.tau_cca), fmt(p.rho_weights),
         fmt(p.best_layer), fmt(p.recommended_layer), fmt(p.regret)]
        + [fmt(p.top_k_hit.get(k)) for k in ks]
        + [fmt(p.best_minus_ws)]
        for p in comp.ranked_pairs
    ]
    return headers, rows


def summary_lines(comp: Comparison) -> list[str]:
    """The sentences under the aggregates: single layer vs weighted sum, what was not ranked."""
    s = comp.single_vs_ws
    out = [f"Best single layer >= weighted sum in {s.single_better_or_equal} of {s.pairs} ranked (upstream, task) "
           f"pairs; mean difference {fmt(s.mean_difference)} points."]
    left = comp.not_ranked()
    if left:
        out.append(f"Not ranked (fewer than {MIN_RANKED_LAYERS} layers): {', '.join(left)}.")
    return out


_INTRO = (
    "Task scores are test scores with error rates as 100 - error (higher is better). "
    f"Rank correlations are over layers, for pairs with at least {MIN_RANKED_LAYERS} layers; the best layer "
    "is chosen by dev score; hit@k: the best layer is among the k layers CCA ranks highest (hit rate); "
    "regret = best layer's test score - CCA-recommended layer's test score (mean); regret@k: the regret when "
    "only the k layers CCA ranks highest are probed. `pairs` is the number of (upstream, task) pairs each mean "
    "is taken over."
)


def render_markdown(comp: Comparison) -> str:
    """comparison.md: aggregates, summary, the ranked pairs, grouped notes, failures."""
    out = ["# CCA versus probes, layer by layer", "", _INTRO, "", "## Aggregates", ""]
    headers, rows = aggregate_table(comp)
    out.append(markdown_table(headers, rows) if rows else "No (upstream, task, property) pair with a probe and a CCA "
               f"result covers {MIN_RANKED_LAYERS} or more layers.")
    out += ["", *summary_lines(comp)]
    headers, rows = pair_table(comp)
    if rows:
        out += ["", "## Pairs", "", markdown_table(headers, rows)]
    notes = comp.grouped_notes()
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if comp.failures:
        out += ["", "## Failed units", ""]
        out += [f"- {f['upstream']} / {f['unit']}: {f['error']}" for f in map(_failure_summary, comp.failures)]
    return "\n".join(out) + "\n"


_MAX_NOTES = 5


def render_summary(comp: Comparison) -> str:
    """The terminal form: aggregates as an aligned table and the summary (the pair table is in comparison.md)."""
    headers, rows = aggregate_table(comp)
    out = ["CCA versus probes: means over ranked pairs (hit@k: best layer among CCA's top k; regret@k: regret "
           "probing only those)", ""]
    out.append(text_table(headers, rows) if rows else f"no pair covers {MIN_RANKED_LAYERS} or more layers")
    lines = summary_lines(comp) + [f"note: {n}" for n in comp.notes[:_MAX_NOTES]]
    if len(comp.notes) > _MAX_NOTES:
        lines.append(f"... and {len(comp.notes) - _MAX_NOTES} more notes in comparison.md")
    lines += [f"failed: {f['upstream']} / {f['unit']}: {str(f['error']).splitlines()[0] if f['error'] else ''}"
              for f in map(_failure_summary, comp.failures)]
    out += [wrapped for line in lines for wrapped in textwrap.wrap(line, 120, subsequent_indent="  ")]
    return "\n".join(out)


def write_comparison(comp: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """comparison.json (everything), comparison.csv (one row per ranked pair), comparison.md (the
    report), comparison.txt (the terminal summary: aggregates, at most 120 columns for three top-ks).

    Returns the paths under keys json, csv, markdown, text.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": write_json_atomic(out_dir / "comparison.json", comp.to_dict()),
        "csv": out_dir / "comparison.csv",
        "markdown": out_dir / "comparison.md",
    }
    rows = comp.rows()
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        buf.write("upstream,task,property\n")
    paths["csv"].write_text(buf.getvalue())
    paths["markdown"].write_text(comp.to_markdown())
    paths["text"] = out_dir / "comparison.txt"
    paths["text"].write_text(render_summary(comp) + "\n")
    return paths
