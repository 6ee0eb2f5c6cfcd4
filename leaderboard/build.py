"""Build the whole leaderboard from a results folder: tables, figures, one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bench.compare import CompareConfig, Comparison, ResultSet, compare, load_compare_config, parse_results
from bench.records import ClustersResult, FailureRecord
from bench.results import load_results
from leaderboard.clusters import clusters_section
from leaderboard.html import Section, render_html
from leaderboard.overlay import overlay_section
from leaderboard.plots import make_plots
from leaderboard.tables import headline, leaderboard_entries, terminal_table, write_tables, write_text


def full_mapping(rs: ResultSet) -> dict[str, list[str]]:
    """Every task against every CCA property present: the heatmap shows all of them."""
    return {task: rs.properties for task in rs.tasks}


def _failures(rs: ResultSet, comp: Comparison) -> list[FailureRecord]:
    """Failure records found under the results folder plus those the caller's comparison carries."""
    seen: dict[tuple, FailureRecord] = {}
    for f in [*comp.failures, *rs.failures]:
        seen.setdefault((f.upstream, f.unit_kind, f.unit, f.seed), f)
    return sorted(seen.values(), key=lambda f: (f.upstream, f.unit))


def build_leaderboard(
    results_dir: str | Path,
    out_dir: str | Path,
    comparison: Comparison | None = None,
    config: CompareConfig | None = None,
    title: str = "LayerBench leaderboard",
    sections: Sequence[Section] = (),
) -> dict[str, Path]:
    """Write leaderboard.{txt,csv,md,tex}, plots/*.png and index.html under `out_dir`.

    leaderboard.txt is the headline as the terminal prints it (at most 120 columns). Returns the
    written paths: keys text, csv, markdown, latex, html, plot:<stem> for every figure, and
    clusters (clusters.md) when the folder holds `layerbench clusters` results.

    `comparison` (from bench.compare.compare) decides the CCA-picked layers; without it the
    comparison is computed with `config` (default configs/compare.yaml). `sections` are extra
    page sections (other figure sets) placed after the comparator's.
    """
    loaded = load_results(results_dir)
    rs = parse_results(loaded)
    if not rs.probes and not rs.ccas:
        raise ValueError(f"no probe or CCA result files under {results_dir}")
    cfg = config or load_compare_config()
    comp = comparison if comparison is not None else compare(rs, cfg.mapping, cfg.top_ks)
    full = compare(rs, full_mapping(rs), comp.top_ks)
    out_dir = Path(out_dir)
    head = headline(leaderboard_entries(rs, comp), [(u, rs.display(u)) for u in rs.upstreams])
    failures = _failures(rs, comp)
    paths: dict[str, Path] = dict(write_tables(head, out_dir, failures))
    figures = make_plots(rs, comp, full, out_dir / "plots")
    overlay = overlay_section(rs, out_dir / "plots")
    # `layerbench clusters` results in the same folder get their own section and clusters.md
    clusters = clusters_section([r for r in loaded if isinstance(r, ClustersResult)], out_dir)
    if clusters:
        paths["clusters"] = out_dir / "clusters.md"
    sections = [*([overlay] if overlay else []), *([clusters] if clusters else []), *sections]
    page = render_html(head, comp, figures, title, sections, failures)
    paths["html"] = write_text(out_dir / "index.html", page)
    paths["text"] = write_text(out_dir / "leaderboard.txt", terminal_table(head) + "\n")
    paths.update({f"plot:{stem}": f.path for stem, f in figures.items()})
    paths.update({f"plot:{f.stem}": f.path for s in sections for f in s.figures})
    return paths
