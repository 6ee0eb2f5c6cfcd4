"""CCA across the checkpoints of one model's pre-training (Vielzeuf's study): a layer x
checkpoint grid per CCA property.

A suite's `series:` entry names checkpoints in training order (any upstream spec: the untrained
`randinit:` twin is step 0). The runner scores the CCA properties of every checkpoint with one
upstream pass each (a checkpoint that is also in the zoo with the same CCA config reuses the
zoo's result instead of running again), then `collect` gathers the per-layer scores into one
`series.json` per series, which the leaderboard draws as heatmaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import schema
from bench.config import ConfigError
from bench.records import CCAResult, SeriesCheckpoint, SeriesResult
from bench.results import read_record, slug, write_record


@dataclass(frozen=True)
class Checkpoint:
    spec: str  # an upstream spec, e.g. hf:layerbench/hubert-small-it1-step1000
    label: str = ""  # the column title, e.g. "it1 step 1000" (default: the spec)

    def checked(self, loc: str) -> "Checkpoint":
        return self if self.label else replace(self, label=self.spec)


@dataclass(frozen=True)
class SeriesEntry:
    """Checkpoints of one model in training order and the CCA properties scored on each.

    `properties`, `preset` and `overrides` left out take the suite's `cca` entry's."""

    name: str
    checkpoints: list[Checkpoint] = field(metadata={"nonempty": True})
    properties: list[str] | str | None = None  # a list, or "mel,phone"; expanded by `parse_series`
    preset: str | None = None
    overrides: dict[str, Any] | None = None

    def checked(self, loc: str) -> "SeriesEntry":
        if len(self.checkpoints) < 2:
            raise ConfigError(f"{loc}: `checkpoints` must list at least two {{label, spec}} entries")
        for attr in ("label", "spec"):
            schema.no_repeats([getattr(c, attr) for c in self.checkpoints], loc, f"checkpoint {attr}")
        return self

    def folder(self, out: Path, seed: int, seeds: int) -> Path:
        """`<out>/series/<name>` (one seed) or `<out>/series/<name>/seed<N>`."""
        base = out / "series" / slug(self.name)
        return base if seeds == 1 else base / f"seed{seed}"


def parse_series(items: Any, where: str, default_properties: list[str] | None, default_preset: str | None,
                 default_overrides: dict[str, Any] | None = None) -> list[SeriesEntry]:
    """Validate a suite's `series` list; properties, preset and overrides default to the suite's `cca` entry."""
    from bench.cca_properties import expand

    out = []
    for entry in schema.load_list(SeriesEntry, items, where, "series", label="name"):
        loc = f"{where}: series {entry.name!r}"
        props = entry.properties if entry.properties is not None else default_properties
        if isinstance(props, str):
            props = [p.strip() for p in props.split(",") if p.strip()]
        if not props:
            raise ConfigError(f"{loc}: give `properties` (or a suite `cca` entry to take them from)")
        with schema.context(f"{loc}.properties"):
            props = expand([str(p) for p in props])
        out.append(replace(entry, properties=list(props), preset=entry.preset or default_preset or "default",
                           overrides=entry.overrides if entry.overrides is not None else dict(default_overrides or {})))
    schema.no_repeats([s.name for s in out], where, "series")
    return out


def collect(series: SeriesEntry, paths: dict[tuple[str, str], Path], folder: Path, seed: int) -> Path:
    """Gather the per-layer scores of every (checkpoint spec, property) result into
    `<folder>/series.json`; a missing or failed result leaves that column empty."""
    scores: dict[str, dict[str, dict[int, float] | None]] = {}
    for prop in series.properties:
        scores[prop] = {}
        for cp in series.checkpoints:
            path = paths.get((cp.spec, prop))
            scores[prop][cp.label] = (read_record(path, CCAResult).scores if path is not None and path.is_file()
                                      else None)
    checkpoints = [SeriesCheckpoint(c.label, c.spec, {p: str(paths[(c.spec, p)]) for p in series.properties
                                                      if (c.spec, p) in paths}) for c in series.checkpoints]
    return write_record(folder / "series.json", SeriesResult(name=series.name, seed=seed, preset=series.preset,
                                                             properties=list(series.properties),
                                                             checkpoints=checkpoints, scores=scores))
