"""The main job: a suite (zoo x tasks x CCA properties x seeds) planned, run, resumed and summarised.

A suite YAML names a zoo of upstreams, the probing tasks with their presets, the CCA
properties, where the corpora are, the output folder, the seeds and the device. The runner
turns it into units (upstream x task, upstream x CCA property, per seed), asks the probe and
CCA code for each unit's result path and config hash *without loading any model*, skips the
units already done, runs the rest one after another, and keeps going past a unit that fails:
the failure is written as its own record under `<out>/failures/` and reported at the end.
Finished results are written atomically by the probe/CCA code, so an interrupted run loses
at most the unit it was in; rerunning the same suite resumes where it stopped.

After the units, the comparator relates CCA to the probe results and the leaderboard is
built — both derived from the result files only, so a resumed run gives the same tables as
an uninterrupted one.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

import tasks as tasks_registry
from bench import schema
from bench.config import CONFIG_DIR, ConfigError, load_yaml, merge, suggest
from bench.data.corpus import KINDS
from bench.launch import LauncherSpec, parse_launcher
from bench.locks import release, try_acquire
from bench.records import FailureRecord, RunLog, RunUnitLog, SuiteMark
from bench.results import UnitOutcome, is_done, read_record, slug, write_record

SUITE_DIR = CONFIG_DIR / "suites"
ZOO_DIR = CONFIG_DIR / "zoo"
DEFAULT_SUITE = SUITE_DIR / "quick.yaml"


def task_corpus(task: str) -> str:
    """The corpus kind a task reads, as its task module declares it."""
    import tasks

    return tasks.get(task).corpus_kind


def cca_corpus(preset: str, overrides: dict[str, Any] | None) -> str:
    """The corpus kind CCA reads (`corpus_kind` of its config: word and phone alignments)."""
    from bench.layerwise_cca import load_config

    return load_config(preset, overrides)["corpus_kind"]


# --------------------------------------------------------------------------- suite sections
#
# Each section of a suite file is a dataclass checked by `bench.schema.load` (unknown keys with
# the nearest valid one, types, required keys); `checked` adds what a type cannot say.


def _check_tune(value: dict[str, Any] | bool | None, loc: str) -> None:
    """A task's or upstream's `tune` mapping holds valid search settings (checked now, naming the place)."""
    if isinstance(value, dict):
        from bench.tune import resolve_settings

        resolve_settings(value, where=loc)


@dataclass(frozen=True)
class ZooOptions:
    """Per-upstream options of a zoo entry."""

    layers: list[int] | str | None = None  # probe only these layers: a list, "every:K" (default: all)
    overrides: dict[str, Any] = field(default_factory=dict)  # per-upstream probe overrides (e.g. lr)
    cca_overrides: dict[str, Any] = field(default_factory=dict)
    tune: bool | dict[str, Any] | None = None  # learning-rate search of this upstream: settings or true (on), false (off)

    def checked(self, loc: str) -> "ZooOptions":
        if self.layers is not None:
            from bench.probe import normalize_layers

            with schema.context(f"{loc}.layers"):
                normalize_layers(self.layers)
        _check_tune(self.tune, f"{loc}.tune")
        return self


@dataclass(frozen=True)
class ZooEntry:
    """One upstream of a zoo: the spec `upstreams.load` takes, a display name, and options."""

    spec: str
    name: str = ""  # default: the spec
    options: ZooOptions = field(default_factory=ZooOptions)

    def checked(self, loc: str) -> "ZooEntry":
        return self if self.name else replace(self, name=self.spec)


@dataclass(frozen=True)
class ZooFile:
    """A zoo YAML (configs/zoo/<name>.yaml)."""

    upstreams: list[Any]  # ZooEntry mappings (or bare specs), checked by `load_zoo`
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class TaskEntry:
    task: str
    preset: str = "quick"
    overrides: dict[str, Any] = field(default_factory=dict)
    tune: bool | dict[str, Any] | None = None  # as ZooOptions.tune, for this task

    def checked(self, loc: str) -> "TaskEntry":
        with schema.context(f"{loc}.task"):
            tasks_registry.get(self.task)
        from bench.probe import resolve_params

        with schema.context(loc):  # the preset and its overrides, checked before any compute
            resolve_params(self.task, self.preset, self.overrides)
        _check_tune(self.tune, f"{loc}.tune")
        return self


@dataclass(frozen=True)
class TuneSection:
    """The suite's `tune:` section: search settings for every task (configs/tune.yaml keys) and the
    optuna storage shared by its studies (default `sqlite:///<out>/tune.db`, so a run resumes)."""

    settings: dict[str, Any]
    storage: str | None = None


@dataclass(frozen=True)
class CCAEntry:
    properties: list[str] | str  # a list or "mel,phone"; `checked` expands it to the list of registered names
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)

    def checked(self, loc: str) -> "CCAEntry":
        props = self.properties
        if isinstance(props, str):
            props = [p.strip() for p in props.split(",") if p.strip()]
        if not props:
            raise ConfigError(f"{loc}.properties must be a non-empty list, got {self.properties!r}")
        from bench.cca_properties import expand

        with schema.context(f"{loc}.properties"):
            return replace(self, properties=list(expand(props)))


@dataclass(frozen=True)
class SynthSpec:
    """The synthetic corpus root (all four layouts under one folder), written when missing."""

    dir: Path | None = None  # default data/synth-<size>
    size: Literal["tiny", "small"] = "small"
    seed: int = 0

    def checked(self, loc: str) -> "SynthSpec":
        return self if self.dir is not None else replace(self, dir=Path(f"data/synth-{self.size}"))


@dataclass(frozen=True)
class CompareSection:
    top_ks: list[int] = field(default_factory=lambda: [1, 3, 6], metadata={"nonempty": True})
    mapping: dict[str, Any] | None = None  # task -> CCA properties (configs/compare.yaml documents it)

    def checked(self, loc: str) -> "CompareSection":
        if any(k < 1 for k in self.top_ks):
            raise ConfigError(f"{loc}.top_ks must be a list of positive integers, got {self.top_ks!r}")
        if self.mapping:
            from bench.compare import load_compare_config

            with schema.context(f"{loc}.mapping"):
                load_compare_config(overrides={"mapping": self.mapping})
        return self


@dataclass(frozen=True)
class SuiteFile:
    """A suite YAML as written; `parse_suite` resolves it into a `Suite`."""

    zoo: str | list[Any]  # a zoo name, a zoo YAML path, or a list of ZooEntry mappings
    corpora: dict[str, Any]  # corpus kind -> folder, or {synthetic: SynthSpec}
    name: str | None = None
    description: str | None = None
    tasks: list[Any] | None = None  # TaskEntry mappings (or bare task names)
    cca: CCAEntry | None = None
    series: list[Any] | None = None  # bench.series.SeriesEntry mappings
    tune: dict[str, Any] | None = None  # TuneSection: tune settings plus `storage`
    out: str | None = None
    seeds: int | list[int] | None = None
    seed: int | None = None
    device: str = "auto"
    compare: CompareSection = field(default_factory=CompareSection)
    leaderboard: bool = True
    launcher: Any = None  # bench.launch.LauncherSpec mapping, or just its kind
    notes: list[str] = field(default_factory=list)  # printed after the results: how to read them

    def checked(self, loc: str) -> "SuiteFile":
        if self.seed is not None and self.seeds is not None:
            raise ConfigError(f"{loc}: give either `seed` or `seeds`, not both")
        seeds = self.seeds_list
        if not seeds:
            raise ConfigError(f"{loc}: seeds must be an integer or a non-empty list of integers, got {self.seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{loc}: `seeds` lists a seed twice: {seeds}")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"{loc}: device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        if not all(n.strip() for n in self.notes):
            raise ConfigError(f"{loc}: notes must be a list of non-empty strings, got {self.notes!r}")
        return self

    @property
    def seeds_list(self) -> list[int]:
        seeds = self.seeds if self.seeds is not None else self.seed if self.seed is not None else 0
        return [seeds] if isinstance(seeds, int) else list(seeds)


@dataclass
class Suite:
    name: str
    source: str  # the file it came from (or "<inline>"), for error messages and the plan header
    zoo: list[ZooEntry]
    tasks: list[TaskEntry]
    cca: CCAEntry | None
    corpora: dict[str, Path]  # corpus kind -> root (empty when `synthetic` is used)
    synthetic: SynthSpec | None
    out: Path
    seeds: list[int]
    device: str
    top_ks: tuple[int, ...] = (1, 3, 6)
    mapping: dict[str, Any] | None = None
    leaderboard: bool = True
    launcher: LauncherSpec = field(default_factory=LauncherSpec)  # where units run (bench.launch)
    tune: TuneSection | None = None
    series: list = field(default_factory=list)  # bench.series.SeriesEntry: CCA over a model's checkpoints
    notes: list[str] = field(default_factory=list)  # printed after the results: how to read them

    def corpus_for(self, kind: str) -> Path:
        """The folder a unit of corpus `kind` reads: the synthetic root, or the configured path."""
        if self.synthetic is not None:
            return self.synthetic.dir
        if kind not in self.corpora:
            raise ConfigError(
                f"suite {self.source}: no corpus path for {kind!r} (needed by the planned units); "
                f"add `corpora: {{{kind}: /path/to/it}}`"
            )
        return self.corpora[kind]

    def results_dir(self, seed: int) -> Path:
        """Result files of one seed: `<out>/results` (one seed) or `<out>/results/seed<N>`."""
        base = self.out / "results"
        return base if len(self.seeds) == 1 else base / f"seed{seed}"

    def report_dir(self, what: str, seed: int) -> Path:
        base = self.out / what
        return base if len(self.seeds) == 1 else base / f"seed{seed}"

    def tune_settings(self, up: "ZooEntry", task: "TaskEntry") -> dict[str, Any] | None:
        """Search settings of one (upstream, task), or None when it is not tuned.

        The zoo entry's `tune` decides over the task entry's, which decides over the suite's
        section (`false` switches tuning off); settings merge suite < task < upstream.
        """
        said = [x for x in (up.options.tune, task.tune) if x is not None]
        if said and said[0] is False:
            return None
        if not said and self.tune is None:
            return None
        merged: dict[str, Any] = dict(self.tune.settings) if self.tune else {}
        for layer in (task.tune, up.options.tune):
            if isinstance(layer, dict):
                merged = merge(merged, layer, strict=False)
        return merged

    @property
    def tune_storage(self) -> str:
        return (self.tune.storage if self.tune and self.tune.storage else f"sqlite:///{self.out / 'tune.db'}")


# --------------------------------------------------------------------------- loading / validation


def resolve_suite_path(ref: str | Path | None) -> Path:
    """`None` -> the embedded quick suite; a bare name -> configs/suites/<name>.yaml; else a path."""
    if ref is None:
        return DEFAULT_SUITE
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    named = SUITE_DIR / f"{ref}.yaml"
    if named.is_file():
        return named
    known = sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))
    hint = suggest(str(ref), known)
    raise ConfigError(f"suite {ref!r} is neither a file nor a suite in {SUITE_DIR}{hint}; known suites: {', '.join(known)}")


def load_suite(ref: str | Path | None = None) -> Suite:
    path = resolve_suite_path(ref)
    return parse_suite(load_yaml(path), source=str(path))


def load_zoo(ref: Any, where: str, path: str = "zoo") -> list[ZooEntry]:
    """A zoo is a name (configs/zoo/<name>.yaml), a path to a zoo YAML, or an inline list."""
    if isinstance(ref, str):
        file = Path(ref) if ref.endswith((".yaml", ".yml")) else ZOO_DIR / f"{ref}.yaml"
        if not file.is_file():
            known = sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))
            raise ConfigError(f"{schema.at(where, path)}: zoo {ref!r} not found at {file}{suggest(ref, known)}; "
                              f"known zoos: {', '.join(known)}")
        where, path = f"zoo file {file}", ""
        ref = schema.load(ZooFile, load_yaml(file), where).upstreams
    if not isinstance(ref, list) or not ref:
        raise ConfigError(f"{schema.at(where, path)}: the zoo must be a non-empty list of {{name, spec}} entries")
    out = schema.load_list(ZooEntry, ref, where, f"{path}: upstream" if path else "upstream",
                           label=("name", "spec"), shorthand="spec")
    for attr in ("name", "spec"):
        schema.no_repeats([getattr(e, attr) for e in out], schema.at(where, path), f"upstream {attr}")
    return out


def _parse_tune(item: dict[str, Any] | None, where: str) -> TuneSection | None:
    if item is None:
        return None
    settings = {k: v for k, v in item.items() if k != "storage"}
    from bench.tune import resolve_settings

    resolve_settings(settings, where=f"{where}: tune")
    storage = item.get("storage")
    if storage is not None and not isinstance(storage, str):
        raise ConfigError(f"{where}: tune.storage must be a storage URL (sqlite:///path.db or journal:PATH), "
                          f"got {storage!r}")
    return TuneSection(settings, storage)


def _parse_corpora(data: dict[str, Any], where: str) -> tuple[dict[str, Path], SynthSpec | None]:
    schema.check_keys(data, (*KINDS, "synthetic"), where, "corpora")
    if "synthetic" in data:
        if len(data) > 1:
            raise ConfigError(f"{where}: corpora: `synthetic` holds all four corpora; do not list other corpora beside it")
        return {}, schema.load(SynthSpec, data["synthetic"] or {}, where, "corpora.synthetic")
    return {kind: schema.load_value(Path, path, where, f"corpora.{kind}") for kind, path in data.items()}, None


def parse_suite(data: dict[str, Any], source: str = "<inline>") -> Suite:
    """Validate a suite mapping; every error names `source` and the offending key or value."""
    where = f"suite {source}"
    f = schema.load(SuiteFile, data, where)
    zoo = load_zoo(f.zoo, where)
    tasks = schema.load_list(TaskEntry, f.tasks, where, "tasks", label="task", shorthand="task")
    schema.no_repeats([t.task for t in tasks], where, "task")
    cca = f.cca
    from bench.series import parse_series

    series = parse_series(f.series, where, cca.properties if cca else None, cca.preset if cca else None,
                          cca.overrides if cca else None)
    if not tasks and cca is None and not series:
        raise ConfigError(f"{where}: nothing to run — give `tasks`, `cca`, `series`, or several")
    corpora, synthetic = _parse_corpora(f.corpora, where)
    name = f.name or Path(source).stem
    suite = Suite(
        name=name,
        source=source,
        zoo=zoo,
        tasks=tasks,
        cca=cca,
        corpora=corpora,
        synthetic=synthetic,
        out=Path(f.out or f"runs/{slug(name)}"),
        seeds=f.seeds_list,
        device=f.device,
        top_ks=tuple(f.compare.top_ks),
        mapping=f.compare.mapping or None,
        leaderboard=f.leaderboard,
        launcher=parse_launcher(f.launcher, where),
        tune=_parse_tune(f.tune, where),
        series=series,
        notes=[" ".join(n.split()) for n in f.notes],
    )
    kinds = ({task_corpus(t.task) for t in tasks} | ({cca_corpus(cca.preset, cca.overrides)} if cca else set())
             | {cca_corpus(s.preset, s.overrides) for s in series})
    for kind in sorted(kinds):
        suite.corpus_for(kind)  # a missing corpus path is a config error now, before any compute
    return suite


# --------------------------------------------------------------------------- planning


@dataclass
class Unit:
    """One planned unit: what runs, where its result goes, and whether it is already done."""

    kind: str  # "probe", "tune" or "cca"
    upstream: ZooEntry
    name: str  # task (probe) or property (cca)
    seed: int
    corpus: Path
    out_dir: Path
    path: Path
    config_hash: str
    config: dict[str, Any]
    preset: str
    overrides: dict[str, Any]
    done: bool
    tune: dict[str, Any] | None = None  # kind "tune": the search settings

    @property
    def key(self) -> str:
        return f"{self.upstream.name} x {self.kind}:{self.name} (seed {self.seed})"

    @property
    def id(self) -> str:
        """A file-name-safe identity, unique within a suite (failure records, claims, job ledgers)."""
        return f"{slug(self.upstream.spec)}__{self.kind}-{slug(self.name)}__seed{self.seed}"

    def failure_path(self, out: Path) -> Path:
        return out / "failures" / f"{self.id}.json"

    def claim_path(self, out: Path) -> Path:
        return out / "claims" / f"{self.id}.lock"


def plan(suite: Suite) -> list[Unit]:
    """Every unit of the suite with its result path and config hash; loads no model and no audio."""
    from bench import layerwise_cca, probe, tune

    units: list[Unit] = []
    for seed in suite.seeds:
        out_dir = suite.results_dir(seed)
        for up in suite.zoo:
            for t in suite.tasks:
                overrides = merge(t.overrides, up.options.overrides, strict=False)
                corpus = suite.corpus_for(task_corpus(t.task))
                settings = suite.tune_settings(up, t)
                try:
                    use = None if settings is None else tune.resolve_settings(settings).use
                    if use != "tuned":
                        path, config, chash = probe.plan_probe(
                            up.spec, t.task, corpus, preset=t.preset, overrides=overrides or None,
                            layers=up.options.layers, out_dir=out_dir, seed=seed)
                        units.append(Unit("probe", up, t.task, seed, corpus, out_dir, Path(path), chash, config,
                                          t.preset, overrides, is_done(path, chash)))
                    if use is not None:
                        # A tuned result the comparator reads sits with the results; one it does not
                        # (`use: fixed`) beside them, sharing their pooled cache.
                        tune_out = out_dir if use == "tuned" else suite.report_dir("tune", seed)
                        tune_over = overrides if use == "tuned" or "cache_dir" in overrides else \
                            {**overrides, "cache_dir": str(out_dir / "cache" / "pooled")}
                        path, config, chash, _ = tune.plan_tune(
                            up.spec, t.task, corpus, preset=t.preset, overrides=tune_over or None,
                            layers=up.options.layers, tune=settings, out_dir=tune_out, seed=seed)
                        units.append(Unit("tune", up, t.task, seed, corpus, tune_out, Path(path), chash, config,
                                          t.preset, tune_over, is_done(path, chash), settings))
                except ConfigError as e:
                    raise ConfigError(f"suite {suite.source}: {up.name} x {t.task}: {e}") from e
            if suite.cca is not None:
                overrides = merge(suite.cca.overrides, up.options.cca_overrides, strict=False)
                corpus = suite.corpus_for(cca_corpus(suite.cca.preset, overrides or None))
                try:
                    planned = layerwise_cca.plan_cca(
                        up.spec, corpus, list(suite.cca.properties), preset=suite.cca.preset,
                        overrides=overrides or None, out_dir=out_dir, seed=seed)
                except ConfigError as e:
                    raise ConfigError(f"suite {suite.source}: {up.name} x cca: {e}") from e
                for prop, path, config, chash in planned:
                    units.append(Unit("cca", up, prop, seed, corpus, out_dir, Path(path), chash, config,
                                      suite.cca.preset, overrides, is_done(path, chash)))
        units += _plan_series(suite, seed, units)
    return units


def series_paths(suite: Suite, seed: int) -> list[tuple[Any, Path, dict[tuple[str, str], Path]]]:
    """Per series: (entry, its folder, (checkpoint spec, property) -> result path). A checkpoint
    whose CCA config equals a zoo unit's points at the zoo's result (computed once)."""
    from bench import layerwise_cca

    zoo_cca = {}
    if suite.cca is not None:
        for up in suite.zoo:
            overrides = merge(suite.cca.overrides, up.options.cca_overrides, strict=False)
            for prop, path, _, chash in layerwise_cca.plan_cca(
                    up.spec, suite.corpus_for(cca_corpus(suite.cca.preset, overrides or None)),
                    list(suite.cca.properties), preset=suite.cca.preset,
                    overrides=overrides or None, out_dir=suite.results_dir(seed), seed=seed):
                zoo_cca[(up.spec, prop, chash)] = Path(path)
    out = []
    for entry in suite.series:
        folder = entry.folder(suite.out, seed, len(suite.seeds))
        corpus = suite.corpus_for(cca_corpus(entry.preset, entry.overrides or None))
        paths = {}
        for cp in entry.checkpoints:
            try:
                planned = layerwise_cca.plan_cca(cp.spec, corpus, entry.properties,
                                                 preset=entry.preset, overrides=entry.overrides or None,
                                                 out_dir=folder, seed=seed)
            except ConfigError as e:
                raise ConfigError(f"suite {suite.source}: series {entry.name!r} checkpoint {cp.label}: {e}") from e
            for prop, path, _, chash in planned:
                paths[(cp.spec, prop)] = zoo_cca.get((cp.spec, prop, chash), Path(path))
        out.append((entry, folder, paths))
    return out


def _plan_series(suite: Suite, seed: int, planned: list[Unit]) -> list[Unit]:
    """CCA units of the series checkpoints not already planned (by result path)."""
    from bench import layerwise_cca

    have = {u.path for u in planned}
    units: list[Unit] = []
    for entry, folder, paths in series_paths(suite, seed):
        corpus = suite.corpus_for(cca_corpus(entry.preset, entry.overrides or None))
        for cp in entry.checkpoints:
            up = ZooEntry(name=f"{entry.name}: {cp.label}", spec=cp.spec)
            for prop, path, config, chash in layerwise_cca.plan_cca(
                    cp.spec, corpus, entry.properties, preset=entry.preset,
                    overrides=entry.overrides or None, out_dir=folder, seed=seed):
                if paths[(cp.spec, prop)] in have or Path(path) in have:
                    continue
                have.add(Path(path))
                units.append(Unit("cca", up, prop, seed, corpus, folder, Path(path), chash,
                                  config, entry.preset, entry.overrides, is_done(path, chash)))
    return units


def format_plan(suite: Suite, units: Sequence[Unit]) -> str:
    """A table of the planned units, one line each: done (skipped), todo, or retry (failed before)."""
    done = sum(u.done for u in units)
    lines = [
        f"suite {suite.name} ({suite.source}): {len(suite.zoo)} upstreams x "
        f"{len(suite.tasks)} tasks + {len(suite.cca.properties) if suite.cca else 0} CCA properties"
        f" x {len(suite.seeds)} seed(s) = {len(units)} units, {done} already done (skipped)",
        f"corpus: {suite.synthetic.dir if suite.synthetic else ', '.join(f'{k}={v}' for k, v in suite.corpora.items())}",
        f"output: {suite.out}",
    ]
    w_up = max([len(u.upstream.name) for u in units] + [8])
    w_name = max([len(f"{u.kind}:{u.name}") for u in units] + [4])
    lines.append(f"  {'upstream':<{w_up}}  {'unit':<{w_name}}  seed  preset    status")
    for u in units:
        status = "done (skip)" if u.done else "retry (failed before)" if u.failure_path(suite.out).is_file() else "todo"
        lines.append(f"  {u.upstream.name:<{w_up}}  {u.kind + ':' + u.name:<{w_name}}  {u.seed:>4}  {u.preset:<8}  {status}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- execution


@dataclass
class UnitReport:
    """How one unit ended in this run."""

    unit: Unit
    status: str  # "done" (computed now), "skipped" (already done), "failed", "claimed" (running elsewhere)
    seconds: float = 0.0
    error: str = ""
    failure_path: Path | None = None


@dataclass
class RunSummary:
    suite: Suite
    reports: list[UnitReport]
    outputs: dict[str, Any] = field(default_factory=dict)  # what the comparator/leaderboard wrote

    @property
    def failures(self) -> list[UnitReport]:
        return [r for r in self.reports if r.status == "failed"]

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "skipped": 0, "failed": 0, "claimed": 0}
        for r in self.reports:
            out[r.status] += 1
        return out


def ensure_corpora(suite: Suite, progress: bool = True, echo: Callable[[str], None] = print) -> None:
    """Write the synthetic corpus when the suite uses one and it is missing or incomplete."""
    if suite.synthetic is None:
        return
    from bench.synth import ensure_corpus

    if progress:
        echo(f"synthetic corpus ({suite.synthetic.size}, seed {suite.synthetic.seed}): {suite.synthetic.dir}")
    ensure_corpus(suite.synthetic.dir, size=suite.synthetic.size, seed=suite.synthetic.seed, progress=progress)


def _record_failure(suite: Suite, unit: Unit, exc: BaseException) -> Path:
    record = FailureRecord(
        unit_kind=unit.kind, upstream=unit.upstream.spec, label=unit.upstream.name, unit=unit.name,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        result_path=str(unit.path), config=unit.config, config_hash=unit.config_hash, seed=unit.seed,
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return write_record(unit.failure_path(suite.out), record)


def _clear_failure(suite: Suite, unit: Unit) -> None:
    """A unit that finished now has no failure left: drop the record of an earlier failed attempt."""
    unit.failure_path(suite.out).unlink(missing_ok=True)


def _run_probe_unit(suite: Suite, unit: Unit, force: bool, progress: bool) -> list[UnitOutcome]:
    from bench import probe

    return [probe.run_probe(
        unit.upstream.spec, unit.name, unit.corpus, preset=unit.preset,
        overrides=unit.overrides or None, layers=unit.upstream.options.layers, out_dir=unit.out_dir,
        seed=unit.seed, device=suite.device, force=force, label=unit.upstream.name, progress=progress)]


def _run_tune_unit(suite: Suite, unit: Unit, force: bool, progress: bool) -> list[UnitOutcome]:
    from bench import tune

    return [tune.run_tune(
        unit.upstream.spec, unit.name, unit.corpus, preset=unit.preset, overrides=unit.overrides or None,
        layers=unit.upstream.options.layers, tune=unit.tune, storage=suite.tune_storage, out_dir=unit.out_dir,
        seed=unit.seed, device=suite.device, force=force, label=unit.upstream.name, progress=progress)]


def _run_cca_group(suite: Suite, units: list[Unit], force: bool, progress: bool) -> list[UnitOutcome]:
    """All pending CCA properties of one upstream and seed share one upstream pass."""
    from bench import layerwise_cca

    first = units[0]
    return layerwise_cca.run_cca(
        first.upstream.spec, first.corpus, [u.name for u in units], preset=first.preset,
        overrides=first.overrides or None, out_dir=first.out_dir, seed=first.seed,
        device=suite.device, force=force, label=first.upstream.name, progress=progress)


def execution_groups(units: Sequence[Unit]) -> list[list[Unit]]:
    """Execution groups in plan order: each probe or tune unit alone; CCA units per (upstream, seed, folder)."""
    groups: list[list[Unit]] = []
    cca_at: dict[tuple[str, int], int] = {}
    for u in units:
        if u.kind == "cca":
            key = (u.upstream.spec, u.seed, u.out_dir)
            if key in cca_at:
                groups[cca_at[key]].append(u)
                continue
            cca_at[key] = len(groups)
        groups.append([u])
    return groups


def execute(
    suite: Suite,
    units: Sequence[Unit],
    *,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[UnitReport]:
    """Run the pending units; a unit that raises gets a failure record and the run goes on.

    Each unit is claimed first (`<out>/claims/<unit>.lock`, naming this process, host and Slurm
    job): a unit another live process holds is left to it (status "claimed"), one that finished
    meanwhile is skipped, so two launches of a suite never compute a unit twice. The claim goes
    when the unit ends; a claim left by a killed process is recognised as stale and taken over.
    KeyboardInterrupt is not a unit failure: it stops the run (finished units stay on disk).
    """
    reports: list[UnitReport] = []
    pending = [u for u in units if force or not u.done]
    for u in units:
        if not force and u.done:
            reports.append(UnitReport(u, "skipped"))
            _clear_failure(suite, u)
    bar = tqdm(total=len(pending), desc=f"suite {suite.name}", unit="unit", disable=not progress)
    try:
        for group in execution_groups(pending):
            bar.set_postfix_str(f"{group[0].upstream.name} {group[0].kind}:{','.join(u.name for u in group)}")
            mine = _claim(suite, group, force, reports, echo)
            try:
                if mine:
                    reports.extend(_run_group(suite, mine, force, progress, echo))
            finally:
                for u in mine:
                    release(u.claim_path(suite.out))
            bar.update(len(group))
    finally:
        bar.close()
    order = {id(u): i for i, u in enumerate(units)}
    return sorted(reports, key=lambda r: order[id(r.unit)])


def _claim(suite: Suite, group: list[Unit], force: bool, reports: list[UnitReport],
           echo: Callable[[str], None]) -> list[Unit]:
    """The units of `group` this process now holds; the others are reported as claimed or done."""
    mine = []
    for u in group:
        ok, holder = try_acquire(u.claim_path(suite.out))
        if not ok:
            reports.append(UnitReport(u, "claimed", error=f"running in {holder.describe()}" if holder else ""))
            echo(f"{u.key}: claimed by {holder.describe() if holder else 'another process'}; left to it")
        elif not force and is_done(u.path, u.config_hash):  # finished by another process since planning
            release(u.claim_path(suite.out))
            reports.append(UnitReport(u, "skipped"))
        else:
            mine.append(u)
    return mine


def _run_group(suite: Suite, group: list[Unit], force: bool, progress: bool,
               echo: Callable[[str], None]) -> list[UnitReport]:
    """One execution group (a probe or tune unit, or the CCA properties of one upstream pass)."""
    t0 = time.perf_counter()
    try:
        if group[0].kind == "probe":
            outcomes = _run_probe_unit(suite, group[0], force, progress)
        elif group[0].kind == "tune":
            outcomes = _run_tune_unit(suite, group[0], force, progress)
        else:
            outcomes = _run_cca_group(suite, group, force, progress)
        if len(outcomes) != len(group):
            raise RuntimeError(f"expected {len(group)} results, got {len(outcomes)}")
    except Exception as exc:  # a failed unit is recorded and the suite goes on
        seconds = time.perf_counter() - t0
        reports = []
        for u in group:
            fpath = _record_failure(suite, u, exc)
            reports.append(UnitReport(u, "failed", seconds / len(group), f"{type(exc).__name__}: {exc}", fpath))
            echo(f"FAILED {u.key}: {type(exc).__name__}: {exc} (record: {fpath})")
        return reports
    seconds = time.perf_counter() - t0
    for u in group:
        _clear_failure(suite, u)
    return [UnitReport(u, "skipped" if o.skipped else "done", seconds / len(group)) for u, o in zip(group, outcomes)]


def summarise(suite: Suite, reports: Sequence[UnitReport]) -> dict[str, Any]:
    """Comparator over every result of each seed, then the leaderboard; returns the paths written.

    The failure records of this run's failed units go to the comparator too, so its report
    lists them (records of units no longer in the suite are left out).
    """
    from bench import compare as cmp
    from bench.results import load_results

    mapping = None
    if suite.mapping:
        mapping = cmp.load_compare_config(overrides={"mapping": suite.mapping}).mapping
    failed = {str(r.failure_path) for r in reports if r.status == "failed"}
    failures = [f for f in read_failures(suite.out) if f.path in failed]
    outputs: dict[str, Any] = {}
    for seed in suite.seeds:
        from bench.series import collect

        series_files = [collect(entry, paths, folder, seed) for entry, folder, paths in series_paths(suite, seed)]
        outputs.update({f"series_{Path(f).parent.name}_seed{seed}": f for f in series_files})
        rdir = suite.results_dir(seed)
        if not rdir.exists():
            continue
        results = [r for r in load_results(rdir) if r.kind in ("probe", "cca")]
        if not results:
            continue
        results += [f for f in failures if f.seed == seed]
        comparison = cmp.compare(results, mapping=mapping, top_ks=suite.top_ks)
        outputs[f"comparison_seed{seed}"] = cmp.write_comparison(comparison, suite.report_dir("comparison", seed))
        if suite.leaderboard:
            from leaderboard import build_leaderboard

            ldir = suite.report_dir("leaderboard", seed)
            title = f"LayerBench leaderboard: {suite.name}" + (f" (seed {seed})" if len(suite.seeds) > 1 else "")
            from leaderboard.series import series_section

            section = series_section(series_files, ldir / "plots")
            outputs[f"leaderboard_seed{seed}"] = build_leaderboard(rdir, ldir, comparison=comparison, title=title,
                                                                   sections=[section] if section else [])
    return outputs


def write_summary(suite: Suite, reports: Sequence[UnitReport], outputs: dict[str, Any]) -> Path:
    """`<out>/run.json`: what this invocation did per unit (timings, failures) and what it wrote."""
    log = RunLog(suite=suite.name, source=suite.source, seeds=suite.seeds, outputs=outputs, units=[
        RunUnitLog(upstream=r.unit.upstream.spec, label=r.unit.upstream.name, unit_kind=r.unit.kind, name=r.unit.name,
                   seed=r.unit.seed, status=r.status, seconds=round(r.seconds, 3), result_path=str(r.unit.path),
                   config_hash=r.unit.config_hash, error=r.error if r.status == "failed" else None,
                   failure_record=str(r.failure_path) if r.status == "failed" else None)
        for r in reports])
    return write_record(suite.out / "run.json", log)


def format_failures(reports: Sequence[UnitReport]) -> str:
    failed = [r for r in reports if r.status == "failed"]
    lines = [f"{len(failed)} unit(s) failed:"]
    for r in failed:
        lines.append(f"  {r.unit.key}: {r.error}")
        lines.append(f"    record: {r.failure_path}")
    return "\n".join(lines)


def run_suite(
    suite: Suite,
    *,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> RunSummary:
    """Plan, run what is pending, then compare and build the leaderboard (the whole main job).

    Units another process is computing (claimed) are left to it; compare and leaderboard wait
    until every unit is in (a later run, or `layerbench status`, builds them).
    """
    prepare_out(suite)
    ensure_corpora(suite, progress=progress, echo=echo)
    units = plan(suite)
    echo(format_plan(suite, units))
    reports = execute(suite, units, force=force, progress=progress, echo=echo)
    claimed = [r for r in reports if r.status == "claimed"]
    outputs = {} if claimed else summarise(suite, reports)
    if claimed:
        echo(f"{len(claimed)} unit(s) are being computed by another process; compare and leaderboard "
             f"are built once they are in (rerun, or `layerbench status {suite.out}`)")
    write_summary(suite, reports, outputs)
    return RunSummary(suite, reports, outputs)


SUITE_MARK = "suite.json"


def prepare_out(suite: Suite) -> None:
    """Check the results folder before any compute: writable, and not another suite's.

    `<out>/suite.json` names the suite that owns the folder (and how this run was set up, so
    `layerbench status RUN_DIR` can plan it again); a run of a different suite into the same
    folder is refused, since its results and tables would mix with the first one's.
    """
    out = suite.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test~{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"results folder {out} (suite `out` in {suite.source}, or --out) is not writable: "
                          f"{e.strerror or e}") from e
    mark = out / SUITE_MARK
    if mark.is_file():
        owner = read_record(mark, SuiteMark)
        if owner.suite != suite.name:
            raise ConfigError(
                f"results folder {out} holds suite {owner.suite!r} (from {owner.source}, see {mark}); "
                f"suite {suite.name!r} ({suite.source}) would mix its results into it: give it its own --out")
    syn = suite.synthetic
    write_record(mark, SuiteMark(
        suite=suite.name, source=str(Path(suite.source).resolve()) if Path(suite.source).is_file() else suite.source,
        device=suite.device, seeds=suite.seeds, synthetic_dir=str(syn.dir.resolve()) if syn is not None else None,
        corpora={k: str(v.resolve()) for k, v in suite.corpora.items()}))


def reload_suite(run_dir: Path) -> Suite:
    """The suite a results folder was run with, as its last run set it up (for `layerbench status`)."""
    mark = run_dir / SUITE_MARK
    if not mark.is_file():
        raise ConfigError(f"{run_dir} is not a run folder of `layerbench run` (no {SUITE_MARK} in it)")
    info = read_record(mark, SuiteMark)
    if not Path(info.source).is_file():
        raise ConfigError(f"{mark}: the suite file {info.source!r} it was run from is gone")
    suite = load_suite(info.source)
    syn = suite.synthetic
    return replace(suite, out=run_dir, device=info.device, seeds=info.seeds,
                   synthetic=replace(syn, dir=Path(info.synthetic_dir)) if syn is not None else None,
                   corpora={k: Path(v) for k, v in info.corpora.items()})


def read_failures(out: str | Path) -> list[FailureRecord]:
    """The failure records left under `<out>/failures/` (for the comparator, scripts and tests)."""
    folder = Path(out) / "failures"
    if not folder.is_dir():
        return []
    return [read_record(p, FailureRecord) for p in sorted(folder.glob("*.json"))]
