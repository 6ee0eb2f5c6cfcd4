"""The runner: suite validation, planning, failure records, and interrupt-then-resume.

The resume test runs a tiny suite on the tiny synthetic corpus twice: once straight through
(out A), once interrupted after a few units and rerun (out B). Nothing finished before the
interrupt may be recomputed, and B's final tables must equal A's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from bench import runner
from bench.cli import main as cli_main
from bench.config import ConfigError
from results_fixtures import stand_in

ROOT = Path(__file__).resolve().parent.parent


def _suite(tmp_path: Path, **changes) -> Path:
    data = {
        "name": "t",
        "zoo": [{"name": "FBANK", "spec": "fbank"}],
        "tasks": [{"task": "ks", "preset": "quick"}],
        "cca": {"properties": ["phone"], "preset": "quick"},
        "corpora": {"synthetic": {"dir": str(tmp_path / "corpus"), "size": "tiny", "seed": 0}},
        "out": str(tmp_path / "out"),
        "seeds": [0],
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"taks": []}, ["unknown key 'taks'", "did you mean 'tasks'"]),
        ({"tasks": [{"task": "kss", "preset": "quick"}]}, ["tasks #1 (kss).task", "'kss'", "did you mean 'ks'"]),
        ({"tasks": [{"task": "ks", "presett": "quick"}]}, ["tasks #1", "unknown key 'presett'", "did you mean 'preset'"]),
        ({"tasks": [{"task": "ks", "preset": "fast"}]}, ["tasks #1 (ks)", "unknown preset 'fast' for task ks"]),
        ({"tasks": [{"task": "ks", "overrides": {"head": {"hidden": "big"}}}]},
         ["tasks #1 (ks)", "ks.yaml", "head.hidden must be an integer >= 1, got 'big'"]),
        ({"device": 0}, ["device must be a string, got 0"]),
        ({"compare": {"mapping": {"ic": []}}}, ["compare.mapping", "mapping.ic must be a non-empty list"]),
        ({"launcher": {"kind": "slurm", "mem_gb": -2}}, ["launcher.mem_gb must be a number > 0, got -2"]),
        ({"series": [{"name": "S", "checkpoints": [{"spec": "fbank"}]}]}, ["series #1 (S)", "at least two"]),
        ({"cca": {"properties": ["phon"], "preset": "quick"}}, ["cca.properties", "'phon'", "did you mean 'phone'"]),
        ({"zoo": [{"name": "A", "spec": "fbank"}, {"name": "B", "spec": "fbank"}]}, ["spec 'fbank' appears twice"]),
        ({"zoo": [{"name": "A", "spec": "fbank", "options": {"layer": [0]}}]}, ["options", "unknown key 'layer'", "did you mean 'layers'"]),
        ({"zoo": "superbb"}, ["zoo 'superbb' not found", "did you mean 'superb'"]),
        ({"zoo": None}, ["missing required key 'zoo'"]),
        ({"corpora": {"librispeech": "/x"}}, ["no corpus path for 'speech_commands'"]),
        ({"corpora": {"librispeeh": "/x"}}, ["corpora: unknown key 'librispeeh'", "did you mean 'librispeech'"]),
        ({"seeds": [0, 0]}, ["seeds", "twice"]),
        ({"seeds": "zero"}, ["seeds must be an integer or a list of integers, got 'zero'"]),
        ({"device": "tpu"}, ["device must be", "'tpu'"]),
        ({"tasks": [], "cca": None}, ["nothing to run"]),
    ],
)
def test_suite_errors_name_the_file_and_the_key(tmp_path, changes, expected):
    path = _suite(tmp_path, **changes)
    with pytest.raises(ConfigError) as err:
        runner.load_suite(path)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg, msg


def test_suite_reference_by_name_and_unknown_name():
    assert runner.resolve_suite_path(None) == runner.DEFAULT_SUITE
    assert runner.resolve_suite_path("superb-layerwise") == ROOT / "configs/suites/superb-layerwise.yaml"
    with pytest.raises(ConfigError, match="did you mean 'quick'"):
        runner.resolve_suite_path("quik")


def test_embedded_quick_suite_is_the_documented_job():
    suite = runner.load_suite(None)
    assert [u.spec for u in suite.zoo] == [
        "fbank", "randinit:hubert-small", "hf:layerbench/hubert-small-it2"]
    # the pre-training series: step 0 is the random twin, the others load from the package
    assert [c.spec for c in suite.series[0].checkpoints] == [
        "randinit:hubert-small", "hf:layerbench/hubert-small-it1-step350", "hf:layerbench/hubert-small-it1",
        "hf:layerbench/hubert-small-it2"]
    from upstreams.hf import shipped_models

    assert {c.spec.removeprefix("hf:") for c in suite.series[0].checkpoints[1:]} <= set(shipped_models())
    assert [t.task for t in suite.tasks] == ["pr", "asr", "ic", "slurp_scenario", "slurp_action", "ks"]
    assert all(t.preset == "quick" for t in suite.tasks)
    assert suite.cca.properties == ["mel", "phone", "word"]
    assert suite.synthetic.size == "small" and suite.synthetic.dir == Path("data/synth-small")
    assert suite.out == Path("runs/quick")
    # every task reads the synthetic root; CCA too
    assert {suite.corpus_for(runner.task_corpus(t.task)) for t in suite.tasks} == {Path("data/synth-small")}


def test_superb_zoo_lists_the_models_people_run():
    suite = runner.load_suite("superb-layerwise")
    specs = {u.spec for u in suite.zoo}
    for needed in ("hf:facebook/wav2vec2-base", "hf:facebook/wav2vec2-large-lv60", "hf:facebook/wav2vec2-large-xlsr-53",
                   "hf:facebook/hubert-base-ls960", "hf:facebook/hubert-large-ll60k", "hf:microsoft/wavlm-base-plus",
                   "hf:microsoft/wavlm-large", "hf:facebook/data2vec-audio-base", "s3prl:multires_hubert_base", "fbank"):
        assert needed in specs
    assert all(t.preset == "superb" for t in suite.tasks) and suite.cca.preset == "default"
    assert suite.synthetic is None and suite.corpora["librispeech"] == Path("/data/LibriSpeech")


def test_superb_zoo_s3prl_names_exist_in_installed_s3prl():
    """MR-HuBERT entries must name upstreams s3prl 0.4.18 really registers (read from its hubconf source)."""
    import importlib.util

    spec = importlib.util.find_spec("s3prl")
    hubconf = Path(spec.submodule_search_locations[0]) / "upstream" / "multires_hubert" / "hubconf.py"
    defined = hubconf.read_text()
    for up in runner.load_zoo("superb", "test"):
        if up.spec.startswith("s3prl:"):
            assert f"def {up.spec.split(':', 1)[1]}(" in defined, up.spec


def test_dry_run_plans_the_superb_suite_without_touching_data(capsys, tmp_path):
    rc = cli_main(["run", "superb-layerwise", "--dry-run", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0
    suite = runner.load_suite("superb-layerwise")
    n = len(suite.zoo) * (len(suite.tasks) + len(suite.cca.properties))
    assert f"= {n} units, 0 already done" in out
    assert "WavLM Large" in out and "cca:word" in out and "probe:slurp_action" in out
    assert f"{n} unit(s) would run" in out
    assert not (tmp_path / "o").exists()


def test_plan_per_seed_folders_and_overrides(tmp_path, synth_root):
    """Several seeds: each unit per seed in its own results folder; per-upstream overrides merge in."""
    path = _suite(
        tmp_path,
        zoo=[{"name": "FBANK", "spec": "fbank", "options": {"overrides": {"lr": 0.5}}}],
        tasks=[{"task": "ks", "preset": "quick", "overrides": {"steps": 7}}],
        corpora={"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}},
        seeds=[0, 1],
    )
    suite = runner.load_suite(path)
    units = runner.plan(suite)
    assert [(u.kind, u.name, u.seed) for u in units] == [
        ("probe", "ks", 0), ("cca", "phone", 0), ("probe", "ks", 1), ("cca", "phone", 1)]
    assert units[0].path == tmp_path / "out/results/seed0/probe/fbank__ks.json"
    assert units[2].path == tmp_path / "out/results/seed1/probe/fbank__ks__seed1.json"
    assert units[0].config["params"]["steps"] == 7 and units[0].config["params"]["lr"] == 0.5
    assert units[0].config["seed"] == 0 and units[2].config["seed"] == 1
    assert units[0].config_hash != units[2].config_hash
    assert not any(u.done for u in units)


# ----------------------------------------------------------------------------- running


def _tiny_suite(tmp_path: Path, synth_root: Path, out: Path) -> Path:
    """fbank on IC (few steps) + CCA-mel, and an upstream whose spec cannot load (its units fail)."""
    return _suite(
        tmp_path,
        name="tiny",
        zoo=[{"name": "FBANK", "spec": "fbank"}, {"name": "Broken", "spec": "nosuchfamily:model"}],
        tasks=[{"task": "ic", "preset": "quick",
                "overrides": {"steps": 20, "eval_every": 10, "cache_dir": str(tmp_path.parent / "pooled-cache")}}],
        cca={"properties": ["mel"], "preset": "quick", "overrides": {"mel": {"max_frames": 4000}}},
        corpora={"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}},
        out=str(out),
        device="cpu",
        compare={"mapping": {"ic": ["mel"]}, "top_ks": [1]},
    )


def _tables(out: Path) -> dict[str, str]:
    """The final tables of a run, with the run's own folder name blanked out."""
    files = ["leaderboard/leaderboard.csv", "leaderboard/leaderboard.md", "comparison/comparison.csv"]
    return {f: (out / f).read_text().replace(str(out), "<OUT>") for f in files}


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_interrupted_run_resumes_without_recomputing_and_matches(tmp_path_factory, synth_root, monkeypatch, capsys):
    from bench import layerwise_cca, probe

    base = tmp_path_factory.mktemp("resume")
    out_a, out_b = base / "A", base / "B"

    # A: straight through, through the CLI. The broken upstream's units fail, the rest finish.
    rc = cli_main(["run", str(_tiny_suite(base / "a", synth_root, out_a)), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1  # failures make the exit code non-zero
    assert "unknown upstream family 'nosuchfamily'" in captured.err
    assert captured.out.strip().splitlines()[-1].startswith(f"outputs: {out_a}")
    # The last lines: the comparator's aggregates, the headline table (at most 120 columns), where everything is.
    tail = captured.out.split("units: ")[1].strip().splitlines()
    assert tail[-1] == (f"outputs: {out_a} (comparison {out_a / 'comparison' / 'comparison.md'}; leaderboard "
                        f"{out_a / 'leaderboard' / 'index.html'}; results {out_a / 'results'}; run log {out_a / 'run.json'})")
    headline = tail[tail.index(next(line for line in tail if line.strip().startswith("IC ACC↑"))):-1]
    assert headline[3].split()[:2] == ["1", "FBANK"] and max(len(line) for line in tail[:-1]) <= 120
    assert "Not ranked (fewer than 3 layers): FBANK (one layer)." in tail
    assert (out_a / "results/probe/fbank__ic.json").is_file() and (out_a / "results/cca/fbank__mel.json").is_file()
    failures = runner.read_failures(out_a)
    assert sorted((f.upstream, f.unit_kind, f.unit) for f in failures) == [
        ("nosuchfamily:model", "cca", "mel"), ("nosuchfamily:model", "probe", "ic")]
    for f in failures:
        assert f.kind == "failure" and f.config_hash and f.seed == 0
        assert "nosuchfamily" in f.error and "Traceback" in f.traceback
    for f in ("leaderboard/index.html", "leaderboard/leaderboard.tex", "comparison/comparison.json", "run.json"):
        assert (out_a / f).is_file(), f

    # B: the same suite, interrupted (Ctrl-C) when it reaches the CCA unit, after the IC probe finished.
    suite_b = _tiny_suite(base / "b", synth_root, out_b)
    real_probe, real_cca = probe.run_probe, layerwise_cca.run_cca

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(layerwise_cca, "run_cca", interrupt)
    assert cli_main(["run", str(suite_b), "--no-progress"]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    ic_b = out_b / "results/probe/fbank__ic.json"
    assert ic_b.is_file() and not (out_b / "results/cca/fbank__mel.json").exists()
    before = _stamp(ic_b)

    # Rerun B: count what is really computed.
    calls: list[tuple[str, str, bool]] = []

    def counted_probe(upstream, task, *a, **kw):
        outcome = real_probe(upstream, task, *a, **kw)
        calls.append((upstream, task, outcome.skipped))
        return outcome

    def counted_cca(upstream, corpus, properties, *a, **kw):
        outcomes = real_cca(upstream, corpus, properties, *a, **kw)
        calls.extend((upstream, o.result.property, o.skipped) for o in outcomes)
        return outcomes

    monkeypatch.setattr(probe, "run_probe", counted_probe)
    monkeypatch.setattr(layerwise_cca, "run_cca", counted_cca)
    suite = runner.load_suite(suite_b)
    summary = runner.run_suite(suite, progress=False, echo=lambda _: None)
    status = {(r.unit.upstream.spec, r.unit.name): r.status for r in summary.reports}
    assert status == {("fbank", "ic"): "skipped", ("fbank", "mel"): "done",
                      ("nosuchfamily:model", "ic"): "failed", ("nosuchfamily:model", "mel"): "failed"}
    assert calls == [("fbank", "mel", False)]  # the finished IC unit was not even asked again
    assert _stamp(ic_b) == before  # ...and its file was not rewritten

    # The finished tables are identical to the uninterrupted run's.
    assert _tables(out_b) == _tables(out_a)
    a_ic = json.loads((out_a / "results/probe/fbank__ic.json").read_text())
    b_ic = json.loads(ic_b.read_text())
    assert a_ic["config_hash"] == b_ic["config_hash"] and a_ic["per_layer"] == b_ic["per_layer"]

    # A third run has nothing left but the failing units; the plan says so.
    assert cli_main(["run", str(suite_b), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "= 4 units, 2 already done" in out and "2 unit(s) would run" in out
    assert out.count("retry (failed before)") == 2


def test_failed_unit_is_retried_and_its_record_cleared_and_cca_properties_share_one_pass(tmp_path, synth_root,
                                                                                          monkeypatch):
    """Runner bookkeeping with stand-in unit functions (real planning, real result files)."""
    from bench import layerwise_cca, probe
    from bench.results import UnitOutcome, write_record

    suite = runner.load_suite(_suite(
        tmp_path, cca={"properties": ["mel", "phone", "word"], "preset": "quick"},
        corpora={"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}}))
    units = runner.plan(suite)
    probe_calls, cca_calls = [], []

    def fake_probe(upstream, task, corpus, **kw):
        probe_calls.append(task)
        if len(probe_calls) == 1:
            raise RuntimeError("out of memory (first attempt)")
        path, config, chash = probe.plan_probe(upstream, task, corpus, preset=kw["preset"], overrides=kw["overrides"],
                                               layers=kw["layers"], out_dir=kw["out_dir"], seed=kw["seed"])
        record = stand_in("probe", upstream, task, config, chash, kw["seed"])
        return UnitOutcome(write_record(path, record), False, record)

    def fake_cca(upstream, corpus, properties, **kw):
        cca_calls.append(list(properties))
        planned = layerwise_cca.plan_cca(upstream, corpus, properties, preset=kw["preset"], overrides=kw["overrides"],
                                         out_dir=kw["out_dir"], seed=kw["seed"])
        made = [(path, stand_in("cca", upstream, prop, config, chash, kw["seed"]))
                for prop, path, config, chash in planned]
        return [UnitOutcome(write_record(path, record), False, record) for path, record in made]

    monkeypatch.setattr(probe, "run_probe", fake_probe)
    monkeypatch.setattr(layerwise_cca, "run_cca", fake_cca)
    first = runner.execute(suite, units, progress=False, echo=lambda _: None)
    assert [(r.unit.name, r.status) for r in first] == [
        ("ks", "failed"), ("mel", "done"), ("phone", "done"), ("word", "done")]
    assert cca_calls == [["mel", "phone", "word"]]  # one upstream pass for all three properties
    (record,) = runner.read_failures(suite.out)
    assert record.error == "RuntimeError: out of memory (first attempt)" and record.task == "ks"

    again = runner.execute(suite, runner.plan(suite), progress=False, echo=lambda _: None)
    assert [(r.unit.name, r.status) for r in again] == [
        ("ks", "done"), ("mel", "skipped"), ("phone", "skipped"), ("word", "skipped")]
    assert probe_calls == ["ks", "ks"] and len(cca_calls) == 1
    assert runner.read_failures(suite.out) == []  # the retry succeeded: no stale failure left


# ----------------------------------------------------------------------------- tuned units


def test_tune_sections_plan_tuned_units(tmp_path, synth_root):
    """`tune:` per suite, task and upstream: `use: tuned` replaces the fixed-rate unit, `fixed` adds one
    beside it, `tune: false` on a zoo entry switches it off; settings merge suite < task < upstream."""
    corpora = {"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}}
    path = _suite(
        tmp_path,
        zoo=[{"name": "FBANK", "spec": "fbank", "options": {"tune": {"trials": 3}}},
             {"name": "MFCC", "spec": "mfcc", "options": {"tune": False}}],
        tasks=[{"task": "ks", "preset": "quick", "tune": {"stack": 2}}, {"task": "ic", "preset": "quick"}],
        tune={"trials": 6, "pruner": "none"}, cca=None, corpora=corpora,
    )
    suite = runner.load_suite(path)
    units = runner.plan(suite)
    assert [(u.upstream.name, u.kind, u.name) for u in units] == [
        ("FBANK", "tune", "ks"), ("FBANK", "tune", "ic"), ("MFCC", "probe", "ks"), ("MFCC", "probe", "ic")]
    ks = units[0]
    assert ks.path == tmp_path / "out/results/tune/fbank__ks.json"
    assert ks.config["tune"]["trials"] == 3 and ks.config["tune"]["stack"] == 2
    assert ks.config["tune"]["pruner"] == "none"
    assert units[1].config["tune"]["stack"] == 4  # the task-level stack applies to ks only
    assert suite.tune_storage == f"sqlite:///{tmp_path / 'out' / 'tune.db'}"

    fixed = runner.load_suite(_suite(tmp_path, tasks=[{"task": "ks", "preset": "quick"}], cca=None, corpora=corpora,
                                     tune={"use": "fixed", "storage": "journal:" + str(tmp_path / "j.log")}))
    units = runner.plan(fixed)
    assert [(u.kind, u.name) for u in units] == [("probe", "ks"), ("tune", "ks")]
    assert units[0].path == tmp_path / "out/results/probe/fbank__ks.json"
    assert units[1].path == tmp_path / "out/tune/tune/fbank__ks.json"  # outside results/: not compared
    assert units[1].config["params"]["cache_dir"] == str(tmp_path / "out/results/cache/pooled")
    assert fixed.tune_storage == "journal:" + str(tmp_path / "j.log")


@pytest.mark.parametrize("changes, expected", [
    ({"tune": {"trails": 2}}, ["tune", "unknown key 'trails'", "did you mean 'trials'"]),
    ({"tune": {"use": "best"}}, ["tune", "use must be one of tuned, fixed"]),
    ({"tasks": [{"task": "ks", "tune": "yes"}]}, ["tasks #1 (ks).tune must be true, false or a mapping", "got 'yes'"]),
    ({"zoo": [{"name": "F", "spec": "fbank", "options": {"tune": {"pruner": "asha"}}}]},
     ["(F).options.tune", "pruner must be one of"]),
])
def test_tune_section_errors_name_the_place(tmp_path, changes, expected):
    path = _suite(tmp_path, **changes)
    with pytest.raises(ConfigError) as err:
        runner.load_suite(path)
    for part in [str(path), *expected]:
        assert part in str(err.value), str(err.value)


@pytest.mark.slow
def test_suite_with_tuned_units_compares_the_tuned_results(tmp_path, synth_root):
    path = _suite(
        tmp_path,
        tasks=[{"task": "ks", "preset": "quick",
                "overrides": {"steps": 6, "eval_every": 3, "cache_dir": str(tmp_path / "cache")}}],
        tune={"trials": 2, "stack": 2, "pruner": "none"}, cca={"properties": ["mel"], "preset": "quick",
                                                              "overrides": {"mel": {"max_frames": 4000}}},
        corpora={"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}}, device="cpu",
        compare={"mapping": {"ks": ["mel"]}, "top_ks": [1]},
    )
    summary = runner.run_suite(runner.load_suite(path), progress=False, echo=lambda _: None)
    assert [(r.unit.kind, r.status) for r in summary.reports] == [("tune", "done"), ("cca", "done")]
    tuned = json.loads((tmp_path / "out/results/tune/fbank__ks.json").read_text())
    assert tuned["kind"] == "probe" and tuned["tuned"] is True and tuned["label"] == "FBANK"
    board = (tmp_path / "out/leaderboard/leaderboard.csv").read_text()
    assert "FBANK" in board and "ks" in board.lower()
    assert (tmp_path / "out/tune.db").is_file()
    again = runner.run_suite(runner.load_suite(path), progress=False, echo=lambda _: None)
    assert [r.status for r in again.reports] == ["skipped", "skipped"]


# ----------------------------------------------------------------------------- checkpoint series


@pytest.mark.slow
def test_series_scores_each_checkpoint_once_and_draws_a_layer_by_checkpoint_heatmap(tmp_path, synth_root):
    out = tmp_path / "out"
    path = _suite(
        tmp_path, name="series", device="cpu",
        tasks=[{"task": "ic", "preset": "quick", "overrides": {"steps": 10, "eval_every": 5}}],
        zoo=[{"name": "FBANK", "spec": "fbank"}],
        cca={"properties": ["mel"], "preset": "quick", "overrides": {"mel": {"max_frames": 3000}}},
        series=[{"name": "tiny run", "checkpoints": [
            {"label": "init", "spec": "randinit:hubert-large-tiny"},
            {"label": "other", "spec": "randinit:wav2vec2-large-tiny"},
            {"label": "fbank", "spec": "fbank"}]}],
        corpora={"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}}, out=str(out))
    suite = runner.load_suite(path)
    units = runner.plan(suite)
    # fbank's CCA is the zoo's unit (same config): planned once; the two other checkpoints get their own
    assert sorted((u.kind, u.upstream.spec, u.out_dir.name) for u in units) == [
        ("cca", "fbank", "results"), ("cca", "randinit:hubert-large-tiny", "tiny_run"),
        ("cca", "randinit:wav2vec2-large-tiny", "tiny_run"), ("probe", "fbank", "results")]
    summary = runner.run_suite(suite, progress=False, echo=lambda m: None)
    assert not summary.failures
    series = json.loads((out / "series/tiny_run/series.json").read_text())
    mel = series["scores"]["mel"]
    assert list(mel) == ["init", "other", "fbank"] and sorted(mel["init"]) == ["0", "1", "2", "3"]
    assert mel["fbank"] == {"0": json.loads((out / "results/cca/fbank__mel.json").read_text())["per_layer"][0]["score"]}
    assert mel["init"] != mel["other"]
    assert (out / "leaderboard/plots/series_tiny_run.png").stat().st_size > 5000
    # the leaderboard's tables stay the zoo's: series checkpoints are not rows
    assert "randinit" not in (out / "leaderboard/leaderboard.csv").read_text()
