"""Learning-rate search: the best rate for every layer and the weighted sum, from shared upstream passes.

SUPERB tuned one thing per upstream and task: the learning rate, on a log scale. Here every
head (each single layer and the weighted sum) has its own optuna study over the rate, and
the studies advance in *rounds*: each study is asked for up to K trials (ask-and-tell), the
probe bank stacks K copies of every head, copy c of head h training at trial c's rate
(`bench.probe.build_groups(rates=...)`, per-head Adam state and rate in `StackedAdam`), so
one upstream pass (or one pooled-cache gather) per batch trains K x (L+2) heads. After every
dev evaluation each head's best dev score so far is reported to its trial; a trial the
pruner stops stops training its head while the rest go on. At the end of a round every
trial is told its best dev score, with the test score of that best-dev checkpoint kept as a
trial attribute, so the result is built from the studies alone: a study in sqlite or journal
storage resumes after an interruption without redoing finished trials, and several
processes can share one.

Copy c of every head starts from the weights a probe run of the same seed starts from
(`tasks.base.tile_heads`), so a trial at rate r scores what `layerbench probe --set lr=r` does,
and the rates of a head are compared on one initialisation. Once a trial is pruned (or its head
diverges) the bank computes only the slices still training.

Heads that cannot be stacked (the ASR BiLSTMs) keep one module each; on the CPU the K x (L+2)
BiLSTMs of a round run as one fused pass, still from the same upstream pass per batch.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

from bench import schema
from bench.config import CONFIG_DIR, ConfigError, load_yaml, merge
from bench.data.manifest import Corpus
from bench.probe import WS, Bank, ProbeData, _flags, build_groups, corpus_info, open_unit, plan_probe, train_bank
from bench.records import LayerScore, ProbeResult, WeightedSumScore, upstream_info
from bench.results import UnitOutcome, config_hash, is_done, read_record, result_path, slug, write_record
from bench.types import Upstream

TUNE_CONFIG = CONFIG_DIR / "tune.yaml"
# Bump when what one trial trains changes (2: copies start from the probe run's weights): the study
# key changes with it, so a stored study starts afresh instead of mixing trials of two codes.
TRIAL_VERSION = 2
Sampler = Literal["tpe", "random"]
Pruner = Literal["median", "halving", "none"]
Use = Literal["tuned", "fixed"]


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class TuneSettings:
    """How the rate is searched (configs/tune.yaml documents every field). The rate fields take a
    list or a comma string ("1e-3,1e-2", as the command line gives them)."""

    trials: int = field(metadata={"ge": 1})
    stack: int = field(metadata={"ge": 1})
    span: tuple[float, float] | str
    lr_range: tuple[float, float] | str | None
    grid: tuple[float, ...] | str | None
    sampler: Sampler
    pruner: Pruner
    prune_startup: int = field(metadata={"ge": 0})
    prune_warmup: int = field(metadata={"ge": 0})
    use: Use

    def checked(self, loc: str) -> "TuneSettings":
        return replace(self, span=_rates(self.span, "span", loc, pair=True),
                       lr_range=_rates(self.lr_range, "lr_range", loc, pair=True),
                       grid=_rates(self.grid, "grid", loc, pair=False))

    def bounds(self, preset_lr: float) -> tuple[float, float]:
        """The log-uniform range: `lr_range`, else `span` around the preset's rate, else the grid's ends."""
        if self.grid:
            return min(self.grid), max(self.grid)
        if self.lr_range:
            return self.lr_range
        return preset_lr * self.span[0], preset_lr * self.span[1]

    @property
    def per_head(self) -> int:
        """Trials each head gets: `trials`, capped by the grid size when a grid is given."""
        return min(self.trials, len(self.grid)) if self.grid else self.trials

    def space(self, preset_lr: float) -> dict[str, Any]:
        """What defines a study's trials (its name hashes this): the rates it may try and how."""
        low, high = self.bounds(preset_lr)
        return {"grid": list(self.grid)} if self.grid else {"low": low, "high": high, "log": True,
                                                             "sampler": self.sampler}


def _rates(v: Any, key: str, where: str, pair: bool) -> tuple[float, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = [x for x in v.split(",") if x.strip()]
    try:
        out = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a list of positive numbers, got {v!r}") from None
    if not out or any(not math.isfinite(x) or x <= 0 for x in out) or (pair and (len(out) != 2 or out[0] >= out[1])):
        want = "[low, high] with 0 < low < high" if pair else "a list of positive numbers"
        raise ConfigError(f"{where}: {key} must be {want}, got {v!r}")
    return out if pair else tuple(dict.fromkeys(out))  # a grid is tried in the order given


def resolve_settings(overrides: dict[str, Any] | None = None, where: str = "tune settings") -> TuneSettings:
    """configs/tune.yaml with `overrides` merged; unknown keys and bad values are errors naming them."""
    return schema.load(TuneSettings, merge(load_yaml(TUNE_CONFIG), overrides or {}, where=where), where)


# ---------------------------------------------------------------- storage and studies


def open_storage(url: str | None):
    """None -> in memory; `sqlite:///file.db` (any SQLAlchemy URL) -> RDB; `journal:PATH` -> journal file."""
    import optuna

    if url is None or url in ("", "memory"):
        return optuna.storages.InMemoryStorage()
    if url.startswith("journal:"):
        path = url[len("journal:"):]
        if not path:
            raise ConfigError("--storage journal:PATH needs a file path")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise ConfigError(f"--storage {url!r}: give sqlite:///path.db (or another database URL) or journal:PATH")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as e:  # optuna/SQLAlchemy raise many types for a bad URL or an unreachable database
        raise ConfigError(f"--storage {url!r}: cannot open it: {e}") from e


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphans(study) -> int:
    """Mark FAIL the running trials a dead process of this machine left (a killed search).

    Trials of a live process (another worker sharing the study) or of another machine are
    left alone. Returns how many were failed.
    """
    from optuna.trial import TrialState

    host, me = socket.gethostname(), os.getpid()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(t.user_attrs.get("owner", ""))
        h, _, pid = owner.rpartition(":")
        if h == host and pid.isdigit() and (int(pid) == me or not _alive(int(pid))):
            study.tell(t.number, state=TrialState.FAIL)
            n += 1
    return n


def finished(study) -> list:
    """Trials that count against a head's budget: complete, pruned, or failed by divergence
    (a trial failed because its search was interrupted does not count and is tried again)."""
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and "diverged_at" in t.user_attrs):
            out.append(t)
    return out


def _sampler(settings: TuneSettings, seed: int):
    import optuna

    if settings.sampler == "random" or settings.grid:  # grid rates are enqueued: the sampler only fills them in
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(settings.stack, settings.per_head),
                                      constant_liar=True)


def _pruner(settings: TuneSettings, eval_every: int):
    import optuna

    warmup = settings.prune_warmup * eval_every
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup, n_warmup_steps=warmup)
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup))
    return optuna.pruners.NopPruner()


# ---------------------------------------------------------------- planning


def plan_tune(upstream: str | Upstream, task: str, corpus: str | Path | Corpus, *, preset: str = "quick",
              overrides: dict | None = None, layers: Any = None, tune: dict | None = None,
              out_dir: str | os.PathLike = "runs", seed: int = 0) -> tuple[Path, dict[str, Any], str, TuneSettings]:
    """Result path, config, config hash and settings of one tuning unit; loads no model and no audio.

    The probe config's `lr` is the centre of the default range, not a trained rate; the study
    key hashes everything that defines a trial (probe config, search space, seed, TRIAL_VERSION).
    """
    _, probe_config, _ = plan_probe(upstream, task, corpus, preset=preset, overrides=overrides, layers=layers,
                                    out_dir=out_dir, seed=seed)
    settings = resolve_settings(tune, where=f"tune settings of {task}")
    space = settings.space(float(probe_config["params"]["lr"]))
    study_key = config_hash({"probe": probe_config, "space": space, "trial_version": TRIAL_VERSION})
    config = {**probe_config, "tune": {**asdict(settings), "study_key": study_key}}
    config["tune"].pop("use")  # which result a suite compares does not change this one
    return (result_path(out_dir, "tune", probe_config["upstream"], task, seed), config, config_hash(config),
            settings)


def study_name(config: dict[str, Any], head: str) -> str:
    return f"layerbench/{slug(config['upstream'])}/{config['task']}/{config['tune']['study_key']}/{head}"


def head_names(data: ProbeData, selected: list[int]) -> list[str]:
    """The heads a bank over `selected` trains, in build_groups' naming: layer names, then WS."""
    return [data.specs[i].name for i in selected] + ([WS] if data.params.weighted_sum.enabled else [])


# ---------------------------------------------------------------- one round


@dataclass
class _Slot:
    """One asked trial and the bank slice that trains at its rate."""

    head: str
    study: Any
    trial: Any
    group: Any = None
    index: int = -1
    pruned: bool = False  # told PRUNED mid-round (trial numbers repeat across heads' studies: not a key)

    @property
    def active(self) -> bool:
        return bool(self.group.active[self.index])


def _ask(study, settings: TuneSettings, low: float, high: float, taken: list[float]):
    """One trial of a head; in grid mode the next untried grid rate is enqueued first."""
    from optuna.distributions import FloatDistribution

    if settings.grid:
        todo = [r for r in settings.grid if all(not math.isclose(r, t, rel_tol=1e-9) for t in taken)]
        study.enqueue_trial({"lr": todo[0]}, skip_if_exists=False)
    trial = study.ask({"lr": FloatDistribution(low, high, log=True)})
    trial.set_user_attr("owner", _owner())
    return trial


def _run_round(slots_by_head: dict[str, list[_Slot]], data: ProbeData, selected: list[int],
               seed: int, desc: str, progress: bool) -> dict[str, float]:
    """Train one bank with every asked trial as one stacked copy; prune and tell as it goes."""
    from optuna.trial import TrialState

    params = data.params
    k = max(len(s) for s in slots_by_head.values())
    fill = params.lr  # idle copies (a head with fewer trials this round) never train
    rates = {h: [s.trial.params["lr"] for s in slots] + [fill] * (k - len(slots)) for h, slots in slots_by_head.items()}
    groups = build_groups(data.task, data.space, data.specs, selected, params, seed, data.device, rates=rates)
    bank = Bank(data.task, data.space, groups, params, data.device, seed)
    for grp in groups:
        for g in range(grp.size):
            copy, head = grp.slot(g)
            slots = slots_by_head[head]
            if copy < len(slots):
                slots[copy].group, slots[copy].index = grp, g
            else:
                grp.active[g] = False
    slots = [s for ss in slots_by_head.values() for s in ss]
    steps, every = params.steps, params.eval_every

    def on_dev(step: int) -> None:
        for s in slots:
            if not s.active or s.pruned:
                continue
            best = s.group.best_dev[s.index]
            if best is None:
                continue
            s.trial.report(best, step)
            if step < steps and s.trial.should_prune():
                s.trial.set_user_attr("dev", best)
                s.trial.set_user_attr("best_step", s.group.best_step[s.index])
                s.study.tell(s.trial, state=TrialState.PRUNED)
                s.pruned = True
                s.group.active[s.index] = False  # a pruned rate stops training; the rest go on

    try:
        timings = train_bank(bank, data, desc=desc, progress=progress, on_dev=on_dev)
    except BaseException:
        for s in slots:  # an interrupted round's trials are tried again by the next run
            if not s.pruned:
                s.trial.set_user_attr("interrupted", True)
                s.study.tell(s.trial, state=TrialState.FAIL)
        raise
    for s in slots:
        if s.pruned:
            continue
        grp, g = s.group, s.index
        dev, test = grp.best_dev[g], grp.test[g]
        s.trial.set_user_attr("test", test)
        s.trial.set_user_attr("best_step", grp.best_step[g])
        s.trial.set_user_attr("flags", _flags(grp, g, steps, every))
        if s.head == WS:
            copy = g // len(grp.names)
            s.trial.set_user_attr("weights", grp.featurizers[copy].normalized().detach().cpu().tolist())
        if grp.diverged[g] >= 0:
            s.trial.set_user_attr("diverged_at", grp.diverged[g])
        if dev is None:
            s.study.tell(s.trial, state=TrialState.FAIL)
        else:
            s.trial.set_user_attr("dev", dev)
            s.study.tell(s.trial, dev)
    return timings


# ---------------------------------------------------------------- the unit


def run_tune(upstream: str | Upstream, task: str, corpus: str | Path | Corpus, *, preset: str = "quick",
             overrides: dict | None = None, layers: Any = None, tune: dict | None = None, storage: str | None = None,
             out_dir: str | os.PathLike = "runs", seed: int = 0, device: str = "auto", force: bool = False,
             label: str | None = None, progress: bool = True,
             on_round: Callable[[int, dict[str, list[float]]], None] | None = None) -> UnitOutcome:
    """Search the learning rate of every head of one (upstream, task) and write the tuned result.

    `storage` is None (in memory), `sqlite:///…` or `journal:PATH`; trials already finished in
    it are kept. `on_round(round, rates)` is told each round's rates per head before it trains.
    """
    import optuna

    path, config, chash, settings = plan_tune(upstream, task, corpus, preset=preset, overrides=overrides,
                                              layers=layers, tune=tune, out_dir=out_dir, seed=seed)
    if not force and is_done(path, chash):
        return UnitOutcome(path, True, read_record(path, ProbeResult))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_start = time.perf_counter()
    data, selected = open_unit(upstream, task, corpus, config, out_dir=out_dir, seed=seed, device=device,
                               progress=progress)
    dev = data.device
    params = data.params
    heads = head_names(data, selected)
    if not heads:
        raise ConfigError("nothing to tune: no layer selected and weighted_sum.enabled is false")
    store = open_storage(storage)
    direction = "maximize" if data.task.higher_is_better else "minimize"
    studies = {}
    for i, h in enumerate(heads):
        studies[h] = optuna.create_study(storage=store, study_name=study_name(config, h), direction=direction,
                                         sampler=_sampler(settings, seed * 1000 + i),
                                         pruner=_pruner(settings, params.eval_every), load_if_exists=True)
        fail_orphans(studies[h])
    low, high = settings.bounds(params.lr)
    what = f"{label or config['upstream']} {task}"
    timings = {"train_s": 0.0, "eval_s": 0.0}
    rounds = 0
    while True:
        slots: dict[str, list[_Slot]] = {}
        for h in heads:
            done = finished(studies[h])
            todo = min(settings.stack, settings.per_head - len(done))
            taken = [t.params["lr"] for t in done]
            slots[h] = []
            for _ in range(max(0, todo)):
                trial = _ask(studies[h], settings, low, high, taken)
                taken.append(trial.params["lr"])
                slots[h].append(_Slot(h, studies[h], trial))
        if not any(slots.values()):
            break
        rounds += 1
        if on_round is not None:
            on_round(rounds, {h: [s.trial.params["lr"] for s in ss] for h, ss in slots.items()})
        # Heads with no trial left this round still get idle slices (build_groups wants every head).
        t = _run_round(slots, data, selected, seed, f"tune {what} round {rounds}", progress)
        for key in timings:
            timings[key] += t[key]
    timings = {"extract_s": data.extract_s + data.forward_s(), **timings,
               "total_s": time.perf_counter() - t_start, "rounds": rounds}
    result = tuned_result(config, chash, settings, data, studies, label, dev, timings, storage)
    write_record(path, result)
    return UnitOutcome(path, False, read_record(path, ProbeResult))  # what a resumed run would read


# ---------------------------------------------------------------- the result


def _trial_record(t) -> dict[str, Any]:
    return {"number": t.number, "lr": t.params.get("lr"), "state": t.state.name.lower(),
            "dev": t.user_attrs.get("dev"), "test": t.user_attrs.get("test"),
            "best_step": t.user_attrs.get("best_step"),
            "intermediate": {int(k): v for k, v in sorted(t.intermediate_values.items())}}


def _best(study, higher: bool):
    """The complete trial with the best dev score (ties: the earlier trial), or None."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        return None
    return sorted(done, key=lambda t: ((-t.value if higher else t.value), t.number))[0]


def _chosen(t, settings: TuneSettings, low: float, high: float) -> dict[str, Any]:
    """dev / test / lr / flags of a head at its chosen rate; `lr_at_edge` when that rate sits at the
    end of the searched range (the best rate may lie outside it)."""
    if t is None:
        return {"dev": None, "test": None, "lr": None, "flags": ["untrained"]}
    lr = float(t.params["lr"])
    flags = list(t.user_attrs.get("flags") or [])
    edge = math.log(high / low) * 0.05
    if abs(math.log(lr / low)) <= edge or abs(math.log(high / lr)) <= edge:
        flags.append("lr_at_edge")
    return {"dev": t.value, "test": t.user_attrs.get("test"), "lr": lr, "flags": flags}


def tuned_result(config, chash, settings: TuneSettings, data: ProbeData, studies: dict, label, device, timings,
                 storage: str | None) -> ProbeResult:
    """A probe result (per-layer and weighted-sum dev/test) at each head's best rate, plus the trials."""
    t = data.task
    higher = t.higher_is_better
    low, high = settings.bounds(data.params.lr)
    by_name = {s.name: s for s in data.specs}
    per_layer, ws = [], None
    for head, study in studies.items():
        best = _best(study, higher)
        row = _chosen(best, settings, low, high)
        if head == WS:
            from bench.probe import weighted_sum_layers

            ids = weighted_sum_layers(data.specs)
            weights = best.user_attrs.get("weights") if best else None
            ws = WeightedSumScore(**row, weights=weights or [], layers=[data.specs[i].index for i in ids] if weights else [],
                                  layer_names=[data.specs[i].name for i in ids] if weights else [],
                                  layer_norm=data.params.weighted_sum.layer_norm)
        else:
            spec = by_name[head]
            per_layer.append(LayerScore(layer=spec.index, name=spec.name, **row))
    per_layer.sort(key=lambda r: r.layer)
    trials = {head: [_trial_record(tr) for tr in study.get_trials(deepcopy=False)] for head, study in studies.items()}
    return ProbeResult(
        tuned=True, upstream=config["upstream"], label=label, task=t.name, metric=t.metric, higher_is_better=higher,
        per_layer=per_layer, weighted_sum=ws,
        tune={"trials_per_head": settings.per_head, "stack": settings.stack, "range": [low, high],
              "grid": list(settings.grid) if settings.grid else None, "sampler": settings.sampler,
              "pruner": settings.pruner, "storage": _storage_label(storage),
              "studies": {h: s.study_name for h, s in studies.items()}, "trials": trials},
        corpus=corpus_info(config, data.corpus, t), upstream_info=upstream_info(data.upstream), config=config,
        config_hash=chash, seed=config["seed"], timings={k: round(v, 3) for k, v in timings.items()},
        device=str(device))


def _storage_label(url: str | None) -> str:
    """The storage without credentials (a database URL may carry a password)."""
    if not url:
        return "memory"
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def format_tuned(result: ProbeResult) -> str:
    """Per head: the chosen rate, dev and test at it, and how its trials ended."""
    metric = result.metric.upper() if result.metric != "accuracy" else "ACC"
    fmt = lambda v: "   -  " if v is None else f"{v:6.2f}"
    trials = (result.tune or {}).get("trials", {})

    def ends(head: str) -> str:
        states = [tr["state"] for tr in trials.get(head, [])]
        return f"{states.count('complete')}c/{states.count('pruned')}p"

    lines = [f"{result.upstream} x {result.task}: tuned learning rate per head "
             f"({metric} %, {'higher' if result.higher_is_better else 'lower'} is better; trials complete/pruned)",
             f"{'layer':>6} {'name':<12} {'lr':>9} {'dev':>6} {'test':>6} {'trials':>7}  flags"]
    rows = [(str(r.layer), r.name, r) for r in result.per_layer]
    if result.weighted_sum:
        rows.append(("ws", WS, result.weighted_sum))
    for idx, name, r in rows:
        lr = "    -    " if r.lr is None else f"{r.lr:9.2e}"
        lines.append(f"{idx:>6} {name[:12]:<12} {lr} {fmt(r.dev)} {fmt(r.test)} {ends(name):>7}  "
                     f"{','.join(r.flags)}")
    return "\n".join(lines)
