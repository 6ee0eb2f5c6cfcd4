"""CCA across the checkpoints of one model's pre-training (Vielzeuf's study): a layer x
checkpoint grid per CCA property.

A suite's `series:` entry names checkpoints in training order (any upstream spec: the untrained
`randinit:` twin is step 0). The runner scores the CCA properties of every checkpoint with one
upstream pass each (a checkpoint that is also in the zoo with the same CCA config reuses the
zoo's result instead of running again), then `collect` gathers the per-layer scores into one
`series.json` per series, which the leaderboard draws as heatmaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import ConfigError
from bench.results import read_result, slug, write_json_atomic

_SERIES_KEYS = ("name", "checkpoints", "properties", "preset", "overrides")
_CHECKPOINT_KEYS = ("label", "spec")


@dataclass(frozen=True)
class Checkpoint:
    label: str  # the column title, e.g. "it1 step 1000"
    spec: str  # an upstream spec, e.g. hf:layerbench/hubert-small-it1-step1000


@dataclass(frozen=True)
class SeriesEntry:
    """Checkpoints of one model in training order and the CCA properties scored on each."""

    name: str
    checkpoints: list[Checkpoint]
    properties: list[str]
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def folder(self, out: Path, seed: int, seeds: int) -> Path:
        """`<out>/series/<name>` (one seed) or `<out>/series/<name>/seed<N>`."""
        base = out / "series" / slug(self.name)
        return base if seeds == 1 else base / f"seed{seed}"


def parse_series(items: Any, where: str, default_properties: list[str] | None, default_preset: str | None,
                 default_overrides: dict[str, Any] | None = None) -> list[SeriesEntry]:
    """Validate a suite's `series` list; properties, preset and overrides default to the suite's `cca` entry."""
    from bench.cca_properties import expand

    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{where}: `series` must be a list of {{name, checkpoints, properties, preset}} entries")
    out = []
    for i, item in enumerate(items):
        w = f"{where}: series #{i + 1}"
        if not isinstance(item, dict):
            raise ConfigError(f"{w} must be a mapping, got {item!r}")
        for key in item:
            if key not in _SERIES_KEYS:
                raise ConfigError(f"{w}: unknown key {key!r}; known keys: {', '.join(_SERIES_KEYS)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{w}: missing required key 'name'")
        cps = item.get("checkpoints")
        if not isinstance(cps, list) or len(cps) < 2:
            raise ConfigError(f"{w} ({name}): `checkpoints` must list at least two {{label, spec}} entries")
        checkpoints = []
        for j, cp in enumerate(cps):
            if not isinstance(cp, dict) or "spec" not in cp or any(k not in _CHECKPOINT_KEYS for k in cp):
                raise ConfigError(f"{w} ({name}) checkpoint #{j + 1} must be {{label, spec}}, got {cp!r}")
            checkpoints.append(Checkpoint(label=str(cp.get("label") or cp["spec"]), spec=str(cp["spec"])))
        for attr in ("label", "spec"):
            values = [getattr(c, attr) for c in checkpoints]
            dup = next((v for v in values if values.count(v) > 1), None)
            if dup is not None:
                raise ConfigError(f"{w} ({name}): checkpoint {attr} {dup!r} appears twice")
        props = item.get("properties", default_properties)
        if isinstance(props, str):
            props = [p.strip() for p in props.split(",") if p.strip()]
        if not props:
            raise ConfigError(f"{w} ({name}): give `properties` (or a suite `cca` entry to take them from)")
        try:
            props = expand([str(p) for p in props])
        except ConfigError as e:
            raise ConfigError(f"{w} ({name}).properties: {e}") from e
        overrides = item.get("overrides", default_overrides) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{w} ({name}).overrides must be a mapping, got {overrides!r}")
        out.append(SeriesEntry(name=name, checkpoints=checkpoints, properties=list(props),
                               preset=str(item.get("preset") or default_preset or "default"), overrides=overrides))
    names = [s.name for s in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(f"{where}: series {dup!r} is listed twice")
    return out


def collect(series: SeriesEntry, paths: dict[tuple[str, str], Path], folder: Path, seed: int) -> Path:
    """Gather the per-layer scores of every (checkpoint spec, property) result into
    `<folder>/series.json`; a missing or failed result leaves that column empty."""
    scores: dict[str, dict[str, dict[str, float] | None]] = {}
    for prop in series.properties:
        scores[prop] = {}
        for cp in series.checkpoints:
            path = paths.get((cp.spec, prop))
            result = read_result(path) if path is not None and path.is_file() else None
            scores[prop][cp.label] = ({str(e["layer"]): float(e["score"]) for e in result["per_layer"]}
                                      if result else None)
    payload = {
        "kind": "series",
        "name": series.name,
        "seed": seed,
        "preset": series.preset,
        "properties": series.properties,
        "checkpoints": [{"label": c.label, "spec": c.spec,
                         "results": {p: str(paths[(c.spec, p)]) for p in series.properties if (c.spec, p) in paths}}
                        for c in series.checkpoints],
        "scores": scores,
    }
    return write_json_atomic(folder / "series.json", payload)
