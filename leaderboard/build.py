"""Build the whole leaderboard from a results folder: tables, plots, one HTML page."""

from __future__ import annotations

from pathlib import Path

from bench.compare import CompareConfig, Comparison, ResultSet, compare, load_compare_config, parse_results
from bench.results import load_results
from leaderboard.html import render_html
from leaderboard.overlay import overlay_plots
from leaderboard.plots import make_plots
from leaderboard.tables import display_table, leaderboard_entries, write_tables


def full_mapping(rs: ResultSet) -> dict[str, list[str]]:
    """Every task against every CCA property present: the heatmap shows all of them."""
    return {task: rs.properties for task in rs.tasks}


def _failures(rs: ResultSet, comp: Comparison) -> list[dict]:
    """Failure records found under the results folder plus those the caller's comparison carries."""
    seen: dict[tuple, dict] = {}
    for f in [*comp.failures, *rs.failures]:
        seen.setdefault((f.get("upstream"), f.get("task"), f.get("property"), f.get("seed")), f)
    return sorted(seen.values(), key=lambda f: (str(f.get("upstream")), str(f.get("task") or f.get("property"))))


def build_leaderboard(
    results_dir: str | Path,
    out_dir: str | Path,
    comparison: Comparison | None = None,
    config: CompareConfig | None = None,
    title: str = "LayerBench leaderboard",
) -> dict[str, Path]:
    """Write leaderboard.{csv,md,tex}, plots/*.png and index.html under `out_dir`.

    `comparison` (from bench.compare.compare) decides the CCA-picked layers; without it the
    comparison is computed with `config` (default configs/compare.yaml). Returns the written
    paths: keys csv, markdown, latex, html and plot:<name> for every plot.
    """
    rs = parse_results(load_results(results_dir))
    if not rs.probes and not rs.ccas:
        raise ValueError(f"no probe or CCA result files under {results_dir}")
    cfg = config or load_compare_config()
    comp = comparison if comparison is not None else compare(rs, cfg.mapping, cfg.top_ks)
    full = compare(rs, full_mapping(rs), comp.top_ks)
    out_dir = Path(out_dir)
    upstreams = [(u, rs.display(u)) for u in rs.upstreams]
    entries = leaderboard_entries(rs, comp)
    paths: dict[str, Path] = dict(write_tables(entries, out_dir, _failures(rs, comp), upstreams))
    plots = make_plots(rs, comp, full, out_dir / "plots")
    plots.update(overlay_plots(rs, out_dir / "plots"))
    page = render_html(display_table(entries, upstreams), comp, plots, title)
    html_path = out_dir / "index.html"
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(html_path)
    paths["html"] = html_path
    paths.update({f"plot:{stem}": p for stem, p in plots.items()})
    return paths
