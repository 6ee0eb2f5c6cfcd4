"""Typed records of every file the harness writes: probe results, CCA results, failure records, run logs.

One dataclass per file. Writers build a record and `bench.results.write_record` stores its
`to_json()` (stamped with the schema version and package versions); every reader gets the
record back from `from_json` (via `bench.results.read_record` / `load_results`), never a raw
dict. `from_json` checks the kind and the schema version, and normalises what older writers
and hand-made files leave out (non-finite scores become None, missing optional fields empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1
DIVERGED = "diverged"
ERROR_METRICS = frozenset({"per", "wer", "cer"})


class SchemaError(ValueError):
    """A file that is not a LayerBench record of a kind and schema version this code reads."""


def finite(value: Any) -> float | None:
    """A finite float, or None for null / NaN / inf / non-numbers (diverged heads write NaN)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def check_header(data: Any, kind: str, where: str) -> None:
    """`data` is a mapping of this `kind` with a schema version this code reads."""
    if not isinstance(data, dict) or "kind" not in data:
        raise SchemaError(f"result file {where} is not a LayerBench result (no 'kind' field)")
    if data["kind"] != kind:
        raise SchemaError(f"result file {where} is a {data['kind']!r} record, expected {kind!r}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        wrote = (data.get("versions") or {}).get("layerbench", "another version")
        raise SchemaError(f"result file {where} has schema version {version!r} (written by LayerBench {wrote}); "
                          f"this LayerBench reads version {SCHEMA_VERSION}: recompute the unit (rerun it with "
                          "--force) or read the file with the LayerBench that wrote it")


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise SchemaError(f"result file {where} lacks field {key!r}")
    return d[key]


def _layer_index(entry: Any, where: str) -> int:
    if not isinstance(entry, dict) or "layer" not in entry:
        raise SchemaError(f"result file {where}: every per_layer entry needs a 'layer' index, got {entry!r}")
    try:
        return int(entry["layer"])
    except (TypeError, ValueError) as e:
        raise SchemaError(f"result file {where}: layer index {entry['layer']!r} is not an integer") from e


def upstream_info(up: Any) -> dict[str, Any]:
    """What a result records about the model it measured: revision, parameter count, layer table."""
    num = getattr(up, "num_params", None)
    if num is None and hasattr(up, "parameters"):
        num = sum(p.numel() for p in up.parameters())
    return {"revision": getattr(up, "revision", None), "num_params": num,
            "layers": [{"name": s.name, "index": s.index, "dim": s.dim, "stride": s.stride,
                        "final_norm": s.final_norm} for s in up.layers]}


# --------------------------------------------------------------------------- probe results


@dataclass(frozen=True)
class LayerScore:
    """One probed layer: its metric on dev (best checkpoint) and test, in the task's own direction."""

    layer: int
    name: str
    dev: float | None
    test: float | None
    flags: tuple[str, ...] = ()

    @property
    def diverged(self) -> bool:
        return DIVERGED in self.flags

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, "dev": self.dev, "test": self.test, "flags": list(self.flags)}


@dataclass(frozen=True)
class WeightedSumScore:
    """The weighted-sum head: its scores, the learnt softmax weights and the layers they mix."""

    dev: float | None
    test: float | None
    weights: list[float]
    layers: list[int]
    layer_names: list[str] = field(default_factory=list)
    layer_norm: bool = False
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"dev": self.dev, "test": self.test, "weights": list(self.weights), "layers": list(self.layers),
                "layer_names": list(self.layer_names), "layer_norm": self.layer_norm, "flags": list(self.flags)}


@dataclass
class ProbeResult:
    """One (upstream, task) unit of the probe bank: every layer's head and the weighted sum."""

    kind: ClassVar[str] = "probe"
    upstream: str
    task: str
    metric: str
    higher_is_better: bool
    per_layer: list[LayerScore]
    weighted_sum: WeightedSumScore | None
    config: dict[str, Any]
    config_hash: str
    seed: Any
    label: str | None = None
    corpus: dict[str, Any] = field(default_factory=dict)
    upstream_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    device: str | None = None
    best_steps: dict[str, int | None] = field(default_factory=dict)
    diverged_at: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    path: str = "<in memory>"  # where it was read from (not written)

    def to_higher(self, raw: float | None) -> float | None:
        """Raw metric -> higher-is-better score (error rate e -> 100 - e)."""
        if raw is None:
            return None
        return raw if self.higher_is_better else 100.0 - raw

    def to_native(self, score: float | None) -> float | None:
        """Inverse of `to_higher`: back to the metric as the task reports it."""
        return self.to_higher(score)

    def scores(self, split: str) -> dict[int, float]:
        """Higher-is-better scores per layer on `split`, diverged / non-finite layers left out."""
        out: dict[int, float] = {}
        for ls in self.per_layer:
            raw = finite(ls.dev if split == "dev" else ls.test)
            if ls.diverged or raw is None:
                continue
            out[ls.layer] = self.to_higher(raw)
        return out

    @property
    def ws_score(self) -> float | None:
        """Weighted-sum test score, higher is better; None when it diverged or is absent."""
        ws = self.weighted_sum
        if ws is None or DIVERGED in ws.flags:
            return None
        return self.to_higher(finite(ws.test))

    @property
    def ws_weights(self) -> dict[int, float]:
        """Layer index -> learnt weight (finite ones), empty without a weighted sum."""
        ws = self.weighted_sum
        if ws is None:
            return {}
        return {int(l): w for l, w in zip(ws.layers, (finite(x) for x in ws.weights)) if w is not None}

    @property
    def wall_seconds(self) -> float | None:
        """The unit's measured total time (timings.total_s)."""
        return finite(self.timings.get("total_s"))

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "upstream": self.upstream, "label": self.label, "task": self.task,
               "metric": self.metric, "higher_is_better": self.higher_is_better,
               "per_layer": [ls.to_json() for ls in self.per_layer],
               "weighted_sum": None if self.weighted_sum is None else self.weighted_sum.to_json(),
               "corpus": self.corpus, "upstream_info": self.upstream_info, "config": self.config,
               "config_hash": self.config_hash, "seed": self.seed, "timings": self.timings, "device": self.device,
               "best_steps": self.best_steps, "diverged_at": self.diverged_at}
        if self.versions:
            out["versions"] = self.versions
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = "<in memory>") -> "ProbeResult":
        check_header(d, cls.kind, path)
        metric = str(_require(d, "metric", path))
        hib = d.get("higher_is_better")
        if hib is None:
            hib = metric.lower() not in ERROR_METRICS
        layers = [LayerScore(layer=_layer_index(e, path), name=str(e.get("name", e["layer"])),
                             dev=finite(e.get("dev")), test=finite(e.get("test")), flags=tuple(e.get("flags") or ()))
                  for e in _require(d, "per_layer", path)]
        layers.sort(key=lambda ls: ls.layer)
        if len({ls.layer for ls in layers}) != len(layers):
            raise SchemaError(f"result file {path}: per_layer lists a layer index twice")
        ws = d.get("weighted_sum")
        wsum = None
        if ws:
            w_layers, w_values = list(ws.get("layers") or []), list(ws.get("weights") or [])
            if len(w_layers) != len(w_values):
                raise SchemaError(f"result file {path}: weighted_sum has {len(w_values)} weights for "
                                  f"{len(w_layers)} layers")
            wsum = WeightedSumScore(dev=finite(ws.get("dev")), test=finite(ws.get("test")), weights=w_values,
                                    layers=[int(l) for l in w_layers], layer_names=list(ws.get("layer_names") or []),
                                    layer_norm=bool(ws.get("layer_norm", False)), flags=tuple(ws.get("flags") or ()))
        return cls(upstream=str(_require(d, "upstream", path)), task=str(_require(d, "task", path)), metric=metric,
                   higher_is_better=bool(hib), per_layer=layers, weighted_sum=wsum, config=d.get("config") or {},
                   config_hash=str(d.get("config_hash", "")), seed=d.get("seed"), label=d.get("label"),
                   corpus=d.get("corpus") or {}, upstream_info=d.get("upstream_info") or {},
                   timings=d.get("timings") or {}, device=d.get("device"), best_steps=d.get("best_steps") or {},
                   diverged_at=d.get("diverged_at") or {}, versions=d.get("versions") or {}, path=path)


# --------------------------------------------------------------------------- CCA results


@dataclass(frozen=True)
class CCALayer:
    """One layer's score against a property; `extra` keeps what the property adds (splits, samples, ...)."""

    layer: int
    name: str
    score: float | None
    stride: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"layer": self.layer, "name": self.name}
        if self.stride is not None:
            out["stride"] = self.stride
        out["score"] = self.score
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, e: dict[str, Any], path: str = "<in memory>") -> "CCALayer":
        idx = _layer_index(e, path)
        rest = {k: v for k, v in e.items() if k not in ("layer", "name", "stride", "score")}
        stride = e.get("stride")
        return cls(layer=idx, name=str(e.get("name", idx)), score=e.get("score"),
                   stride=None if stride is None else int(stride), extra=rest)


@dataclass
class CCAResult:
    """One (upstream, CCA property) unit: every layer's score and how it was sampled."""

    kind: ClassVar[str] = "cca"
    upstream: str
    property: str
    per_layer: list[CCALayer]
    config: dict[str, Any]
    config_hash: str
    seed: Any
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)
    upstream_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    path: str = "<in memory>"

    @property
    def scores(self) -> dict[int, float]:
        """Layer index -> finite score, by layer."""
        return {e.layer: finite(e.score) for e in sorted(self.per_layer, key=lambda e: e.layer)
                if finite(e.score) is not None}

    @property
    def names(self) -> dict[int, str]:
        return {e.layer: e.name for e in sorted(self.per_layer, key=lambda e: e.layer)}

    @property
    def wall_seconds(self) -> float | None:
        return finite(self.timings.get("total_s"))

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "upstream": self.upstream, "label": self.label, "property": self.property,
               "per_layer": [e.to_json() for e in self.per_layer], "details": self.details, "corpus": self.corpus,
               "upstream_info": self.upstream_info, "config": self.config, "config_hash": self.config_hash,
               "seed": self.seed, "timings": self.timings, "device": self.device}
        if self.versions:
            out["versions"] = self.versions
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = "<in memory>") -> "CCAResult":
        check_header(d, cls.kind, path)
        return cls(upstream=str(_require(d, "upstream", path)), property=str(_require(d, "property", path)),
                   per_layer=[CCALayer.from_json(e, path) for e in _require(d, "per_layer", path)],
                   config=d.get("config") or {}, config_hash=str(d.get("config_hash", "")), seed=d.get("seed"),
                   label=d.get("label"), details=d.get("details") or {}, corpus=d.get("corpus") or {},
                   upstream_info=d.get("upstream_info") or {}, timings=d.get("timings") or {},
                   device=d.get("device"), versions=d.get("versions") or {}, path=path)


# --------------------------------------------------------------------------- runner records


@dataclass
class FailureRecord:
    """A unit that raised: the error, its traceback and the config it ran with (`<out>/failures/`)."""

    kind: ClassVar[str] = "failure"
    unit_kind: str  # "probe" or "cca"
    upstream: str
    unit: str  # the task (probe) or the property (cca); written under that key
    error: str
    config: dict[str, Any]
    config_hash: str
    seed: Any
    label: str | None = None
    traceback: str = ""
    result_path: str | None = None
    time: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    path: str = "<in memory>"

    @property
    def task(self) -> str | None:
        return self.unit if self.unit_kind == "probe" else None

    @property
    def property(self) -> str | None:
        return self.unit if self.unit_kind == "cca" else None

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "unit_kind": self.unit_kind, "upstream": self.upstream, "label": self.label,
               ("task" if self.unit_kind == "probe" else "property"): self.unit, "error": self.error,
               "traceback": self.traceback, "result_path": self.result_path, "config": self.config,
               "config_hash": self.config_hash, "seed": self.seed, "time": self.time}
        if self.versions:
            out["versions"] = self.versions
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = "<in memory>") -> "FailureRecord":
        check_header(d, cls.kind, path)
        unit_kind = d.get("unit_kind") or ("probe" if "task" in d else "cca")
        unit = d.get("task") if unit_kind == "probe" else d.get("property")
        return cls(unit_kind=unit_kind, upstream=str(_require(d, "upstream", path)), unit=str(unit),
                   error=str(d.get("error", "")), config=d.get("config") or {}, config_hash=str(d.get("config_hash", "")),
                   seed=d.get("seed"), label=d.get("label"), traceback=d.get("traceback") or "",
                   result_path=d.get("result_path"), time=d.get("time"), versions=d.get("versions") or {}, path=path)


@dataclass
class RunUnitLog:
    """How one unit ended in one `layerbench run` invocation."""

    upstream: str
    label: str
    unit_kind: str
    name: str
    seed: int
    status: str  # "done" (computed now), "skipped" (already done), "failed"
    seconds: float
    result_path: str
    config_hash: str
    error: str | None = None
    failure_record: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"upstream": self.upstream, "label": self.label, "unit_kind": self.unit_kind, "name": self.name,
               "seed": self.seed, "status": self.status, "seconds": self.seconds, "result_path": self.result_path,
               "config_hash": self.config_hash}
        if self.status == "failed":
            out.update(error=self.error, failure_record=self.failure_record)
        return out


@dataclass
class RunLog:
    """`<out>/run.json`: what one invocation did per unit (timings, failures) and what it wrote."""

    kind: ClassVar[str] = "run"
    suite: str
    source: str
    seeds: list[int]
    units: list[RunUnitLog]
    outputs: dict[str, Any]
    path: str = "<in memory>"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "suite": self.suite, "source": self.source, "seeds": self.seeds,
                "units": [u.to_json() for u in self.units], "outputs": self.outputs}

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = "<in memory>") -> "RunLog":
        check_header(d, cls.kind, path)
        units = [RunUnitLog(**{k: u.get(k) for k in RunUnitLog.__dataclass_fields__}) for u in d.get("units") or []]
        return cls(suite=str(d.get("suite")), source=str(d.get("source")), seeds=list(d.get("seeds") or []),
                   units=units, outputs=d.get("outputs") or {}, path=path)


Record = ProbeResult | CCAResult | FailureRecord | RunLog
KINDS: dict[str, type] = {c.kind: c for c in (ProbeResult, CCAResult, FailureRecord, RunLog)}


def from_json(data: Any, path: str = "<in memory>") -> Record:
    """The record of whatever kind `data` is."""
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        kind = data.get("kind") if isinstance(data, dict) else None
        raise SchemaError(f"result file {path} is not a LayerBench record"
                          + (f" (unknown kind {kind!r})" if kind else " (no 'kind' field)"))
    return KINDS[data["kind"]].from_json(data, path)
