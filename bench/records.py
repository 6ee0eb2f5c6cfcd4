"""Typed records of every file the harness writes: probe (and tuned probe) results, CCA results,
clusters results, CCA across checkpoints (series), failure records, and of a run folder its suite
mark, Slurm ledger and run log.

One dataclass per kind of file, each with one `to_json` and one `from_json`. Writers build a
record and store it with `bench.results.write_record` (which stamps the package versions); every
reader gets it back through `read_record` / `load_results` / `from_json`, never as a raw dict.
`from_json` checks the kind and the schema version (a file of another kind or version is an
error naming the file and what to do) and normalises what older writers and hand-made files
leave out (non-finite scores become None, missing optional fields empty). The JSON keys are the
ones the writers have always written, so schema-version-1 files from before read unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1
DIVERGED = "diverged"
ERROR_METRICS = frozenset({"per", "wer", "cer"})
IN_MEMORY = "<in memory>"


class SchemaError(ValueError):
    """A file that is not a LayerBench record of the kind and schema version this code reads."""


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
    """`data` is a mapping of this `kind` with a schema version this code reads.

    A record without `schema_version` (built in memory, or a run log from before it carried one)
    is read as the current version.
    """
    if not isinstance(data, dict) or "kind" not in data:
        raise SchemaError(f"{where} is not a LayerBench record (no 'kind' field); expected a {kind!r} record")
    if data["kind"] != kind:
        raise SchemaError(f"{where} is a {data['kind']!r} record where a {kind!r} record was expected: "
                          f"point the command at a {kind} file")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        wrote = (data.get("versions") or {}).get("layerbench", "another version")
        raise SchemaError(f"{where} has schema version {version!r} (written by LayerBench {wrote}); this LayerBench "
                          f"reads version {SCHEMA_VERSION}: recompute it (rerun the unit with --force) or read it "
                          "with the LayerBench that wrote it")


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise SchemaError(f"{where} lacks field {key!r}")
    return d[key]


def _layer_index(entry: Any, where: str) -> int:
    if not isinstance(entry, dict) or "layer" not in entry:
        raise SchemaError(f"{where}: every per_layer entry needs a 'layer' index, got {entry!r}")
    try:
        return int(entry["layer"])
    except (TypeError, ValueError) as e:
        raise SchemaError(f"{where}: layer index {entry['layer']!r} is not an integer") from e


def _stamped(kind: str, body: dict[str, Any], versions: dict[str, str]) -> dict[str, Any]:
    """The file's header (schema version, kind) before its body, the package versions after it."""
    out = {"schema_version": SCHEMA_VERSION, "kind": kind, **body}
    if versions:
        out["versions"] = versions
    return out


def upstream_info(up: Any) -> dict[str, Any]:
    """What a probe or CCA result records about the model it measured: revision, parameter
    count, padding and the layer table."""
    num = getattr(up, "num_params", None)
    if num is None and hasattr(up, "parameters"):
        num = sum(p.numel() for p in up.parameters())
    return {"revision": getattr(up, "revision", None), "num_params": num, "padding": getattr(up, "padding", None),
            "layers": [{"name": s.name, "index": s.index, "dim": s.dim, "stride": s.stride,
                        "final_norm": s.final_norm} for s in up.layers]}


@dataclass(kw_only=True)
class _Stored:
    """What every record file has beside its own fields: the package versions that wrote it, and
    where it was read from (not written)."""

    versions: dict[str, str] = field(default_factory=dict)
    path: str = field(default=IN_MEMORY, compare=False)


@dataclass(kw_only=True)
class _Unit(_Stored):
    """A record of one unit of work: the config it ran with, that config's hash (a unit is done
    when its file carries the planned hash) and its seed."""

    config: dict[str, Any]
    config_hash: str
    seed: Any


# --------------------------------------------------------------------------- probe results


class _Head:
    """What a probed head (a layer's, or the weighted sum's) writes before its own fields."""

    dev: float | None
    test: float | None
    flags: list[str]
    lr: float | None
    extra: dict[str, Any]

    @property
    def diverged(self) -> bool:
        return DIVERGED in self.flags

    def _scores_json(self, tuned: bool) -> dict[str, Any]:
        """dev, test, the chosen rate (always in a tuned result, where an untrained head has none), extras."""
        out: dict[str, Any] = {"dev": self.dev, "test": self.test}
        if tuned or self.lr is not None:
            out["lr"] = self.lr
        return {**out, **self.extra}


@dataclass
class LayerScore(_Head):
    """One probed layer: its metric on dev (best checkpoint) and test, in the task's own direction.

    `lr` is the rate a tuned result chose for the head; `extra` the task's secondary test
    metrics (ASR: `test_cer`).
    """

    layer: int
    name: str
    dev: float | None
    test: float | None
    flags: list[str] = field(default_factory=list)
    lr: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, tuned: bool = False) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, **self._scores_json(tuned), "flags": list(self.flags)}

    @classmethod
    def from_json(cls, e: dict[str, Any], where: str) -> "LayerScore":
        idx = _layer_index(e, where)
        return cls(layer=idx, name=str(e.get("name", idx)), dev=finite(e.get("dev")), test=finite(e.get("test")),
                   flags=list(e.get("flags") or ()), lr=finite(e.get("lr")), extra=_extra(e, _SCORE_KEYS))


_SCORE_KEYS = ("layer", "name", "dev", "test", "lr", "flags")
_WS_KEYS = ("dev", "test", "lr", "flags", "weights", "layers", "layer_names", "repeat", "layer_norm")


def _extra(e: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if k not in known}


@dataclass
class WeightedSumScore(_Head):
    """The weighted-sum head: its scores, the learnt softmax weights and the layers they mix.

    `repeat`: how often each layer's frames are repeated to the finest rate (MR-HuBERT; 1 = same rate).
    """

    dev: float | None
    test: float | None
    weights: list[float]
    layers: list[int]
    layer_names: list[str] = field(default_factory=list)
    layer_norm: bool = False
    flags: list[str] = field(default_factory=list)
    repeat: list[int] | None = None
    lr: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, tuned: bool = False) -> dict[str, Any]:
        out = self._scores_json(tuned)
        out.update(weights=list(self.weights), layers=list(self.layers), layer_names=list(self.layer_names))
        if self.repeat is not None:
            out["repeat"] = list(self.repeat)
        return {**out, "layer_norm": self.layer_norm, "flags": list(self.flags)}

    @classmethod
    def from_json(cls, ws: dict[str, Any], where: str) -> "WeightedSumScore":
        layers, weights = list(ws.get("layers") or []), list(ws.get("weights") or [])
        if len(layers) != len(weights):
            raise SchemaError(f"{where}: weighted_sum has {len(weights)} weights for {len(layers)} layers")
        repeat = ws.get("repeat")
        return cls(dev=finite(ws.get("dev")), test=finite(ws.get("test")), weights=weights,
                   layers=[int(l) for l in layers], layer_names=list(ws.get("layer_names") or []),
                   layer_norm=bool(ws.get("layer_norm", False)), flags=list(ws.get("flags") or ()),
                   repeat=None if repeat is None else list(repeat), lr=finite(ws.get("lr")),
                   extra=_extra(ws, _WS_KEYS))


@dataclass(kw_only=True)
class ProbeResult(_Unit):
    """One (upstream, task) unit of the probe bank (`layerbench probe`), or of the learning-rate
    search (`layerbench tune`: `tuned`, the search in `tune`, each head's chosen `lr`).

    Optional parts one writer leaves out (the tuner: `targets`, `best_steps`, `diverged_at`,
    `skipped_steps`) are None and not written.
    """

    kind: ClassVar[str] = "probe"
    upstream: str
    task: str
    metric: str
    higher_is_better: bool
    per_layer: list[LayerScore]
    weighted_sum: WeightedSumScore | None
    label: str | None = None
    targets: dict[str, Any] | None = None
    corpus: dict[str, Any] = field(default_factory=dict)
    upstream_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    best_steps: dict[str, int | None] | None = None
    diverged_at: dict[str, int] | None = None
    skipped_steps: dict[str, int] | None = None
    tuned: bool = False
    tune: dict[str, Any] | None = None

    def to_higher(self, raw: float | None) -> float | None:
        """Raw metric -> higher-is-better score (error rate e -> 100 - e)."""
        if raw is None:
            return None
        return raw if self.higher_is_better else 100.0 - raw

    def to_native(self, score: float | None) -> float | None:
        """Inverse of `to_higher`: back to the metric as the task reports it."""
        return self.to_higher(score)

    def scores(self, split: str) -> dict[int, float]:
        """Higher-is-better scores per layer on `split` ("dev" or "test"), diverged / non-finite layers left out."""
        out: dict[int, float] = {}
        for ls in self.per_layer:
            raw = finite(ls.dev if split == "dev" else ls.test)
            if ls.diverged or raw is None:
                continue
            out[ls.layer] = self.to_higher(raw)
        return out

    def layer(self, index: int) -> LayerScore | None:
        return next((ls for ls in self.per_layer if ls.layer == index), None)

    @property
    def ws_score(self) -> float | None:
        """Weighted-sum test score, higher is better; None when it diverged or is absent."""
        ws = self.weighted_sum
        if ws is None or ws.diverged:
            return None
        return self.to_higher(finite(ws.test))

    @property
    def ws_weights(self) -> dict[int, float]:
        """Layer index -> learnt weight (finite ones); empty without a weighted sum."""
        ws = self.weighted_sum
        if ws is None:
            return {}
        return {l: w for l, w in zip(ws.layers, (finite(x) for x in ws.weights)) if w is not None}

    @property
    def wall_seconds(self) -> float | None:
        """The unit's measured total time (`timings.total_s`)."""
        return finite(self.timings.get("total_s"))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"tuned": True} if self.tuned else {}
        body.update(upstream=self.upstream, label=self.label, task=self.task, metric=self.metric,
                    higher_is_better=self.higher_is_better)
        if self.targets is not None:
            body["targets"] = self.targets
        body.update(per_layer=[ls.to_json(self.tuned) for ls in self.per_layer],
                    weighted_sum=None if self.weighted_sum is None else self.weighted_sum.to_json(self.tuned))
        if self.tune is not None:
            body["tune"] = self.tune
        body.update(corpus=self.corpus, upstream_info=self.upstream_info, config=self.config,
                    config_hash=self.config_hash, seed=self.seed, timings=self.timings, device=self.device)
        for key in ("best_steps", "diverged_at", "skipped_steps"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return _stamped(self.kind, body, self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "ProbeResult":
        check_header(d, cls.kind, path)
        metric = str(_require(d, "metric", path))
        hib = d.get("higher_is_better")
        if hib is None:
            hib = metric.lower() not in ERROR_METRICS
        layers = sorted((LayerScore.from_json(e, path) for e in _require(d, "per_layer", path)), key=lambda ls: ls.layer)
        if len({ls.layer for ls in layers}) != len(layers):
            raise SchemaError(f"{path}: per_layer lists a layer index twice")
        ws = d.get("weighted_sum")
        return cls(upstream=str(_require(d, "upstream", path)), task=str(_require(d, "task", path)), metric=metric,
                   higher_is_better=bool(hib), per_layer=layers,
                   weighted_sum=WeightedSumScore.from_json(ws, path) if ws else None,
                   config=d.get("config") or {}, config_hash=str(d.get("config_hash", "")), seed=d.get("seed"),
                   label=d.get("label"), targets=d.get("targets"), corpus=d.get("corpus") or {},
                   upstream_info=d.get("upstream_info") or {}, timings=d.get("timings") or {},
                   device=d.get("device"), best_steps=d.get("best_steps"), diverged_at=d.get("diverged_at"),
                   skipped_steps=d.get("skipped_steps"), tuned=bool(d.get("tuned", False)), tune=d.get("tune"),
                   versions=d.get("versions") or {}, path=path)


# --------------------------------------------------------------------------- CCA results


@dataclass
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
        return {**out, "score": self.score, **self.extra}

    @classmethod
    def from_json(cls, e: dict[str, Any], where: str) -> "CCALayer":
        idx = _layer_index(e, where)
        stride = e.get("stride")
        return cls(layer=idx, name=str(e.get("name", idx)), score=finite(e.get("score")),
                   stride=None if stride is None else int(stride),
                   extra=_extra(e, ("layer", "name", "stride", "score")))


@dataclass(kw_only=True)
class CCAResult(_Unit):
    """One (upstream, CCA property) unit: every layer's score and how it was sampled."""

    kind: ClassVar[str] = "cca"
    upstream: str
    property: str
    per_layer: list[CCALayer]
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)
    upstream_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    device: str | None = None

    @property
    def scores(self) -> dict[int, float]:
        """Layer index -> finite score, by layer."""
        return {e.layer: e.score for e in sorted(self.per_layer, key=lambda e: e.layer) if e.score is not None}

    @property
    def names(self) -> dict[int, str]:
        """Layer index -> layer name, every layer (scored or not), by layer."""
        return {e.layer: e.name for e in sorted(self.per_layer, key=lambda e: e.layer)}

    @property
    def wall_seconds(self) -> float | None:
        return finite(self.timings.get("total_s"))

    def to_json(self) -> dict[str, Any]:
        return _stamped(self.kind, {
            "upstream": self.upstream, "label": self.label, "property": self.property,
            "per_layer": [e.to_json() for e in self.per_layer], "details": self.details, "corpus": self.corpus,
            "upstream_info": self.upstream_info, "config": self.config, "config_hash": self.config_hash,
            "seed": self.seed, "timings": self.timings, "device": self.device}, self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "CCAResult":
        check_header(d, cls.kind, path)
        return cls(upstream=str(_require(d, "upstream", path)), property=str(_require(d, "property", path)),
                   per_layer=[CCALayer.from_json(e, path) for e in _require(d, "per_layer", path)],
                   config=d.get("config") or {}, config_hash=str(d.get("config_hash", "")), seed=d.get("seed"),
                   label=d.get("label"), details=d.get("details") or {}, corpus=d.get("corpus") or {},
                   upstream_info=d.get("upstream_info") or {}, timings=d.get("timings") or {},
                   device=d.get("device"), versions=d.get("versions") or {}, path=path)


# --------------------------------------------------------------------------- clusters results


@dataclass(kw_only=True)
class ClustersResult(_Unit):
    """One `layerbench clusters` analysis: per (upstream, layer) cluster scores and views, and
    the compared pairs of clusterings. Entries keep the analysis's own nested shape
    (`bench.clusters.analyse_layer`)."""

    kind: ClassVar[str] = "clusters"
    upstreams: list[dict[str, Any]]
    unit: str
    label_tier: str
    k: int
    n_labels: int
    n_samples: int
    label_counts: dict[str, int]
    sampling: dict[str, Any]
    per_layer: list[dict[str, Any]]
    pairs: list[dict[str, Any]]
    plots: dict[str, str]
    device: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)

    _FIELDS: ClassVar[tuple[str, ...]] = ("upstreams", "unit", "label_tier", "k", "n_labels", "n_samples",
                                          "label_counts", "sampling", "per_layer", "pairs", "plots", "config",
                                          "config_hash", "seed", "device", "timings")

    def to_json(self) -> dict[str, Any]:
        return _stamped(self.kind, {k: getattr(self, k) for k in self._FIELDS}, self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "ClustersResult":
        check_header(d, cls.kind, path)
        for e in _require(d, "per_layer", path):
            _layer_index(e, path)
        return cls(**{k: _require(d, k, path) for k in cls._FIELDS if k not in ("device", "timings")},
                   device=d.get("device"), timings=d.get("timings") or {}, versions=d.get("versions") or {}, path=path)


# --------------------------------------------------------------------------- CCA across checkpoints


@dataclass
class SeriesCheckpoint:
    """One checkpoint of a series: its column label, its spec and its CCA result file per property."""

    label: str
    spec: str
    results: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "spec": self.spec, "results": dict(self.results)}


@dataclass(kw_only=True)
class SeriesResult(_Stored):
    """`<out>/series/<name>/series.json`: per-layer CCA of every (property, checkpoint), gathered
    from the checkpoints' CCA results. `scores[property][label]` maps layer -> score, None where
    that checkpoint's result is missing or failed."""

    kind: ClassVar[str] = "series"
    name: str
    seed: Any
    preset: str
    properties: list[str]
    checkpoints: list[SeriesCheckpoint]
    scores: dict[str, dict[str, dict[int, float] | None]]

    @property
    def layers(self) -> list[int]:
        """Every layer scored at some checkpoint, ascending."""
        return sorted({l for cols in self.scores.values() for col in cols.values() if col for l in col})

    def to_json(self) -> dict[str, Any]:
        scores = {p: {label: None if col is None else {str(l): v for l, v in col.items()} for label, col in cols.items()}
                  for p, cols in self.scores.items()}
        return _stamped(self.kind, {"name": self.name, "seed": self.seed, "preset": self.preset,
                                    "properties": list(self.properties),
                                    "checkpoints": [c.to_json() for c in self.checkpoints], "scores": scores},
                        self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "SeriesResult":
        check_header(d, cls.kind, path)
        try:
            scores = {p: {label: None if col is None else {int(l): finite(v) for l, v in col.items()}
                          for label, col in cols.items()} for p, cols in _require(d, "scores", path).items()}
            checkpoints = [SeriesCheckpoint(str(c["label"]), str(c["spec"]), dict(c.get("results") or {}))
                           for c in _require(d, "checkpoints", path)]
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise SchemaError(f"{path}: malformed series scores or checkpoints ({e})") from e
        return cls(name=str(_require(d, "name", path)), seed=d.get("seed"), preset=str(d.get("preset", "")),
                   properties=list(_require(d, "properties", path)), checkpoints=checkpoints, scores=scores,
                   versions=d.get("versions") or {}, path=path)


# --------------------------------------------------------------------------- runner records


@dataclass(kw_only=True)
class FailureRecord(_Unit):
    """A unit that raised: the error, its traceback and the config it ran with (`<out>/failures/`)."""

    kind: ClassVar[str] = "failure"
    unit_kind: str  # "probe", "tune" or "cca"
    upstream: str
    unit: str  # the task (probe, tune) or the property (cca); written under that key
    error: str
    label: str | None = None
    traceback: str = ""
    result_path: str | None = None
    time: str | None = None

    @property
    def unit_key(self) -> str:
        """The JSON key the unit is written under."""
        return "property" if self.unit_kind == "cca" else "task"

    @property
    def task(self) -> str | None:
        return None if self.unit_kind == "cca" else self.unit

    @property
    def property(self) -> str | None:
        return self.unit if self.unit_kind == "cca" else None

    def to_json(self) -> dict[str, Any]:
        return _stamped(self.kind, {
            "unit_kind": self.unit_kind, "upstream": self.upstream, "label": self.label, self.unit_key: self.unit,
            "error": self.error, "traceback": self.traceback, "result_path": self.result_path, "config": self.config,
            "config_hash": self.config_hash, "seed": self.seed, "time": self.time}, self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "FailureRecord":
        check_header(d, cls.kind, path)
        unit_kind = d.get("unit_kind") or ("cca" if "property" in d else "probe")
        unit = _require(d, "property" if unit_kind == "cca" else "task", path)
        return cls(unit_kind=str(unit_kind), upstream=str(_require(d, "upstream", path)), unit=str(unit),
                   error=str(d.get("error", "")), config=d.get("config") or {},
                   config_hash=str(d.get("config_hash", "")), seed=d.get("seed"), label=d.get("label"),
                   traceback=d.get("traceback") or "", result_path=d.get("result_path"), time=d.get("time"),
                   versions=d.get("versions") or {}, path=path)


@dataclass
class RunUnitLog:
    """How one unit ended in one `layerbench run` invocation."""

    upstream: str
    label: str
    unit_kind: str
    name: str
    seed: int
    status: str  # "done" (computed now), "skipped" (already done), "failed", "claimed" (running elsewhere)
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

    @classmethod
    def from_json(cls, u: Any, where: str) -> "RunUnitLog":
        if not isinstance(u, dict):
            raise SchemaError(f"{where}: every entry of 'units' must be a mapping, got {u!r}")
        return cls(**{k: _require(u, k, where) for k in ("upstream", "label", "unit_kind", "name", "seed", "status",
                                                          "seconds", "result_path", "config_hash")},
                   error=u.get("error"), failure_record=u.get("failure_record"))


@dataclass(kw_only=True)
class SuiteMark(_Stored):
    """`<out>/suite.json`: the suite that owns a results folder and how its last run was set up
    (a run of another suite into the folder is refused; `layerbench status` plans it again from this)."""

    kind: ClassVar[str] = "suite"
    suite: str
    source: str
    device: str
    seeds: list[int]
    synthetic_dir: str | None = None
    corpora: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _stamped(self.kind, {"suite": self.suite, "source": self.source, "device": self.device,
                                    "seeds": list(self.seeds), "synthetic_dir": self.synthetic_dir,
                                    "corpora": dict(self.corpora)}, self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "SuiteMark":
        check_header(d, cls.kind, path)
        return cls(suite=str(_require(d, "suite", path)), source=str(_require(d, "source", path)),
                   device=str(_require(d, "device", path)), seeds=[int(s) for s in _require(d, "seeds", path)],
                   synthetic_dir=d.get("synthetic_dir"), corpora=dict(d.get("corpora") or {}),
                   versions=d.get("versions") or {}, path=path)


@dataclass
class LedgerUnit:
    """Where the Slurm launcher sent one unit: its array task, when, and that task's log."""

    job_id: str
    submitted: float
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "submitted": self.submitted, "log": self.log}


@dataclass(kw_only=True)
class SlurmLedger(_Stored):
    """`<out>/slurm/ledger.json`: the job arrays submitted for a run folder (their sbatch
    parameters) and, per unit id, the array task that holds it."""

    kind: ClassVar[str] = "slurm-ledger"
    arrays: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, LedgerUnit] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _stamped(self.kind, {"arrays": list(self.arrays),
                                    "units": {k: u.to_json() for k, u in self.units.items()}}, self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "SlurmLedger":
        check_header(d, cls.kind, path)
        try:
            units = {str(k): LedgerUnit(str(u["job_id"]), float(u["submitted"]), u.get("log"))
                     for k, u in (d.get("units") or {}).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise SchemaError(f"{path}: malformed unit entry ({e})") from e
        return cls(arrays=list(d.get("arrays") or []), units=units, versions=d.get("versions") or {}, path=path)


@dataclass(kw_only=True)
class RunLog(_Stored):
    """`<out>/run.json`: what one invocation did per unit (timings, failures) and what it wrote.

    Rewritten by every `layerbench run` of the folder: it logs the last invocation, not the results."""

    kind: ClassVar[str] = "run"
    suite: str
    source: str
    seeds: list[int]
    units: list[RunUnitLog]
    outputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return _stamped(self.kind, {"suite": self.suite, "source": self.source, "seeds": list(self.seeds),
                                    "units": [u.to_json() for u in self.units], "outputs": self.outputs},
                        self.versions)

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = IN_MEMORY) -> "RunLog":
        check_header(d, cls.kind, path)
        return cls(suite=str(_require(d, "suite", path)), source=str(_require(d, "source", path)),
                   seeds=list(d.get("seeds") or []), units=[RunUnitLog.from_json(u, path) for u in d.get("units") or []],
                   outputs=d.get("outputs") or {}, versions=d.get("versions") or {}, path=path)


Result = ProbeResult | CCAResult | ClustersResult | FailureRecord
Record = Result | SeriesResult | SuiteMark | SlurmLedger | RunLog
KINDS: dict[str, type] = {c.kind: c for c in (ProbeResult, CCAResult, ClustersResult, FailureRecord, SeriesResult,
                                               SuiteMark, SlurmLedger, RunLog)}


def from_json(data: Any, path: str = IN_MEMORY, expect: type | None = None) -> Record:
    """The record of whatever kind `data` is (of kind `expect` only, when given)."""
    if expect is not None:
        return expect.from_json(data, path)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in KINDS:
        raise SchemaError(f"{path} is not a LayerBench record"
                          + (f" (unknown kind {kind!r}; known: {', '.join(KINDS)})" if kind else " (no 'kind' field)"))
    return KINDS[kind].from_json(data, path)
