"""`py:package.module:Name`: a user's own upstream, task or CCA property, imported by reference.

The three registries (`upstreams`, `tasks`, `bench.cca_properties`) accept such a reference
beside their built-in names, so extending LayerBench never means editing the package; each
registry then checks the object against its own contract.
"""

from __future__ import annotations

import importlib
from typing import Any

PREFIX = "py:"


def import_object(ref: str, where: str, kind: str = "ClassName") -> Any:
    """`package.module:Name` -> the object it names; errors start with `where` (e.g. "task 'py:x:Y'")."""
    module_name, _, attr = ref.rpartition(":")
    if not module_name or not attr:
        raise ValueError(f"{where}: write py:package.module:{kind}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{where}: cannot import module {module_name!r} ({e})") from e
    obj = getattr(module, attr, None)
    if obj is None:
        raise ValueError(f"{where}: module {module_name!r} has no {attr!r}")
    return obj


def missing_members(obj: Any, members: dict[str, str]) -> list[str]:
    """Names in `members` (name -> "attribute" or "method") that `obj` lacks, each with what it must be."""
    out = []
    for name, what in members.items():
        value = getattr(obj, name, None)
        if value is None or (what == "method" and not callable(value)):
            out.append(f"{name} ({what})")
    return out
