"""Leaderboard tables and figures on fixture results whose right answers are known."""

from __future__ import annotations

import re
import struct

import pandas as pd
import pytest

from bench.cli import main as cli_main
from bench.compare import compare, parse_results
from bench.results import load_results
from leaderboard import build_leaderboard, headline, leaderboard_entries, terminal_table
from results_fixtures import (
    DEMO_ZOO, FBANK, HUBERT, cca_result, probe_result, realistic_suite, superb_zoo, write_all, zoo_suite,
)

PLOTS = {
    "layers_fbank", "layers_hf_tiny-hubert", "rank_correlation_heatmap", "cca_vs_task_scatter",
    "best_layer_vs_weighted_sum",
    # both upstreams on one axes: the CCA properties and the task both have results for
    "overlay_cca_phone", "overlay_cca_word", "overlay_task_pr",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    res = write_all(root / "results", realistic_suite())
    return res, build_leaderboard(res, root / "out")


def _headline(results, mapping=None):
    rs = parse_results(results)
    return headline(leaderboard_entries(rs, compare(rs, mapping)), [(u, rs.display(u)) for u in rs.upstreams])


def test_entries_have_known_best_and_cca_layers(built):
    res, _ = built
    rs = parse_results(load_results(res))
    entries = {(e.upstream, e.task): e for e in leaderboard_entries(rs, compare(rs))}
    assert set(entries) == {(HUBERT, "pr"), (HUBERT, "ic"), (FBANK, "pr")}  # fbank/ic failed
    pr = entries[(HUBERT, "pr")]
    assert (pr.ws, pr.best, pr.best_layer, pr.cca, pr.cca_layer, pr.cca_property) == (22.0, 20.0, 2, 20.0, 2, "phone")
    assert pr.single_beats_ws and pr.best_text() == "20.00 @L2*"  # PER 20 < 22
    ic = entries[(HUBERT, "ic")]
    assert (ic.ws, ic.best, ic.best_layer, ic.cca, ic.cca_layer) == (88.0, 90.0, 3, 85.0, 4)
    fb = entries[(FBANK, "pr")]
    assert (fb.ws, fb.best, fb.best_layer, fb.cca, fb.cca_layer) == (33.0, 30.0, 4, 50.0, 0)
    # Another mapping changes the CCA pick: CCA-word picks layer 4 for HuBERT PR (PER 35).
    word = {(e.upstream, e.task): e for e in leaderboard_entries(rs, compare(rs, {"pr": ["word"]}))}
    assert (word[(HUBERT, "pr")].cca_layer, word[(HUBERT, "pr")].cca) == (4, 35.0)
    assert word[(HUBERT, "ic")].cca is None  # ic not mapped


def test_rank_and_normalised_score_by_hand():
    # IC accuracy WS: fbank 30, A 60, B 90 -> normalised A 50, B 100. PR PER WS: fbank 50, A 20, B 30 ->
    # A 100, B (50-30)/(50-20) = 66.7. Scores A 75.0, B 83.3; ranks IC B1 A2, PR A1 B2: both mean 1.5,
    # the tie goes to the higher score (B first); fbank ranks 3 on both and scores 0.
    res = [
        probe_result("fbank", "ic", [30], ws_test=30.0, label="FBANK"), probe_result("fbank", "pr", [50], ws_test=50.0, label="FBANK"),
        probe_result("a", "ic", [50, 55, 58], ws_test=60.0, label="A"), probe_result("a", "pr", [25, 22, 21], ws_test=20.0, label="A"),
        probe_result("b", "ic", [80, 95, 85], ws_test=90.0, label="B"), probe_result("b", "pr", [40, 35, 30], ws_test=30.0, label="B"),
    ]
    h = _headline(res, {})
    assert [(s.display, s.mean_rank) for s in h.standings] == [("B", 1.5), ("A", 1.5), ("FBANK", 3.0)]
    b, a, fb = h.standings
    assert b.score == pytest.approx((100 + 200 / 3) / 2) and a.score == pytest.approx(75.0) and fb.score == 0.0
    assert a.task_scores == {"pr": pytest.approx(100.0), "ic": pytest.approx(50.0)}
    assert h.reference == "FBANK" and h.unscored_tasks == []
    # B's IC layer 1 (95) beats its weighted sum (90); A's layers never beat theirs; one-layer FBANK is never marked.
    assert h.entry("b", "ic").best_text() == "95.00 @L1*" and h.entry("a", "ic").best_text() == "58.00 @L2"
    assert h.entry("fbank", "ic").best_text() == "" and not h.entry("fbank", "ic").single_beats_ws
    # PR's best (A, 20) barely above FBANK (21): B's PER 30 would be -900; it is floored at -100.
    tight = [probe_result("fbank", "pr", [21], ws_test=21.0, label="FBANK"), *res[3::2]]
    assert _headline(tight, {}).standings[-1].task_scores == {"pr": pytest.approx(-100.0)}
    assert "(floor -100)" in _headline(tight, {}).score_note()
    # Without FBANK the zoo's worst per task is 0: A 0 on IC, B 0 on PR.
    h2 = _headline(res[2:], {})
    assert {s.display: s.score for s in h2.standings} == {"A": pytest.approx(50.0), "B": pytest.approx(50.0)}
    assert "the zoo's worst per task = 0" in h2.score_note()


def _blocks(text: str) -> list[list[str]]:
    table = text.split("\n\nWS = ")[0]
    return [block.splitlines() for block in table.split("\n\n")]


@pytest.mark.parametrize("zoo, n_blocks", [(DEMO_ZOO, 2), (superb_zoo(), 2)], ids=["demo", "superb-zoo"])
def test_terminal_headline_fits_120_columns(zoo, n_blocks):
    h = _headline(zoo_suite(zoo), None)
    text = terminal_table(h)
    assert max(len(line) for line in text.splitlines()) <= 120
    blocks = _blocks(text)
    assert len(blocks) == n_blocks and all(len(b) == 3 + len(zoo) for b in blocks)  # 2 header lines + rule + rows
    headers = " ".join(b[0] for b in blocks)
    assert all(t.header() in headers for t in h.tasks) and len(h.tasks) == 6
    # Every row of every block names its upstream, in rank order, and carries that upstream's numbers.
    for block in blocks:
        for s, line in zip(h.standings, block[3:]):
            assert re.match(rf"\s*{s.position}\s+{re.escape(s.display[:23])}", line), line
    first = h.standings[0]
    e = h.entry(first.upstream, "pr")
    assert f"{e.ws:.2f}  {e.best:.2f} @L{e.best_layer}" in blocks[0][3]
    last = h.standings[-1]
    assert last.display == "FBANK" and last.score == 0.0 and "@L" not in "".join(b[-1] for b in blocks)


def test_terminal_shortens_long_names_and_wraps_narrower():
    zoo = [("FBANK", "fbank", 1), ("a model name far longer than the name column allows", "x", 4)]
    h = _headline(zoo_suite(zoo), None)
    text = terminal_table(h, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "a model name far longer…" in text and len(_blocks(text)) > 2
    assert all(text.count(t.header()) == 1 for t in h.tasks)


def test_csv_markdown_latex_text_contents(built):
    _, paths = built
    df = pd.read_csv(paths["csv"])
    assert list(df["upstream"]) == ["HuBERT tiny", "fbank"] and list(df["position"]) == [1, 2]
    hub = df.set_index("spec").loc[HUBERT]
    assert (hub["pr_best"], hub["pr_best_layer"], hub["ic_cca"], hub["ic_cca_layer"]) == (20.0, 2, 85.0, 4)
    assert (hub["score"], hub["mean_rank"], hub["tasks"], hub["pr_single_beats_ws"]) == (100.0, 1.0, 2, True)
    assert pd.isna(df.set_index("spec").loc[FBANK, "ic_ws"])
    md = paths["markdown"].read_text()
    assert "| 1 | HuBERT tiny | 100.0 | 1.00 | 22.00 · 20.00 @L2* | 88.00 · 90.00 @L3* |" in md
    assert "| 2 | fbank | 0.0 | 2.00 | 33.00 · 30.00 @L4* | – |" in md
    assert "| 1 | HuBERT tiny | 1.0 | 100.0 | 22.00 | 20.00* | 2 | 20.00 | 2 | phone |" in md  # PR detail
    assert "left out: ic (no fbank result)" in md and "fbank / ic: RuntimeError: CUDA out of memory" in md
    tex = paths["latex"].read_text()
    assert "\\begin{tabular}" in tex and "\\multicolumn{5}{c}{PR PER}" in tex
    assert "HuBERT tiny & 100.0 & 1.00 & 22.00 & 20.00 & 2 & 20.00 & 2 & 88.00 & 90.00 & 3 & 85.00 & 4 \\\\" in tex
    assert paths["text"].read_text().splitlines()[3].split() == ["1", "HuBERT", "tiny", "100.0", "1.00", "22.00",
                                                                   "20.00", "@L2*", "88.00", "90.00", "@L3*"]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plots_written_and_embedded(built):
    _, paths = built
    plots = {k.split(":", 1)[1]: p for k, p in paths.items() if k.startswith("plot:")}
    assert set(plots) == PLOTS
    for p in plots.values():
        w, h = _png_size(p)
        assert w > 200 and h > 200 and p.parent.name == "plots"
    page = paths["html"].read_text()
    assert page.count('src="data:image/png;base64,') == len(PLOTS)
    assert 'src="plots/' not in page and "http://" not in page and "https://" not in page
    # Every figure has alt text and a caption; every section a "how to read this".
    alts = re.findall(r'<img alt="([^"]*)"', page)
    assert len(alts) == len(PLOTS) and all(len(a) > 20 for a in alts)
    assert page.count("<figcaption>") == len(PLOTS)
    assert page.count("<section") == page.count('<p class="how">') == 5  # + overlays, failed units


def test_one_layer_upstreams_get_no_layer_view(tmp_path):
    res = write_all(tmp_path / "r", zoo_suite(DEMO_ZOO[:3], tasks=("pr", "ks")))
    paths = build_leaderboard(res, tmp_path / "o")
    views = sorted(k for k in paths if k.startswith("plot:layers_"))
    assert views == ["plot:layers_randinit_wav2vec2-tiny"]
    page = paths["html"].read_text()
    assert "No layer view (one layer): FBANK, MFCC." in page
    assert "Not ranked (fewer than 3 layers): FBANK (one layer), MFCC (one layer)." in page


def test_deterministic_outputs(built, tmp_path):
    res, first = built
    second = build_leaderboard(res, tmp_path / "again")
    assert first.keys() == second.keys()
    for key in first:
        assert first[key].read_bytes() == second[key].read_bytes(), key


def test_diverged_layer_and_escaping(tmp_path):
    # Layer 1 diverged with the "best" raw value: it must not be picked; underscores escape in LaTeX.
    res = write_all(tmp_path / "r", [
        probe_result("my_model", "slurp_scenario", [40, 99, 60], diverged=[1], ws_test=55.0, label="my_model v2"),
        cca_result("my_model", "word", [0.1, 0.9, 0.5], label="my_model v2"),
    ])
    paths = build_leaderboard(res, tmp_path / "o")
    df = pd.read_csv(paths["csv"])
    assert (df.loc[0, "slurp_scenario_best"], df.loc[0, "slurp_scenario_best_layer"]) == (60.0, 2)
    # CCA ranks diverged layer 1 first: the pick has no valid score.
    assert df.loc[0, "slurp_scenario_cca_layer"] == 1 and pd.isna(df.loc[0, "slurp_scenario_cca"])
    tex = paths["latex"].read_text()
    assert "my\\_model v2" in tex and "SLURP\\_SCENARIO" in tex


def test_cli(tmp_path, capsys):
    res = write_all(tmp_path / "results", realistic_suite())
    out = tmp_path / "board"
    assert cli_main(["leaderboard", str(res), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].strip().startswith("PR PER↓") and lines[3].split()[:5] == ["1", "HuBERT", "tiny", "100.0", "1.00"]
    assert lines[-1] == (f"Leaderboard written to {out}: open {out / 'index.html'} (tables in "
                         "leaderboard.md/.csv/.tex/.txt, 8 figures in plots/)")
    assert max(len(line) for line in lines[:-1]) <= 120
    assert (out / "index.html").is_file() and len(list((out / "plots").glob("*.png"))) == len(PLOTS)
    (tmp_path / "empty").mkdir()
    assert cli_main(["leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    assert "no probe or CCA result files" in capsys.readouterr().err


def test_asr_cer_is_a_column_of_its_own_shown_not_ranked(tmp_path):
    # ASR ranks on WER (A 80 < B 90); CER is shown for the same heads (the WS, and the layer chosen
    # on dev by WER) and changes no rank or score, even where it orders the upstreams the other way.
    res = []
    for up, wer, cer in (("a", [95.0, 85.0, 90.0], [70.0, 60.0, 50.0]), ("b", [99.0, 97.0, 96.0], [40.0, 45.0, 30.0])):
        r = probe_result(up, "asr", wer, ws_test=80.0 if up == "a" else 90.0, label=up.upper())
        for ls, c in zip(r.per_layer, cer):
            ls.extra["test_cer"] = c
        r.weighted_sum.extra["test_cer"] = cer[-1] - 5.0
        res.append(r)
    h = _headline(res, {})
    assert [(t.header(), t.ranked) for t in h.tasks] == [("ASR WER↓", True), ("ASR CER↓", False)]
    assert [s.display for s in h.standings] == ["A", "B"] and h.standings[0].task_ranks == {"asr": 1.0}
    a = h.entry("a", "asr_cer")
    assert (a.ws, a.best, a.best_layer, a.best_text()) == (45.0, 60.0, 1, "60.00 @L1")  # WS 45 beats L1's 60
    assert (h.entry("b", "asr_cer").ws, h.entry("b", "asr_cer").best) == (25.0, 30.0)
    text = terminal_table(h)
    assert "ASR CER↓" in text and "45.00  60.00 @L1" in text and "ASR CER: same heads" in text
    build_leaderboard(write_all(tmp_path / "results", res), tmp_path / "lb")
    csv = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    assert list(csv["asr_cer_ws"]) == [45.0, 25.0] and csv["asr_cer_rank"].isna().all()
