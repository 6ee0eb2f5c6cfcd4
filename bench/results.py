"""Result files: one schema-versioned JSON per unit (a `bench.records` record), written
atomically, resumable by config hash."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from bench import records
from bench.records import Record, Result, SchemaError

R = TypeVar("R")
RESULT_KINDS = ("probe", "cca", "clusters", "failure")
_VERSIONED = ("layerbench", "torch", "torchaudio", "transformers", "s3prl", "numpy", "scipy", "scikit-learn")


@dataclass
class UnitOutcome:
    """What running one unit (upstream x task, upstream x CCA property) produced."""

    path: Path
    skipped: bool  # True when a finished result with the same config hash was already there
    result: Result


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a JSON-able config: key order and float formatting do not matter."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def slug(text: str) -> str:
    """A file-name-safe form of an upstream spec or task name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"


def result_path(out_dir: str | os.PathLike, kind: str, upstream: str, name: str, seed: int = 0) -> Path:
    """`<out>/<kind>/<upstream>__<task-or-property>[__seed<N>].json` (no suffix for seed 0).

    `upstream` is the canonical spec, options included, so two option values or two seeds
    never share a file.
    """
    suffix = f"__seed{seed}" if seed else ""
    return Path(out_dir) / kind / f"{slug(upstream)}__{slug(name)}{suffix}.json"


def write_json_atomic(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over the target.

    A temporary file left by an earlier writer of the same target that was killed is removed.
    """
    from bench.locks import sweep_dead_temps, temp_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps(path.parent, f".{path.name}~*.tmp", recursive=False)
    tmp = temp_path(path)
    try:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=False, default=_jsonable)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_record(path: str | os.PathLike, record: Record) -> Path:
    """Write a record atomically, stamped with the package versions (when it has none yet).

    The record learns where it now lives (`record.path`) and the versions it was stamped with.
    """
    if not record.versions:
        record.versions = versions()
    record.path = str(path)
    return write_json_atomic(path, record.to_json())


def _load_json(path: Path) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise SchemaError(f"{path} is not valid JSON ({e}): remove it, or rerun the unit that writes it") from e


def read_record(path: str | os.PathLike, expect: type[R] | None = None) -> R:
    """The record stored at `path` (of type `expect` when given: another kind is an error naming the file)."""
    path = Path(path)
    return records.from_json(_load_json(path), str(path), expect)


def is_done(path: str | os.PathLike, cfg_hash: str) -> bool:
    """A unit is done when its file exists, parses, and carries the same config hash.

    A file of another schema version is an error (rerun with --force to replace it), not "not done".
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        data = _load_json(path)
    except SchemaError:
        return False
    return records.from_json(data, str(path)).config_hash == cfg_hash


def load_results(root: str | os.PathLike) -> list[Result]:
    """Every result record under `root` (a file or a folder): probe, CCA, clusters and failure records.

    Files that are no record of those kinds (other JSON, run logs, reports) are passed over; a
    record of another schema version is an error naming the file.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"results path {root} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
    out = []
    for p in files:
        try:
            data = _load_json(p)
        except SchemaError:
            continue
        if isinstance(data, dict) and data.get("kind") in RESULT_KINDS:
            out.append(records.from_json(data, str(p)))
    return out


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} into a result file")
