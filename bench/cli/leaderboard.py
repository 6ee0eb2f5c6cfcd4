"""`layerbench leaderboard RESULTS --out DIR`: tables, figures and one HTML page from result files."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 70


def default_out(results: str | Path) -> Path:
    """Beside the results folder, so result scans never see the leaderboard's files."""
    return Path(results).resolve().parent / "leaderboard"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="text/Markdown/CSV/LaTeX/HTML leaderboard and figures from result files",
        description="A row per upstream ranked over tasks; per task the weighted-sum score and the best single "
        "layer (score and index). Writes leaderboard.{txt,md,csv,tex} (the files add per-task detail and "
        "the CCA-picked layers), plots/*.png and a self-contained index.html; prints the headline table.",
    )
    p.add_argument("results", help="a results folder written by `layerbench run`")
    p.add_argument("--out", help="output folder (default: 'leaderboard' beside RESULTS)")
    p.add_argument("--config", help="comparator YAML (which CCA property picks the layer for each task)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="comparator override, e.g. --set mapping.ks=[phone] (repeatable)")
    p.add_argument("--title", default="LayerBench leaderboard", help="page title of the HTML leaderboard")
    p.set_defaults(func=run)


def where_line(paths: dict[str, Path]) -> str:
    """One line naming the page and the other files of a built leaderboard."""
    out = paths["html"].parent
    n_plots = sum(k.startswith("plot:") for k in paths)
    return (f"Leaderboard written to {out}: open {paths['html']} (tables in leaderboard.md/.csv/.tex/.txt, "
            f"{n_plots} figures in plots/)")


def run(args: argparse.Namespace) -> int:
    from bench.compare import load_compare_config
    from bench.config import parse_overrides
    from leaderboard import build_leaderboard

    cfg = load_compare_config(args.config, parse_overrides(args.overrides))
    out = Path(args.out) if args.out else default_out(args.results)
    paths = build_leaderboard(args.results, out, config=cfg, title=args.title)
    print(paths["text"].read_text().rstrip("\n"))
    print(where_line(paths))
    return 0
