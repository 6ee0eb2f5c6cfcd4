"""Leaderboard: turns result files into tables (text, Markdown, CSV, LaTeX), figures and one HTML page.

Public API: `build_leaderboard(results_dir, out_dir, comparison=None)` does everything; the
pieces below are for callers that want one output, or that add a figure `Section` to the page.
"""

from leaderboard.build import build_leaderboard, full_mapping
from leaderboard.html import Section, render_html
from leaderboard.plots import Figure, make_plots
from leaderboard.tables import (
    Entry,
    Headline,
    headline,
    leaderboard_entries,
    numeric_frame,
    terminal_table,
    to_latex,
    to_markdown,
    write_tables,
)

__all__ = [
    "Entry",
    "Figure",
    "Headline",
    "Section",
    "build_leaderboard",
    "full_mapping",
    "headline",
    "leaderboard_entries",
    "make_plots",
    "numeric_frame",
    "render_html",
    "terminal_table",
    "to_latex",
    "to_markdown",
    "write_tables",
]
