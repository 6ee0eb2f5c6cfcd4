"""Comparator: known answers on results built so the right numbers follow by construction."""

from __future__ import annotations

import csv
import json
import re

import pytest

from bench.cli import main as cli_main
from bench.compare import compare, load_compare_config, parse_results, rank_correlation, write_comparison
from bench.config import ConfigError
from bench.results import load_results
from results_fixtures import (
    DEMO_ZOO, FBANK, HUBERT, cca_result, failure_result, probe_result, realistic_suite, write_all, zoo_suite,
)

MAPPING = {"pr": ["phone", "word"], "ic": ["word"]}


def test_monotone_cca_gives_rho_one_top1_hit_zero_regret():
    comp = compare([probe_result("u", "ic", [10, 20, 30, 40]), cca_result("u", "word", [0.1, 0.2, 0.3, 0.4])], MAPPING)
    (p,) = comp.pairs
    assert p.rho_cca == pytest.approx(1.0) and p.tau_cca == pytest.approx(1.0)
    assert p.best_layer == 3 and p.recommended_layer == 3
    assert p.top_k_hit == {1: True, 3: True, 6: True}
    assert p.regret == pytest.approx(0.0)


def test_reversed_cca_gives_rho_minus_one_and_regret():
    comp = compare([probe_result("u", "ic", [10, 20, 30, 40]), cca_result("u", "word", [0.4, 0.3, 0.2, 0.1])], MAPPING)
    (p,) = comp.pairs
    assert p.rho_cca == pytest.approx(-1.0) and p.tau_cca == pytest.approx(-1.0)
    assert p.recommended_layer == 0 and p.regret == pytest.approx(30.0)
    assert p.top_k_hit[1] is False and p.top_k_hit[3] is False and p.top_k_hit[6] is True


def test_error_rate_becomes_100_minus_error():
    # PER 20 at layer 1 is the best layer; its score is 80, the weighted sum PER 30 -> 70.
    comp = compare([probe_result("u", "pr", [50, 20, 40], ws_test=30.0), cca_result("u", "phone", [0.1, 0.5, 0.2])], {"pr": ["phone"]})
    (p,) = comp.pairs
    assert p.best_layer == 1 and p.best_test == pytest.approx(80.0)
    assert p.weighted_sum_test == pytest.approx(70.0)
    assert p.best_minus_ws == pytest.approx(10.0)
    assert p.rho_cca == pytest.approx(1.0)


def test_best_layer_chosen_on_dev_not_test():
    # Test favours layer 0, dev favours layer 2: recommendation/regret use the dev choice.
    comp = compare([probe_result("u", "ic", test=[90, 50, 80], dev=[60, 50, 85]), cca_result("u", "word", [0.1, 0.2, 0.9])], MAPPING)
    (p,) = comp.pairs
    assert p.best_layer == 2 and p.best_layer_by_test == 0
    assert p.best_test == pytest.approx(80.0) and p.regret == pytest.approx(0.0)


def test_constant_and_diverged_are_nan_safe():
    const = compare([probe_result("u", "ic", [10, 20, 30]), cca_result("u", "word", [0.5, 0.5, 0.5])], MAPPING)
    (p,) = const.pairs
    assert p.rho_cca is None and p.tau_cca is None
    assert any("constant" in n for n in p.notes)
    # Layer 1 diverged (NaN metrics): it is dropped, the rest are perfectly ordered.
    div = compare([probe_result("u", "ic", [10, 99, 30, 40], diverged=[1]), cca_result("u", "word", [0.1, 0.0, 0.3, 0.4])], MAPPING)
    (q,) = div.pairs
    assert q.n_layers == 3 and q.rho_cca == pytest.approx(1.0)
    assert any("diverged" in n for n in q.notes)
    # Nothing in the JSON is NaN.
    text = json.dumps(div.to_dict(), allow_nan=False)
    assert "diverged" in text


def test_rank_correlation_matches_hand_computation():
    rho, tau, why = rank_correlation([1, 2, 3, 4, 5], [1, 3, 5, 4, 2])
    assert why is None
    assert rho == pytest.approx(1 - 6 * 14 / 120)  # sum of squared rank differences = 14
    assert tau == pytest.approx((6 - 4) / 10)  # 6 concordant, 4 discordant pairs
    assert rank_correlation([1.0], [2.0])[0] is None


def test_realistic_suite_aggregates(tmp_path):
    write_all(tmp_path, realistic_suite())
    comp = compare(load_results(tmp_path))
    assert {(p.display, p.task, p.property) for p in comp.pairs} == {
        ("HuBERT tiny", "pr", "phone"), ("HuBERT tiny", "pr", "word"), ("HuBERT tiny", "ic", "word"),
        ("fbank", "pr", "phone"), ("fbank", "pr", "word"),
    }
    assert comp.pair(HUBERT, "pr", "word").rho_cca == pytest.approx(0.3)
    assert comp.pair(HUBERT, "ic", "word").regret == pytest.approx(5.0)
    assert comp.pair(FBANK, "pr", "phone").regret == pytest.approx(20.0)
    phone, word, weights = comp.aggregate("phone"), comp.aggregate("word"), comp.aggregate("weights")
    assert phone.mean_rho == pytest.approx(0.0)  # (-1 + 1) / 2
    assert word.mean_rho == pytest.approx((1 + 0.3 + 0.9) / 3)
    assert weights.pairs == 3 and weights.mean_rho == pytest.approx((-1 + 1 + 0.9) / 3)
    assert phone.top_k_hit_rate == {1: 0.5, 3: 0.5, 6: 1.0}
    assert word.top_k_hit_rate[1] == pytest.approx(1 / 3) and word.top_k_hit_rate[3] == 1.0
    assert phone.mean_regret == pytest.approx(10.0) and word.mean_regret == pytest.approx(20 / 3)
    assert comp.single_vs_ws.pairs == 3 and comp.single_vs_ws.single_better_or_equal == 3
    assert comp.single_vs_ws.mean_difference == pytest.approx(7 / 3)
    # Guided search with k=3 on fbank/phone probes layers 0-2 only: finds layer 2 (PER 40 -> 60), regret 10.
    g3 = next(g for g in comp.pair(FBANK, "pr", "phone").guided if g.k == 3)
    assert (g3.layer, g3.regret, g3.probed, g3.total) == (2, pytest.approx(10.0), 3, 5)
    assert g3.saved_fraction == pytest.approx(0.4)
    assert [f.error for f in comp.failures] == ["RuntimeError: CUDA out of memory"]
    assert comp.recommended(HUBERT, "pr").property == "phone"


def test_write_and_cli(tmp_path, capsys):
    res = write_all(tmp_path / "results", realistic_suite())
    paths = write_comparison(compare(load_results(res)), tmp_path / "direct")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 5 and float(next(r for r in rows if r["property"] == "phone" and r["upstream"] == FBANK)["spearman_cca"]) == pytest.approx(-1.0)
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(res), "--out", str(out), "--set", "top_k=[1,2]"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^CCA-word\s+3\s+0\.73\s", printed, re.M) and "hit@2" in printed and "CUDA out of memory" in printed
    assert str(out) in printed.strip().splitlines()[-1] and "| HuBERT tiny |" not in printed  # pairs: in the file
    assert "| HuBERT tiny | pr | phone | 5 | 1.00 |" in (out / "comparison.md").read_text()
    data = json.loads((out / "comparison.json").read_text())
    assert data["top_k"] == [1, 2]
    assert (out / "comparison.csv").read_text().count("\n") == 6


def test_config_and_errors(tmp_path, capsys):
    cfg = load_compare_config()
    assert cfg.mapping["ks"] == ["word"] and cfg.mapping["pr"] == ["phone", "word"] and cfg.top_ks == (1, 3, 6)
    user = tmp_path / "c.yaml"
    user.write_text("mapping:\n  ic: [mel]\n")
    assert load_compare_config(user).mapping == {"ic": ["mel"]}
    assert load_compare_config(overrides={"mapping": {"ks": ["phone"]}}).mapping["ks"] == ["phone"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("top_k: [0]\n")
    with pytest.raises(ConfigError, match="top_k"):
        load_compare_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("mapings: {}\n")
    with pytest.raises(ConfigError, match="mapings"):
        load_compare_config(typo)
    # Duplicate units name both files.
    a, b = probe_result("u", "ic", [1, 2]), probe_result("u", "ic", [1, 2])
    a.path, b.path = "one.json", "two.json"
    with pytest.raises(ValueError, match="one.json.*two.json"):
        parse_results([a, b])
    assert cli_main(["compare", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_failure_superseded_by_success_is_dropped():
    rs = parse_results([failure_result("u", "ic", "boom"), failure_result("u", "ks", "bang"), probe_result("u", "ic", [1, 2])])
    assert [f.error for f in rs.failures] == ["bang"]


def test_missing_cca_is_noted_not_fatal():
    comp = compare([probe_result("u", "ks", [60, 70])], None)
    assert comp.pairs == [] and any("no CCA-word" in n for n in comp.notes)
    assert "No (upstream, task, property) pair" in comp.to_markdown()
    assert comp.single_vs_ws.pairs == 0 and comp.single_vs_ws.mean_difference is None


def test_report_leaves_out_one_layer_upstreams_once(tmp_path):
    # The demo's shape: FBANK and MFCC have one layer, three upstreams have five; six tasks, CCA-mel/phone/word.
    comp = compare(zoo_suite(DEMO_ZOO))
    ranked = {p.display for p in comp.ranked_pairs}
    assert ranked == {"wav2vec2-tiny (rand)", "HuBERT-tiny (rand)", "WavLM-tiny (rand)"}
    assert {p.display for p in comp.pairs if not p.ranked} == {"FBANK", "MFCC"}
    assert comp.not_ranked() == ["FBANK (one layer)", "MFCC (one layer)"]
    # Aggregates average ranked pairs only: phone maps PR and ASR, word all six tasks, 3 upstreams each.
    assert (comp.aggregate("phone").pairs, comp.aggregate("word").pairs, comp.aggregate("weights").pairs) == (6, 18, 18)
    assert comp.single_vs_ws.pairs == 18
    md = comp.to_markdown()
    assert "| FBANK |" not in md and "| MFCC |" not in md and "undefined" not in md
    assert md.count("FBANK") == 1 and "Not ranked (fewer than 3 layers): FBANK (one layer), MFCC (one layer)." in md
    pair_rows = [line for line in md.splitlines() if line.startswith("| ") and " | pr | " in line]
    assert len(pair_rows) == 6  # 3 ranked upstreams x (phone, word)
    paths = write_comparison(comp, tmp_path)
    assert len(list(csv.DictReader(paths["csv"].open()))) == len(comp.ranked_pairs) == 24
    data = json.loads(paths["json"].read_text())
    assert len(data["pairs"]) == 40 and sum(p["ranked"] for p in data["pairs"]) == 24
    assert data["not_ranked"] == ["FBANK (one layer)", "MFCC (one layer)"]
    assert max(len(line) for line in paths["text"].read_text().splitlines()) <= 120


def test_two_layer_pair_and_constant_scores_are_summarised_not_listed():
    comp = compare([
        probe_result("two", "ic", [10, 20], label="Two"), cca_result("two", "word", [0.1, 0.2], label="Two"),
        probe_result("flat", "ic", [10, 20, 30], label="Flat"), cca_result("flat", "word", [0.5, 0.5, 0.5], label="Flat"),
        probe_result("flat", "ks", [10, 20, 30], label="Flat"), cca_result("flat", "phone", [0.1, 0.2, 0.3], label="Flat"),
    ], {"ic": ["word"], "ks": ["word", "phone"]})
    assert comp.not_ranked() == ["Two (2 layers)"]
    # A 2-layer rho of +1 does not enter the mean; the flat CCA-word pairs are ranked but undefined.
    assert comp.aggregate("word").pairs == 2 and comp.aggregate("word").defined == 0
    notes = comp.grouped_notes()
    assert notes == ["CCA rank correlation undefined: CCA scores are constant across layers: Flat / ic / word, "
                     "Flat / ks / word",
                     "weight rank correlation undefined: layer weight scores are constant across layers: "
                     "Flat / ic, Flat / ks"]
    # A task flat over layers: one note per (upstream, task) whatever the predictor; many places are counted per task.
    flat = [r for i in range(7) for r in (probe_result(f"u{i}", "ks", [50, 50, 50], weights=[0.2, 0.3, 0.5]),
                                          cca_result(f"u{i}", "word", [0.1, 0.2, 0.3]),
                                          cca_result(f"u{i}", "phone", [0.3, 0.2, 0.1]))]
    flat += [probe_result("v", "ic", [60, 60, 60], weights=[0.2, 0.3, 0.5]), cca_result("v", "word", [0.1, 0.2, 0.3])]
    assert compare(flat, {"ks": ["word", "phone"], "ic": ["word"]}).grouped_notes() == [
        "no rank correlation where the task score is the same on every layer: ks (7 upstreams), ic (1 upstream)"]
    assert compare(flat[-2:], {"ic": ["word"]}).grouped_notes() == [
        "no rank correlation where the task score is the same on every layer: v / ic"]


def test_config_errors_name_the_file_the_key_and_the_value(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mapping: {ic: []}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: mapping.ic must be a non-empty list of property names, got \[\]"):
        load_compare_config(bad)
    bad.write_text("top_k: three\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: top_k must be a list of integers or an integer >= 1, got 'three'"):
        load_compare_config(bad)
    bad.write_text("top_ks: [1]\n")
    with pytest.raises(ConfigError, match=r"config file .*bad.yaml: unknown key 'top_ks' \(did you mean 'top_k'"):
        load_compare_config(bad)
    assert load_compare_config(overrides={"top_k": 3, "mapping": {"ic": "mel"}}).top_ks == (3,)
