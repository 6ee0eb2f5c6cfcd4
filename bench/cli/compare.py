"""`layerbench compare RESULTS`: relate CCA scores to probe scores, layer by layer."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 60


def default_out(results: str | Path) -> Path:
    """Beside the results folder (not inside it, so result scans never pick the report up)."""
    return Path(results).resolve().parent / "comparison"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="rank correlations, top-k hits and regret of CCA against probe results",
        description="Relate per-layer CCA scores to per-layer probe scores (Spearman, Kendall, "
        "top-k hits, recommended layer and its regret, best single layer vs weighted sum). "
        "Prints the aggregates and writes comparison.md (the report with every ranked pair), comparison.csv "
        "(one row per ranked pair) and comparison.json (everything).",
    )
    p.add_argument("results", help="a results folder (or one result file) written by `layerbench run`")
    p.add_argument("--out", help="output folder (default: 'comparison' beside RESULTS)")
    p.add_argument("--config", help="comparator YAML replacing configs/compare.yaml's keys (mapping, top_k)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set top_k=[1,5] or --set mapping.ks=[word,phone] (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.compare import compare, load_compare_config, render_summary, write_comparison
    from bench.config import parse_overrides
    from bench.results import load_results

    cfg = load_compare_config(args.config, parse_overrides(args.overrides))
    results = load_results(args.results)
    comp = compare(results, cfg.mapping, cfg.top_ks)
    out = Path(args.out) if args.out else default_out(args.results)
    paths = write_comparison(comp, out)
    print(render_summary(comp))
    print(f"Comparison of {len(comp.ranked_pairs)} ranked pair(s) written to {out} "
          f"({', '.join(p.name for p in paths.values())}; the per-pair table is in {paths['markdown'].name})")
    return 0
