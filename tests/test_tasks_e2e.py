"""Every task end to end on the tiny synthetic corpus with a tiny random-weight upstream."""

from __future__ import annotations

import json
import math

import pytest

import tasks
from bench.probe import run_probe
from test_probe_fakes import one_thread  # noqa: F401

UPSTREAM = "randinit:hubert-tiny"


@pytest.mark.slow
@pytest.mark.parametrize("task", tasks.names())
def test_task_end_to_end(task, synth_root, tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp(f"probe_{task}")
    outcome = run_probe(UPSTREAM, task, synth_root, out_dir=out, progress=False,
                        overrides={"steps": 4, "eval_every": 2, "batch_size": 8})
    res = json.loads(outcome.path.read_text())
    t = tasks.get(task)
    assert res["kind"] == "probe" and res["task"] == task and res["upstream"] == UPSTREAM
    assert res["metric"] == t.metric and res["higher_is_better"] == t.higher_is_better
    names = [l["name"] for l in res["upstream_info"]["layers"]]
    assert [r["name"] for r in res["per_layer"]] == names and len(names) == 4  # layer 0 + 3 transformer layers
    values = [r["dev"] for r in res["per_layer"]] + [r["test"] for r in res["per_layer"]]
    values += [res["weighted_sum"]["dev"], res["weighted_sum"]["test"]]
    for v in values:
        assert v is not None and math.isfinite(v)
        assert 0 <= v <= 100 if t.higher_is_better else v >= 0
    assert len(res["weighted_sum"]["weights"]) == 4
    assert all("diverged" not in r["flags"] and "untrained" not in r["flags"] for r in res["per_layer"])
    assert set(res["corpus"]["splits"]) == set(t.splits.as_dict().values())
    assert all(n > 0 for n in res["corpus"]["splits"].values())
    assert res["config"]["params"]["steps"] == 4 and res["config_hash"] and res["versions"]["torch"]
    assert set(res["timings"]) == {"extract_s", "train_s", "eval_s", "total_s"}
    assert res["best_steps"]["weighted_sum"] in (2, 4)
    # targets as SUPERB's: PR from the corpus's own lexicon, <eos>-terminated; ASR s3prl's 32 outputs
    want = {"pr": (74, "<eos>", "lexicon"), "asr": (32, "</s>", "characters (s3prl char.dict)")}.get(task)
    if want:
        assert (res["targets"]["outputs"], res["targets"]["eos"], res["targets"]["scheme"]) == want
    if task == "pr":
        assert res["targets"]["lexicon"][0]["path"].endswith("lexicon/synthetic-lexicon.txt")


@pytest.mark.slow
def test_cli_probe_prints_table_and_where(synth_root, tmp_path, capsys, one_thread):
    from bench.cli import main

    args = ["probe", "--upstream", "fbank", "--task", "ks", "--corpus", str(synth_root), "--out", str(tmp_path),
            "--set", "steps=6", "--set", "eval_every=3", "--layers", "all", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "<- best" in text and "weighted sum" in text
    assert f"result in {tmp_path / 'probe' / 'fbank__ks.json'}" in text
    assert main(args) == 0
    assert "already done, skipped" in capsys.readouterr().out
    assert main(args[:-1] + ["--set", "nonsense=1"]) == 2
    assert "unknown key 'nonsense'" in capsys.readouterr().err
