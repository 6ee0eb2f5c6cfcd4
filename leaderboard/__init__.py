"""Leaderboard: turns result files into tables (Markdown, CSV, LaTeX), plots and one HTML page.

Public API: `build_leaderboard(results_dir, out_dir, comparison=None)` does everything; the
pieces below are for callers that want one output.
"""

from leaderboard.build import build_leaderboard, full_mapping
from leaderboard.html import render_html
from leaderboard.plots import make_plots
from leaderboard.tables import (
    Entry,
    display_table,
    leaderboard_entries,
    numeric_frame,
    to_latex,
    to_markdown,
    write_tables,
)

__all__ = [
    "Entry",
    "build_leaderboard",
    "display_table",
    "full_mapping",
    "leaderboard_entries",
    "make_plots",
    "numeric_frame",
    "render_html",
    "to_latex",
    "to_markdown",
    "write_tables",
]
