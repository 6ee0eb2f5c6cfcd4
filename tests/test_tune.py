"""Learning-rate search: stacked rates are separate Adam runs, resume keeps finished trials, errors name the value."""

from __future__ import annotations

import json
import os
import socket

import optuna
import pytest
import torch

from bench.config import ConfigError
from bench.probe import ModuleAdam, StackedAdam, run_probe
from bench.tune import fail_orphans, open_storage, resolve_settings, run_tune
from bench.types import LayerSpec, UpstreamOutput
from tasks.base import BiLSTMHead, ModuleHeads, PooledHeads, tile_heads
from test_probe_fakes import SignalUpstream, class_corpus, one_thread, phone_corpus  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stacked_adam_with_one_rate_per_head_is_separate_adams():
    torch.manual_seed(0)
    rates = [1e-3, 3e-2, 0.3]
    stacked = PooledHeads(3, 5, 7, 4, torch.Generator().manual_seed(1))
    singles = []
    for k in range(3):
        m = PooledHeads(1, 5, 7, 4)
        with torch.no_grad():
            for p, q in zip(m.parameters(), stacked.parameters()):
                p.copy_(q[k : k + 1])
        singles.append(m)
    sopt = StackedAdam(list(stacked.parameters()), 3, lr=rates, clip=0.5)
    mopt = ModuleAdam(singles, lr=rates, clip=0.5)
    active = torch.ones(3, dtype=torch.bool)
    for step in range(6):
        x = torch.randn(3, 6, 5)
        y = torch.randint(0, 4, (6,))
        if step == 3:
            active[0] = False  # a stopped (pruned) rate: the others keep their own state and rate
        sopt.zero_grad()
        mopt.zero_grad()
        torch.nn.functional.cross_entropy(stacked(x).reshape(-1, 4), y.repeat(3), reduction="sum").backward()
        for k, m in enumerate(singles):
            torch.nn.functional.cross_entropy(m(x[k : k + 1])[0], y, reduction="sum").backward()
        sopt.step(active)
        mopt.step(active)
    for k, m in enumerate(singles):
        for p, q in zip(m.parameters(), stacked.parameters()):
            assert torch.allclose(p[0], q[k], atol=1e-5), k
    moved = [float((q[2] - q[1]).detach().abs().max()) for q in stacked.parameters()]
    assert max(moved) > 0.1  # the rates really differ


class KeywordOracle(torch.nn.Module):
    """Layer l = scale_l x (the keyword's embedding + noise), the keyword looked up from the audio.

    The classes are equally separable on every layer; only the scale differs. A pooled head must
    grow its weights until the keyword's logit wins, and under Adam each weight moves about one
    rate per step, so the logit it builds in a fixed budget grows like scale x (rate x steps)^2:
    a layer 100x smaller needs a rate about 10x larger, while rates beyond that overshoot.
    """

    def __init__(self, corpus, scales, noise=0.8, dim=16):
        super().__init__()
        utts = [u for s in ("train", "dev", "test") for u in corpus.split(s)]
        labels = sorted({u.labels["keyword"] for u in utts})
        self.keyword = {self._key(torch.from_numpy(u.load())): labels.index(u.labels["keyword"]) for u in utts}
        self.emb = torch.randn(len(labels), dim, generator=torch.Generator().manual_seed(0))
        self.scales, self.noise = scales, noise
        self.spec, self.revision = "fake:oracle", f"{scales}-{noise}"
        self.layers = [LayerSpec(f"x{s:g}", i, dim, 320) for i, s in enumerate(scales)]

    @staticmethod
    def _key(wav: torch.Tensor) -> float:
        return round(float(wav.double().abs().sum()), 3)

    def forward(self, wavs, wav_lens):
        n = (wav_lens // 320).tolist()
        z = torch.zeros(wavs.shape[0], max(n), self.emb.shape[1])
        for i, t in enumerate(n):
            key = self._key(wavs[i, : int(wav_lens[i])])
            g = torch.Generator().manual_seed(int(key * 1000) % (2**31))
            noise = torch.randn(t, z.shape[2], generator=g) + torch.randn(1, z.shape[2], generator=g)
            z[i, :t] = self.emb[self.keyword[key]] + self.noise * noise
        return UpstreamOutput([s * z for s in self.scales], [torch.tensor(n)] * len(self.scales))


def test_finds_the_rate_each_layer_needs(synth_root, tmp_path):
    """Tiny synthetic corpus, KS: the layer at scale 1 is best at 1e-2, the layer at 0.01 at 1e-1."""
    from bench.data import open_corpus

    corpus = open_corpus(synth_root, "speech_commands")
    up = KeywordOracle(corpus, [1.0, 0.01])
    out = run_tune(up, "ks", corpus, out_dir=tmp_path / "runs", progress=False,
                   overrides={"steps": 15, "eval_every": 3, "weighted_sum": {"enabled": False, "layer_norm": False}},
                   tune={"grid": [1e-2, 1e-1, 1.0], "stack": 2, "pruner": "none"})
    res = out.result
    chosen = {r.name: r.lr for r in res.per_layer}
    assert chosen == {"x1": 1e-2, "x0.01": 1e-1}
    for row in res.per_layer:
        trials = res.tune["trials"][row.name]
        assert len(trials) == 3 and all(t["state"] == "complete" for t in trials)
        others = [t["dev"] for t in trials if t["lr"] != row.lr]
        assert row.dev > max(others)  # clearly best: strictly above every other rate
        assert row.test is not None
    assert res.timings["rounds"] == 2  # K=2 rates per round (the third alone), one bank per round


def test_pruning_in_one_head_leaves_the_other_heads_trials_alone(synth_root, tmp_path):
    """Trial numbers repeat across the heads' studies: pruning layer x1's trial 2 must not skip
    reporting, telling or training x0.01's trial 2 (it did: left RUNNING and asked again next round)."""
    from bench.data import open_corpus

    corpus = open_corpus(synth_root, "speech_commands")
    up = KeywordOracle(corpus, [1.0, 0.01])
    out = run_tune(up, "ks", corpus, out_dir=tmp_path / "runs", progress=False,
                   overrides={"steps": 15, "eval_every": 3, "weighted_sum": {"enabled": False, "layer_norm": False}},
                   tune={"grid": [1e-2, 1e-1, 1e-3, 1.0], "stack": 2, "pruner": "median", "prune_startup": 2,
                         "prune_warmup": 1})
    res = out.result
    assert res.timings["rounds"] == 2
    for head, trials in res.tune["trials"].items():
        assert [t["lr"] for t in trials] == [1e-2, 1e-1, 1e-3, 1.0], head  # each rate tried once
        assert [t["state"] for t in trials] == ["complete", "complete", "pruned", "pruned"], head
        assert all(t["dev"] is not None for t in trials)
    assert {r.name: r.lr for r in res.per_layer} == {"x1": 1e-2, "x0.01": 1e-1}


def _kw(tmp_path, **tune):
    return dict(out_dir=tmp_path / "runs", progress=False, overrides={"steps": 6, "eval_every": 3},
                tune={"trials": 4, "stack": 2, "pruner": "none", **tune})


def _study_trials(db: str, result) -> dict[str, list]:
    storage = optuna.storages.RDBStorage(db)
    return {h: optuna.load_study(study_name=name, storage=storage).get_trials()
            for h, name in result.tune["studies"].items()}


def test_interrupted_search_resumes_without_redoing_finished_trials(tmp_path, monkeypatch):
    import bench.tune as tune_mod

    corpus = class_corpus(tmp_path / "ks", classes=3, per_class={"train": 8, "dev": 4, "test": 4})
    up = SignalUpstream([0.3, 1.0])
    db = f"sqlite:///{tmp_path}/tune.db"
    real = tune_mod.train_bank
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the second round
        return real(*a, **k)

    monkeypatch.setattr(tune_mod, "train_bank", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_tune(up, "ks", corpus, storage=db, **_kw(tmp_path))
    path = tmp_path / "runs" / "tune" / "fake_signal__ks.json"
    assert not path.exists()
    names = optuna.get_all_study_names(storage=db)
    assert len(names) == 3  # layer0, layer1, weighted_sum
    before = {n: optuna.load_study(study_name=n, storage=db).get_trials() for n in names}
    for trials in before.values():
        states = [t.state for t in trials]
        assert states.count(optuna.trial.TrialState.COMPLETE) == 2
        assert states.count(optuna.trial.TrialState.FAIL) == 2  # the interrupted round, to be tried again

    monkeypatch.setattr(tune_mod, "train_bank", real)
    rounds = []
    out = run_tune(up, "ks", corpus, storage=db, on_round=lambda r, rates: rounds.append(rates), **_kw(tmp_path))
    assert len(rounds) == 1 and all(len(r) == 2 for r in rounds[0].values())  # only the missing 2 per head
    after = _study_trials(db, out.result)
    for head, trials in after.items():
        name = out.result.tune["studies"][head]
        old = [t for t in before[name] if t.state == optuna.trial.TrialState.COMPLETE]
        kept = {t.number: t for t in trials}
        for t in old:  # finished trials untouched: same rate, score and completion time
            assert kept[t.number].value == t.value and kept[t.number].params == t.params
            assert kept[t.number].datetime_complete == t.datetime_complete
        assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 4
    res = json.loads(path.read_text())
    assert res["kind"] == "probe" and res["tuned"] is True
    for row in res["per_layer"] + [res["weighted_sum"]]:
        assert row["lr"] is not None and row["dev"] is not None and row["test"] is not None
    for head, trials in res["tune"]["trials"].items():
        best = max((t for t in trials if t["state"] == "complete"), key=lambda t: (t["dev"], -t["number"]))
        row = res["weighted_sum"] if head == "weighted_sum" else next(r for r in res["per_layer"] if r["name"] == head)
        assert row["lr"] == best["lr"] and row["dev"] == best["dev"] and row["test"] == best["test"]

    # Everything done: a third run trains nothing (the finished result is skipped; forced, it is rebuilt
    # from the stored trials).
    monkeypatch.setattr(tune_mod, "train_bank", lambda *a, **k: pytest.fail("a finished trial was retrained"))
    assert run_tune(up, "ks", corpus, storage=db, **_kw(tmp_path)).skipped
    again = run_tune(up, "ks", corpus, storage=db, force=True, **_kw(tmp_path))
    assert again.result.to_json()["per_layer"] == res["per_layer"]


def test_orphans_of_dead_processes_fail_live_ones_stay(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/o.db"), study_name="s")
    dead = study.ask()
    dead.set_user_attr("owner", f"{socket.gethostname()}:{2**22 + 12345}")  # no such pid
    other = study.ask()
    other.set_user_attr("owner", "another-machine:1")
    alive = study.ask()
    alive.set_user_attr("owner", f"{socket.gethostname()}:{os.getppid()}")
    assert fail_orphans(study) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {0: optuna.trial.TrialState.FAIL, 1: optuna.trial.TrialState.RUNNING,
                      2: optuna.trial.TrialState.RUNNING}


def test_pruned_rates_stop_training_the_rest_go_on(tmp_path):
    corpus = class_corpus(tmp_path / "ks", classes=4, per_class={"train": 10, "dev": 5, "test": 5})
    up = SignalUpstream([0.3])
    # Grid rates are tried in the order given: round 1 two good rates, which complete; round 2 a rate far
    # too small, which the median pruner stops at its first check after the warm-up, beside a good one.
    out = run_tune(up, "ks", corpus, out_dir=tmp_path / "runs", progress=False, layers="0",
                   overrides={"steps": 40, "eval_every": 5, "weighted_sum": {"enabled": False, "layer_norm": False}},
                   tune={"grid": [1e-2, 3e-2, 1e-7, 2e-2], "stack": 2, "pruner": "median", "prune_startup": 2,
                         "prune_warmup": 1})
    trials = out.result.tune["trials"]["layer0"]
    assert [t["lr"] for t in trials] == [1e-2, 3e-2, 1e-7, 2e-2]
    assert [t["state"] for t in trials] == ["complete", "complete", "pruned", "complete"]
    assert max(map(int, trials[2]["intermediate"])) <= 10  # stopped early ...
    assert max(map(int, trials[3]["intermediate"])) == 40  # ... while the good rate beside it trained the whole budget
    assert out.result.per_layer[0].lr in (1e-2, 3e-2, 2e-2) and out.result.timings["rounds"] == 2


def _computed_slices(monkeypatch) -> list[int]:
    """How many slices each PooledHeads forward computes, in call order."""
    seen, real = [], PooledHeads.forward

    def counting(self, pooled, lens=None, heads=None):
        seen.append(pooled.shape[0])
        return real(self, pooled, lens, heads)

    monkeypatch.setattr(PooledHeads, "forward", counting)
    return seen


def test_a_pruned_rate_costs_nothing_more_and_changes_nothing_for_the_rest(tmp_path, monkeypatch):
    """After the pruner stops a rate, the bank computes the other slices only (forward, backward,
    dev and test passes), with the same numbers as computing every slice and masking the stopped one."""
    corpus = class_corpus(tmp_path / "ks", classes=4, per_class={"train": 10, "dev": 5, "test": 5})
    up = SignalUpstream([0.3])
    kw = dict(progress=False, layers="0",
              overrides={"steps": 40, "eval_every": 5, "weighted_sum": {"enabled": False, "layer_norm": False}},
              tune={"grid": [1e-2, 3e-2, 1e-7, 2e-2], "stack": 2, "pruner": "median", "prune_startup": 2,
                    "prune_warmup": 1})
    seen = _computed_slices(monkeypatch)
    compact = run_tune(up, "ks", corpus, out_dir=tmp_path / "a", **kw).result.tune["trials"]["layer0"]
    assert [t["state"] for t in compact] == ["complete", "complete", "pruned", "complete"]
    assert seen.count(1) > 0.6 * seen.count(2)  # round 2 ran on one slice once 1e-7 was pruned
    monkeypatch.setattr(PooledHeads, "selectable", False)  # every slice computed, the stopped one masked
    seen.clear()
    full = run_tune(up, "ks", corpus, out_dir=tmp_path / "b", **kw).result.tune["trials"]["layer0"]
    assert set(seen) == {2}
    for a, b in zip(compact, full):
        assert a["state"] == b["state"] and a["best_step"] == b["best_step"]
        assert a["dev"] == pytest.approx(b["dev"]) and a["test"] == pytest.approx(b["test"])
        assert a["intermediate"] == pytest.approx(b["intermediate"])


def test_copies_start_as_the_heads_of_one_probe_run_and_train_apart():
    proto = PooledHeads(3, 5, 7, 4, torch.Generator().manual_seed(1))
    tiled = tile_heads(proto, 2)
    for p, q in zip(proto.parameters(), tiled.parameters()):
        assert q.shape[0] == 6 and torch.equal(q[:3], p) and torch.equal(q[3:], p)
    lstms = ModuleHeads([BiLSTMHead(5, 4, 3, 1, 0.0, 6) for _ in range(2)])
    copies = tile_heads(lstms, 3)
    assert len(copies.heads) == 6 and copies.fusable
    for g, head in enumerate(copies.heads):
        ref = lstms.heads[g % 2].state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in head.state_dict().items())
    with torch.no_grad():
        copies.heads[2].out.weight.add_(1.0)  # each copy owns its parameters
    assert torch.equal(copies.heads[0].out.weight, lstms.heads[0].out.weight)


@pytest.mark.parametrize("task", ["ks", "pr"])
def test_a_trial_is_the_probe_run_at_its_rate(tmp_path, task):
    """Copy c of every head starts from the weights the probe run of the same seed starts from, so a
    tuned head's scores at a rate are `layerbench probe --set lr=<rate>`'s, weighted sum included."""
    if task == "ks":
        corpus = class_corpus(tmp_path / "ks", classes=4, per_class={"train": 10, "dev": 5, "test": 5})
        over = {"steps": 20, "eval_every": 5}
    else:
        corpus = phone_corpus(tmp_path / "pr", counts={"train-clean-100": 12, "dev-clean": 4, "test-clean": 4})
        over = {"steps": 8, "eval_every": 4, "targets": {"scheme": "alignment39"}}
    up = SignalUpstream([0.3, 0.8])
    rates = [3e-3, 3e-2]
    tuned = run_tune(up, task, corpus, out_dir=tmp_path / "tune", progress=False, overrides=over,
                     tune={"grid": rates, "stack": 2, "pruner": "none"}).result
    by_rate = []
    for k, rate in enumerate(rates):
        probe = run_probe(up, task, corpus, out_dir=tmp_path / f"probe{k}", progress=False,
                          overrides={**over, "lr": rate}).result
        rows = {r.name: (r.dev, r.test) for r in probe.per_layer}
        rows["weighted_sum"] = (probe.weighted_sum.dev, probe.weighted_sum.test)
        for head, (dev, test) in rows.items():
            trial = next(t for t in tuned.tune["trials"][head] if t["lr"] == rate)
            assert (trial["dev"], trial["test"]) == pytest.approx((dev, test)), (head, rate)
        by_rate.append(rows)
    assert by_rate[0] != by_rate[1]  # the two rates train to different scores


def test_a_new_trial_version_starts_a_fresh_study(tmp_path, monkeypatch):
    """Trials trained by older code (other initialisations) are not mixed into a resumed study."""
    import bench.tune as tune_mod

    corpus = class_corpus(tmp_path / "ks", classes=3, per_class={"train": 4, "dev": 2, "test": 2})
    plan = lambda: tune_mod.plan_tune(SignalUpstream([0.3]), "ks", corpus, out_dir=tmp_path / "runs")
    _, config, chash, _ = plan()
    monkeypatch.setattr(tune_mod, "TRIAL_VERSION", tune_mod.TRIAL_VERSION + 1)
    _, bumped, bumped_hash, _ = plan()
    assert tune_mod.study_name(bumped, "layer0") != tune_mod.study_name(config, "layer0")
    assert bumped_hash != chash  # the finished result is recomputed too


@pytest.mark.parametrize("tune, msg", [
    ({"pruner": "hyperband"}, "pruner must be one of"),
    ({"lr_range": [1e-2, 1e-4]}, "lr_range must be [low, high]"),
    ({"grid": "0.1,x"}, "grid must be a list of positive numbers"),
    ({"stack": 0}, "stack must be an integer >= 1, got 0"),
    ({"trails": 3}, "did you mean 'trials'"),
])
def test_bad_settings_name_the_key(tune, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        resolve_settings(tune)


def test_bad_storage_is_a_clear_error():
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_storage("tune.db")
