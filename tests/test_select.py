"""CCA-guided layer selection: rank by CCA, probe only the top-K, report the pick and its cost."""

from __future__ import annotations

import json

import pytest

from bench import select
from bench.cli import main as cli_main
from bench.config import ConfigError


def test_select_and_compare_agree_on_the_best_layers(tmp_path, monkeypatch):
    """select reads the same records and uses the comparator's ranking and best-layer rules: on one
    set of results both pick the same CCA layer, the same best dev layer (ties to the lower layer,
    a diverged head left out, PER lower is better) and the same regret."""
    from dataclasses import replace

    from bench import compare, layerwise_cca, probe
    from bench.results import write_record
    from results_fixtures import cca_result, probe_result

    corpus, results, out = tmp_path / "corpus", tmp_path / "results", tmp_path / "select"
    # PER by layer: layer 0 diverged (its NaN would otherwise look best), layers 2 and 3 tie on dev.
    full_dev, full_test = [5.0, 30.0, 20.0, 20.0, 35.0], [5.0, 31.0, 22.0, 19.0, 36.0]
    cca_scores = [0.9, 0.1, 0.4, 0.7, 0.3]  # ranking 0, 3, 2, 4, 1
    (_, cca_path, cfg, chash), = layerwise_cca.plan_cca("fbank", corpus, ["phone"], out_dir=results)
    cca = replace(cca_result("fbank", "phone", cca_scores), config=cfg, config_hash=chash)
    write_record(cca_path, cca)
    full_path, pcfg, phash = probe.plan_probe("fbank", "pr", corpus, out_dir=results)
    full = replace(probe_result("fbank", "pr", full_test, dev=full_dev, diverged=[0]), config=pcfg, config_hash=phash)
    write_record(full_path, full)

    def guided_probe(upstream, task, corpus, *, layers, out_dir, **kw):  # the top-3 layers, scored as in the sweep
        rows = [(l, full_dev[l], full_test[l]) for l in layers]
        rec = probe_result(upstream, task, [t for _, _, t in rows], dev=[d for _, d, _ in rows],
                           diverged=[i for i, (l, _, _) in enumerate(rows) if l == 0])
        for ls, (l, _, _) in zip(rec.per_layer, rows):
            ls.layer = l
        rec.weighted_sum = None
        return probe.UnitOutcome(write_record(tmp_path / "guided.json", rec), False, rec)

    monkeypatch.setattr(probe, "run_probe", guided_probe)
    sel, _ = select.select_layer("fbank", "pr", corpus, 3, property="phone", out_dir=out, results_dir=results,
                                 progress=False)
    comp = compare.compare([full, cca], {"pr": ["phone"]}, top_ks=(3,))
    (pair,) = comp.pairs
    assert sel.cca_ranking == pair.cca_ranking == [0, 3, 2, 4, 1]
    assert sel.probed_layers == [0, 2, 3]
    assert sel.full_best_layer == pair.best_layer == 2  # dev tie 2/3 -> the lower layer; diverged 0 left out
    assert sel.chosen_layer == pair.guided[0].layer == 2 and sel.chosen_dev == 20.0 and sel.chosen_test == 22.0
    assert sel.regret == pair.guided[0].regret == 0.0 and sel.best_in_probed
    assert sel.full_sweep_seconds == 12.5  # timings.total_s, the one key the writers write


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
    scores = cca_out.result.scores
    top2 = sorted(sorted(scores, key=lambda l: (-scores[l], l))[:2])
    assert rep["probed_layers"] == top2 and rep["cca_result"] == str(cca_out.path) and rep["cca_reused"]

    guided = json.loads((out / "guided" / "probe" / "randinit_wav2vec2-tiny__ic.json").read_text())
    assert [r["layer"] for r in guided["per_layer"]] == top2
    dev = {r["layer"]: r["dev"] for r in guided["per_layer"]}
    assert rep["chosen_layer"] == max(top2, key=lambda l: (dev[l], -l))  # accuracy: higher is better
    assert f"chosen layer {rep['chosen_layer']}" in printed and str(report_path) in printed

    n = len(full.per_layer)
    assert (rep["heads_trained"], rep["heads_full_sweep"]) == (2, n + 1)
    assert rep["head_fraction"] == pytest.approx(2 / (n + 1))
    full_dev = {r.layer: r.dev for r in full.per_layer}
    full_test = {r.layer: r.test for r in full.per_layer}
    best = max(full_dev, key=lambda l: (full_dev[l], -l))
    assert rep["full_best_layer"] == best and rep["best_in_probed"] == (best in top2)
    assert rep["regret"] == pytest.approx(full_test[best] - full_test[rep["chosen_layer"]])
    assert rep["full_sweep_seconds"] == pytest.approx(full.timings["total_s"])
    assert rep["time_fraction"] == pytest.approx((rep["cca_seconds"] + rep["probe_seconds"]) / rep["full_sweep_seconds"],
                                                 rel=1e-9)
