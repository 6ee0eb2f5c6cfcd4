"""Leaderboard tables and plots on fixture results whose right answers are known."""

from __future__ import annotations

import struct

import pandas as pd
import pytest

from bench.cli import main as cli_main
from bench.compare import compare, parse_results
from bench.results import load_results
from leaderboard import build_leaderboard, leaderboard_entries
from results_fixtures import FBANK, HUBERT, cca_result, probe_result, realistic_suite, write_all

PLOTS = {
    "layers_fbank", "layers_hf_tiny-hubert", "scatter_fbank", "scatter_hf_tiny-hubert",
    "rank_correlation_heatmap", "best_layer_vs_weighted_sum",
    # both upstreams on one axes: the CCA properties and the task both have results for
    "overlay_cca_phone", "overlay_cca_word", "overlay_task_pr",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    res = write_all(root / "results", realistic_suite())
    return res, build_leaderboard(res, root / "out")


def test_entries_have_known_best_and_cca_layers(built):
    res, _ = built
    rs = parse_results(load_results(res))
    entries = {(e.upstream, e.task): e for e in leaderboard_entries(rs, compare(rs))}
    assert set(entries) == {(HUBERT, "pr"), (HUBERT, "ic"), (FBANK, "pr")}  # fbank/ic failed
    pr = entries[(HUBERT, "pr")]
    assert (pr.ws, pr.best, pr.best_layer, pr.cca, pr.cca_layer, pr.cca_property) == (22.0, 20.0, 2, 20.0, 2, "phone")
    ic = entries[(HUBERT, "ic")]
    assert (ic.ws, ic.best, ic.best_layer, ic.cca, ic.cca_layer) == (88.0, 90.0, 3, 85.0, 4)
    fb = entries[(FBANK, "pr")]
    assert (fb.ws, fb.best, fb.best_layer, fb.cca, fb.cca_layer) == (33.0, 30.0, 4, 50.0, 0)
    # Another mapping changes the CCA pick: CCA-word picks layer 4 for HuBERT PR (PER 35).
    word = {(e.upstream, e.task): e for e in leaderboard_entries(rs, compare(rs, {"pr": ["word"]}))}
    assert (word[(HUBERT, "pr")].cca_layer, word[(HUBERT, "pr")].cca) == (4, 35.0)
    assert word[(HUBERT, "ic")].cca is None  # ic not mapped


def test_csv_markdown_latex_contents(built):
    _, paths = built
    df = pd.read_csv(paths["csv"])
    assert list(df["upstream"]) == ["HuBERT tiny", "fbank"]
    hub = df.set_index("spec").loc[HUBERT]
    assert (hub["pr_best"], hub["pr_best_layer"], hub["ic_cca"], hub["ic_cca_layer"]) == (20.0, 2, 85.0, 4)
    assert pd.isna(df.set_index("spec").loc[FBANK, "ic_ws"])
    md = paths["markdown"].read_text()
    assert "| HuBERT tiny | 22.00 | 20.00 (L2) | 20.00 (L2) | 88.00 | 90.00 (L3) | 85.00 (L4) |" in md
    assert "| fbank | 33.00 | 30.00 (L4) | 50.00 (L0) | – | – | – |" in md
    assert "fbank / ic: RuntimeError: CUDA out of memory" in md
    tex = paths["latex"].read_text()
    assert "\\begin{tabular}" in tex and "\\multicolumn{5}{c}{PR PER}" in tex
    assert "HuBERT tiny & 22.00 & 20.00 & 2 & 20.00 & 2 & 88.00 & 90.00 & 3 & 85.00 & 4 \\\\" in tex


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
    assert page.count("<tr>") == 2 + 3 + 5 + 3  # leaderboard rows, aggregates, pairs, header rows


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
    assert "| HuBERT tiny | 22.00 |" in "\n".join(lines)
    assert lines[-1].startswith("Leaderboard written to " + str(out))
    assert (out / "index.html").is_file() and len(list((out / "plots").glob("*.png"))) == len(PLOTS)
    (tmp_path / "empty").mkdir()
    assert cli_main(["leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    assert "no probe or CCA result files" in capsys.readouterr().err
