"""Tiny feature-upstream suites for the launch, kill and Slurm tests (a few training steps each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TABLES = ("leaderboard/leaderboard.csv", "leaderboard/leaderboard.md", "leaderboard/leaderboard.tex",
          "leaderboard/leaderboard.txt", "comparison/comparison.csv", "comparison/comparison.md")


def feature_suite(folder: Path, corpus: Path, out: Path, name: str, zoo: list[dict[str, str]],
                  launcher: dict[str, Any] | None = None) -> Path:
    """`zoo` x (IC, KS, CCA-mel) on the tiny synthetic corpus, written to `<folder>/<name>.yaml`."""
    steps = {"steps": 10, "eval_every": 5}
    data = {
        "name": name,
        "zoo": zoo,
        "tasks": [{"task": "ic", "preset": "quick", "overrides": steps},
                  {"task": "ks", "preset": "quick", "overrides": steps}],
        "cca": {"properties": ["mel"], "preset": "quick", "overrides": {"mel": {"max_frames": 2000}}},
        "corpora": {"synthetic": {"dir": str(corpus), "size": "tiny", "seed": 0}},
        "out": str(out),
        "device": "cpu",
        "compare": {"mapping": {"ic": ["mel"], "ks": ["mel"]}, "top_ks": [1]},
    }
    if launcher is not None:
        data["launcher"] = launcher
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def tables(out: Path) -> dict[str, str]:
    """The final tables of a run, with the run's own folder name blanked out."""
    return {f: (out / f).read_text().replace(str(out), "<OUT>") for f in TABLES}


def result_stamps(out: Path) -> dict[Path, tuple[int, int]]:
    """inode and mtime of every finished result file (the pooled cache excluded)."""
    files = [p for p in (out / "results").rglob("*.json") if "cache" not in p.parts and not p.name.startswith(".")]
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
