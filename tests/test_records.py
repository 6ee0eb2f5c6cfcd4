"""Typed records: one to_json / from_json per file kind, schema version and kind checked, and the
files LayerBench wrote before the records existed (schema version 1) still read, unchanged."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench import records
from bench.records import (CCALayer, CCAResult, ClustersResult, FailureRecord, LayerScore, ProbeResult, RunLog,
                           LedgerUnit, RunUnitLog, SchemaError, SeriesCheckpoint, SeriesResult, SlurmLedger, SuiteMark,
                           WeightedSumScore)
from bench.results import is_done, load_results, read_record, write_record

V1 = Path(__file__).parent / "data" / "records_v1"  # written by `layerbench probe/tune/cca/run` before bench/records.py


def _probe(**kw) -> ProbeResult:
    return ProbeResult(
        upstream="randinit:hubert-tiny", label="HuBERT", task="asr", metric="wer", higher_is_better=False,
        targets={"vocabulary": 30}, per_layer=[
            LayerScore(0, "layer0", 40.0, 41.5, ["not_converged"], extra={"test_cer": 20.0}),
            LayerScore(1, "layer1", None, None, ["diverged", "untrained"], extra={"test_cer": None})],
        weighted_sum=WeightedSumScore(35.0, 36.0, [0.25, 0.75], [0, 1], ["layer0", "layer1"], layer_norm=True,
                                      repeat=[1, 2], extra={"test_cer": 18.0}),
        corpus={"path": "/c", "kind": "librispeech"}, upstream_info={"revision": None, "num_params": 10},
        config={"task": "asr", "seed": 3}, config_hash="abc", seed=3, timings={"total_s": 2.5}, device="cpu",
        best_steps={"layer0": 4, "layer1": None}, diverged_at={"layer1": 1}, skipped_steps={}, **kw)


def _tuned() -> ProbeResult:
    return ProbeResult(
        upstream="fbank", task="ks", metric="accuracy", higher_is_better=True, tuned=True,
        per_layer=[LayerScore(0, "fbank", 60.0, 58.0, ["lr_at_edge"], lr=1e-3), LayerScore(1, "x", None, None,
                                                                                            ["untrained"])],
        weighted_sum=WeightedSumScore(61.0, 59.0, [], [], lr=2e-3), tune={"trials_per_head": 2, "trials": {}},
        config={"task": "ks"}, config_hash="t", seed=0)


def _cca() -> CCAResult:
    return CCAResult(upstream="fbank", property="phone", per_layer=[
        CCALayer(0, "fbank", 0.5, stride=160, extra={"score_std": 0.01, "splits": [{"k": 12}], "n_samples": 400})],
        details={"n_classes": 6}, config={"property": "phone"}, config_hash="c", seed=0,
        timings={"pass_s": 1.0, "pass_shared_with": ["mel", "phone"], "total_s": 2.0}, device="cpu")


def _clusters() -> ClustersResult:
    return ClustersResult(upstreams=[{"spec": "fbank", "label": "fbank", "revision": None}], unit="segment",
                          label_tier="phone", k=7, n_labels=6, n_samples=60, label_counts={"a": 30, "b": 30},
                          sampling={"n_utterances": 5}, per_layer=[{"upstream": "fbank", "layer": 0, "views": {}}],
                          pairs=[], plots={"ami_by_layer": "x/ami.png"}, config={"kind": "clusters"}, config_hash="k",
                          seed=0, device="cpu", timings={"total_s": 1.0})


def _failure(unit_kind: str = "cca") -> FailureRecord:
    return FailureRecord(unit_kind=unit_kind, upstream="bad:model", unit="mel" if unit_kind == "cca" else "ic",
                         error="ValueError: boom", config={"x": 1}, config_hash="f", seed=0, label="Bad",
                         traceback="Traceback ...", result_path="/r.json", time="2026-01-01T00:00:00Z")


def _run_log() -> RunLog:
    return RunLog(suite="s", source="s.yaml", seeds=[0, 1], outputs={"comparison_seed0": {"json": "/c.json"}}, units=[
        RunUnitLog("fbank", "FBANK", "probe", "ic", 0, "done", 1.5, "/r/ic.json", "h1"),
        RunUnitLog("bad", "Bad", "cca", "mel", 0, "failed", 0.1, "/r/mel.json", "h2", "ValueError: x", "/f.json")])


def _series() -> SeriesResult:
    return SeriesResult(name="hubert", seed=0, preset="quick", properties=["mel", "phone"],
                        checkpoints=[SeriesCheckpoint("init", "randinit:hubert-small", {"mel": "/r/init_mel.json"}),
                                     SeriesCheckpoint("it1", "hf:layerbench/hubert-small-it1")],
                        scores={"mel": {"init": {0: 0.9, 1: 0.5}, "it1": None}, "phone": {"init": {}, "it1": None}})


RECORDS = [_probe(), _tuned(), _cca(), _clusters(), _failure("cca"), _failure("probe"), _failure("tune"), _series(),
           SuiteMark(suite="s", source="/s.yaml", device="auto", seeds=[0], corpora={"fsc": "/fsc"}),
           SlurmLedger(arrays=[{"array": "7", "tasks": 1}], units={"u": LedgerUnit("7_0", 1.5, "/l.err")}), _run_log()]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r.kind}-{getattr(r, 'unit_kind', '')}")
def test_every_record_round_trips_through_its_file(record, tmp_path):
    path = write_record(tmp_path / "r.json", record)
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == records.SCHEMA_VERSION and on_disk["kind"] == record.kind
    assert on_disk["versions"]["layerbench"]  # stamped on write
    back = read_record(path, type(record))
    assert back == record and back.path == str(path)
    assert back.to_json() == on_disk


def test_optional_parts_are_written_only_where_the_writer_has_them():
    probe, tuned = _probe().to_json(), _tuned().to_json()
    assert "tuned" not in probe and "tune" not in probe and "lr" not in probe["per_layer"][0]
    assert probe["per_layer"][0]["test_cer"] == 20.0 and probe["weighted_sum"]["repeat"] == [1, 2]
    assert tuned["tuned"] is True and "targets" not in tuned and "best_steps" not in tuned
    assert tuned["per_layer"][1]["lr"] is None  # a tuned result names every head's rate, untrained ones too
    assert _failure("cca").to_json()["property"] == "mel" and _failure("tune").to_json()["task"] == "ic"


def test_wrong_schema_version_or_kind_names_the_file_and_what_to_do(tmp_path):
    path = write_record(tmp_path / "probe" / "fbank__ic.json", _probe())
    data = json.loads(path.read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**data, "schema_version": 2, "versions": {"layerbench": "9.0"}}))
    with pytest.raises(SchemaError, match=rf"{newer}.*schema version 2 \(written by LayerBench 9.0\).*reads version 1"
                                          r".*rerun the unit with --force"):
        read_record(newer, ProbeResult)
    with pytest.raises(SchemaError, match=rf"{path} is a 'probe' record where a 'cca' record was expected: point the "
                                          "command at a cca file"):
        read_record(path, CCAResult)
    with pytest.raises(SchemaError, match=rf"{path} is a 'probe' record where a 'failure' record was expected"):
        read_record(path, FailureRecord)
    for text, why in (("{not json", "is not valid JSON"), ('{"per_layer": []}', r"no 'kind' field"),
                      ('{"kind": "probe", "task": "ic"}', "lacks field 'metric'"),
                      ('{"kind": "lattice"}', "unknown kind 'lattice'")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(SchemaError, match=rf"{bad}.*{why}"):
            read_record(bad)
    # A results folder holding a file of another version stops the readers, and resuming over it too.
    shutil.copy(newer, tmp_path / "probe" / "newer.json")
    with pytest.raises(SchemaError, match="newer.json.*schema version 2"):
        load_results(tmp_path / "probe")
    with pytest.raises(SchemaError, match="schema version 2"):
        is_done(newer, data["config_hash"])
    assert is_done(path, data["config_hash"]) and not is_done(path, "other") and not is_done(tmp_path / "no.json", "x")


@pytest.mark.parametrize("name,kind", [("probe_ks.json", ProbeResult), ("probe_asr.json", ProbeResult),
                                       ("tune_ks.json", ProbeResult), ("cca_mel.json", CCAResult),
                                       ("cca_phone.json", CCAResult), ("failure_probe.json", FailureRecord),
                                       ("failure_cca.json", FailureRecord)])
def test_schema_version_1_files_from_before_read_and_write_back_unchanged(name, kind):
    """Same keys, same order, same values: the records changed the code, not the files."""
    path = V1 / name
    data = json.loads(path.read_text())
    rec = read_record(path, kind)
    assert rec.to_json() == data and list(rec.to_json()) == list(data)
    if isinstance(rec, ProbeResult):
        assert all(list(ls.to_json(rec.tuned)) == list(e) for ls, e in zip(rec.per_layer, data["per_layer"]))


def test_v1_files_carry_what_the_readers_use():
    asr = read_record(V1 / "probe_asr.json", ProbeResult)
    assert asr.metric == "wer" and not asr.higher_is_better and [ls.layer for ls in asr.per_layer] == [0, 1, 2, 3]
    assert asr.per_layer[0].extra["test_cer"] == 100.0 and asr.weighted_sum.repeat == [1, 1, 1, 1]
    assert set(asr.ws_weights) == {0, 1, 2, 3} and math.isclose(sum(asr.ws_weights.values()), 1.0, rel_tol=1e-6)
    tuned = read_record(V1 / "tune_ks.json", ProbeResult)
    assert tuned.tuned and tuned.per_layer[0].lr > 0 and tuned.weighted_sum.lr > 0 and tuned.tune["trials_per_head"] == 2
    phone = read_record(V1 / "cca_phone.json", CCAResult)
    assert list(phone.scores) == [0, 1, 2, 3] and phone.names[3] == "layer3" and phone.wall_seconds > 0
    fail = read_record(V1 / "failure_cca.json", FailureRecord)
    assert (fail.unit_kind, fail.unit, fail.task, fail.property) == ("cca", "mel", None, "mel")
    assert "unknown upstream family 'nosuchfamily'" in fail.error
    # The run log of before had no schema_version (read as version 1); written again it gains one.
    log = read_record(V1 / "run.json", RunLog)
    assert [(u.unit_kind, u.name, u.status) for u in log.units] == [("probe", "ks", "failed"), ("cca", "mel", "failed")]
    assert log.units[0].failure_record.endswith("nosuchfamily_model__probe-ks__seed0.json")
    data = json.loads((V1 / "run.json").read_text())
    assert log.to_json() == {"schema_version": 1, **data}
    mark = read_record(V1 / "suite.json", SuiteMark)  # the same for the suite mark of a run folder
    assert (mark.suite, mark.seeds, mark.synthetic_dir) == ("v1-records", [0], "/tmp/records-v1/tiny")
    assert mark.to_json() == {"schema_version": 1, **json.loads((V1 / "suite.json").read_text())}


def test_series_file_of_before_reads_with_integer_layers(tmp_path):
    """series.json had no schema_version before; its layer keys are strings on disk, integers in the record."""
    old = {"kind": "series", "name": "hubert", "seed": 0, "preset": "quick", "properties": ["mel"],
           "checkpoints": [{"label": "init", "spec": "randinit:hubert-small", "results": {"mel": "/r.json"}}],
           "scores": {"mel": {"init": {"0": 0.9, "1": 0.5}}}}
    (tmp_path / "series.json").write_text(json.dumps(old))
    rec = read_record(tmp_path / "series.json", SeriesResult)
    assert rec.scores["mel"]["init"] == {0: 0.9, 1: 0.5} and rec.layers == [0, 1] and rec.checkpoints[0].label == "init"
    assert rec.to_json() == {"schema_version": 1, **old}


def test_load_results_reads_every_result_kind_and_passes_over_other_files(tmp_path):
    for name in ("probe_ks.json", "cca_mel.json", "failure_probe.json", "run.json"):
        shutil.copy(V1 / name, tmp_path / name)
    write_record(tmp_path / "clusters.json", _clusters())
    (tmp_path / "suite.json").write_text(json.dumps({"kind": "suite", "suite": "x"}))
    (tmp_path / "notes.json").write_text("[1, 2]")
    got = load_results(tmp_path)
    assert sorted(type(r).__name__ for r in got) == ["CCAResult", "ClustersResult", "FailureRecord", "ProbeResult"]
    assert all(Path(r.path).parent == tmp_path for r in got)


def test_probe_scores_follow_the_metric_direction_and_leave_diverged_layers_out():
    rec = _probe()
    assert rec.scores("dev") == {0: 60.0} and rec.scores("test") == {0: 58.5}  # WER e -> 100 - e
    assert rec.ws_score == 64.0 and rec.to_native(64.0) == 36.0 and rec.wall_seconds == 2.5
    nan = records.from_json({**rec.to_json(), "per_layer": [{"layer": 0, "dev": float("nan"), "test": math.inf}]})
    assert nan.per_layer[0].dev is None and nan.scores("test") == {}
