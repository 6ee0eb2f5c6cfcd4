"""CCA-guided layer selection: rank by CCA, probe only the top-K, report the pick and its cost."""

from __future__ import annotations

import json

import pytest

from bench import select
from bench.cli import main as cli_main
from bench.config import ConfigError


def test_cca_ranking_orders_by_score_with_ties_to_the_lower_layer():
    result = {"per_layer": [{"layer": 0, "score": 0.2}, {"layer": 1, "score": 0.7}, {"layer": 2, "score": 0.5},
                            {"layer": 3, "score": 0.7}, {"layer": 4, "score": None}]}
    assert select.cca_ranking(result) == [1, 3, 2, 0]


def test_best_layer_respects_the_metric_direction():
    rows = [{"layer": 0, "dev": 30.0, "test": 31.0}, {"layer": 1, "dev": 20.0, "test": 25.0},
            {"layer": 2, "dev": 20.0, "test": 19.0}, {"layer": 3, "dev": None, "test": 1.0}]
    assert select.best_layer({"higher_is_better": False, "per_layer": rows})["layer"] == 1  # PER: lowest dev, tie -> lower
    assert select.best_layer({"higher_is_better": True, "per_layer": rows})["layer"] == 0
    with pytest.raises(ValueError, match="no per-layer dev scores"):
        select.best_layer({"per_layer": [{"layer": 0, "dev": None}]})


def test_property_for_task_follows_the_comparator_mapping():
    assert select.property_for_task("ic") == "word"
    assert select.property_for_task("pr") == "phone"
    with pytest.raises(ConfigError, match="no CCA property is mapped to task 'xx'"):
        select.property_for_task("xx")


def test_select_probes_only_the_cca_top_k_and_compares_with_the_full_sweep(tmp_path, synth_root, monkeypatch, capsys):
    from bench import layerwise_cca, probe

    spec, results, out = "randinit:wav2vec2-tiny", tmp_path / "results", tmp_path / "select"
    probe_over = {"steps": 20, "eval_every": 10, "cache_dir": str(tmp_path / "cache")}
    cca_over = {"mel": {"max_frames": 4000}}
    # A finished suite: CCA-mel and the full per-layer sweep of IC.
    (cca_out,) = layerwise_cca.run_cca(spec, synth_root, ["mel"], preset="quick", overrides=cca_over,
                                       out_dir=results, device="cpu", progress=False)
    full = probe.run_probe(spec, "ic", synth_root, overrides=probe_over, out_dir=results, device="cpu",
                           progress=False).result

    cca_calls = []
    monkeypatch.setattr(layerwise_cca, "run_cca", lambda *a, **k: cca_calls.append(a))
    argv = ["select", "--upstream", spec, "--task", "ic", "--corpus", str(synth_root), "--top-k", "2",
            "--property", "mel", "--cca-preset", "quick", "--out", str(out), "--results", str(results),
            "--device", "cpu", "--no-progress", "--cca-set", "mel.max_frames=4000"]
    argv += [f"--set={k}={v}" for k, v in probe_over.items()]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert cca_calls == []  # the finished CCA result was reused, not recomputed

    report_path = out / "reports" / "randinit_wav2vec2-tiny__ic.json"
    rep = json.loads(report_path.read_text())
    scores = {r["layer"]: r["score"] for r in cca_out.result["per_layer"]}
    top2 = sorted(sorted(scores, key=lambda l: (-scores[l], l))[:2])
    assert rep["probed_layers"] == top2 and rep["cca_result"] == str(cca_out.path) and rep["cca_reused"]

    guided = json.loads((out / "guided" / "probe" / "randinit_wav2vec2-tiny__ic.json").read_text())
    assert [r["layer"] for r in guided["per_layer"]] == top2
    dev = {r["layer"]: r["dev"] for r in guided["per_layer"]}
    assert rep["chosen_layer"] == max(top2, key=lambda l: (dev[l], -l))  # accuracy: higher is better
    assert f"chosen layer {rep['chosen_layer']}" in printed and str(report_path) in printed

    n = len(full["per_layer"])
    assert (rep["heads_trained"], rep["heads_full_sweep"]) == (2, n + 1)
    assert rep["head_fraction"] == pytest.approx(2 / (n + 1))
    full_dev = {r["layer"]: r["dev"] for r in full["per_layer"]}
    full_test = {r["layer"]: r["test"] for r in full["per_layer"]}
    best = max(full_dev, key=lambda l: (full_dev[l], -l))
    assert rep["full_best_layer"] == best and rep["best_in_probed"] == (best in top2)
    assert rep["regret"] == pytest.approx(full_test[best] - full_test[rep["chosen_layer"]])
    assert rep["full_sweep_seconds"] == pytest.approx(full["timings"]["total_s"])
    assert rep["time_fraction"] == pytest.approx((rep["cca_seconds"] + rep["probe_seconds"]) / rep["full_sweep_seconds"],
                                                 rel=1e-9)
