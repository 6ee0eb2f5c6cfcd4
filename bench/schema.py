"""The one checker of config sections: a mapping read into a dataclass, by its field types.

Every config section (a suite's zoo entries, tasks, cca, series, launcher...; a task preset's
values; a CCA or clusters config) is a dataclass, and `load(cls, data, where, path)` turns
the YAML mapping into it:

- a key the class has no field for is an error naming the place, the key and the nearest
  valid key (`suggest`), and listing the known keys;
- a value of the wrong type is an error naming the place, the key and the value;
- a required field (no default) that is missing or null is an error naming it; a null
  value of a field with a default takes the default (YAML's `key:` with nothing after it);
- field types understood: int, float (an int is taken), bool, str, Path, Any, Literal
  choices, `X | None`, unions, list[X], tuple[X, ...], dict[str, X] and nested dataclasses;
  `field(metadata={"ge": 0})` / `{"gt": 0}` bound a number, `{"nonempty": True}` a list
  or a mapping;
- then the class's `checked(self, loc)` (when it has one) checks what depends on several
  fields or on a registry and returns the final value.

`where` names the file ("suite configs/suites/quick.yaml"), `path` the key inside it
("launcher"); messages read `<where>: <path>.<key> must be ...`. Values are only read,
never rewritten: config hashes are taken from the resolved mappings, so typing a section
changes no result file's hash.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from bench.config import ConfigError, suggest

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def at(where: str, path: str = "") -> str:
    """`<where>: <path>`, or `where` alone at the top of a file."""
    return f"{where}: {path}" if path else where


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_keys(data: dict[str, Any], known: Iterable[str], where: str, path: str = "") -> None:
    """Every key of `data` must be in `known` (for sections whose keys come from a registry)."""
    known = list(known)
    for key in data:
        if key not in known:
            raise ConfigError(f"{at(where, path)}: unknown key {key!r}{suggest(key, known)}; "
                              f"known keys: {', '.join(known)}")


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def keys(cls: type) -> list[str]:
    """The keys a section of this class may hold, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def load(cls: type[T], data: Any, where: str, path: str = "") -> T:
    """`data` (a mapping) checked into `cls`; errors name `where`, the key path and the value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{at(where, path)} must be a mapping ({', '.join(keys(cls))}), got {data!r}")
    check_keys(data, keys(cls), where, path)
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        has_default = f.default is not _MISSING or f.default_factory is not _MISSING
        value = data.get(f.name)
        if f.name not in data or (value is None and not _admits_none(hints[f.name])):
            if not has_default:
                raise ConfigError(f"{at(where, path)}: missing required key {f.name!r}")
            continue
        values[f.name] = load_value(hints[f.name], value, where, _join(path, f.name), f.metadata)
    out = cls(**values)
    checked = getattr(out, "checked", None)
    return checked(at(where, path)) if checked is not None else out


def _admits_none(tp: Any) -> bool:
    return tp is Any or type(None) in typing.get_args(tp) or tp is type(None)


def describe(tp: Any, meta: Any = None) -> str:
    """What a value of type `tp` is, in words ("an integer >= 1", "true, false or a mapping")."""
    meta = meta or {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        parts = [p for a in args if a is not type(None) for p in (["true", "false"] if a is bool else [describe(a, meta)])]
        return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"
    if origin is Literal:
        return f"one of {', '.join(map(str, args))}"
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"a {'non-empty ' if meta.get('nonempty') else ''}list of {_plural(describe(args[0]) if args else 'value')}"
    if origin is dict or tp is dict:
        return f"a {'non-empty ' if meta.get('nonempty') else ''}mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({', '.join(keys(tp))})"
    bound = (f" >= {meta['ge']}" if "ge" in meta else "") + (f" > {meta['gt']}" if "gt" in meta else "")
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path",
            Any: "a value"}.get(tp, getattr(tp, "__name__", str(tp))) + bound


def _plural(desc: str) -> str:
    for article in ("an ", "a "):
        if desc.startswith(article):
            desc = desc[len(article):]
            break
    return {"true or false": "true/false values", "integer": "integers", "number": "numbers", "string": "strings",
            "path": "paths", "mapping": "mappings"}.get(desc, desc)


class _Mismatch(Exception):
    """The value does not fit this type (a union tries the next one)."""


def load_value(tp: Any, value: Any, where: str, path: str, meta: Any = None) -> Any:
    """One value checked as type `tp` (a field's type); the error names `where`, `path` and the value."""
    try:
        return _convert(tp, value, where, path, meta or {})
    except _Mismatch:
        choices = [str(c) for t in (tp, *typing.get_args(tp)) if typing.get_origin(t) is Literal
                   for c in typing.get_args(t)]
        hint = suggest(value, choices) if choices and isinstance(value, str) else ""
        raise ConfigError(f"{where}: {path} must be {describe(tp, meta)}, got {value!r}{hint}") from None


def _convert(tp: Any, value: Any, where: str, path: str, meta: Any) -> Any:
    """`value` as type `tp`; `_Mismatch` when it is not one; nested errors are ConfigErrors."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _convert(option, value, where, path, meta)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _Mismatch
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)) or (meta.get("nonempty") and not value):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch
            return tuple(load_value(a, v, where, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        out = [load_value(item, v, where, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict) or (meta.get("nonempty") and not value):
            raise _Mismatch
        item = args[1] if len(args) == 2 else Any
        return {k: load_value(item, v, where, _join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Mismatch
        return load(tp, value, where, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Mismatch
    elif tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Mismatch
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise _Mismatch
    elif tp is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise _Mismatch
        return Path(value)
    else:
        raise TypeError(f"bench.schema cannot check fields of type {tp!r}")
    if ("ge" in meta and value < meta["ge"]) or ("gt" in meta and value <= meta["gt"]):
        raise _Mismatch
    return value


def load_list(cls: type[T], items: Any, where: str, path: str, *, label: str | tuple[str, ...] = (),
              shorthand: str | None = None) -> list[T]:
    """A list of `cls` sections (null: none). Item i is checked at `<path> #i (<its label>)`, the
    label being the first of the `label` keys it has; a bare string is `{shorthand: string}`."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{where}: {path} must be a list of entries ({', '.join(keys(cls))}), got {items!r}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str) and shorthand:
            item = {shorthand: item}
        name = next((item[k] for k in ((label,) if isinstance(label, str) else label)
                     if isinstance(item, dict) and item.get(k)), None)
        out.append(load(cls, item, where, f"{path} #{i + 1}" + (f" ({name})" if name else "")))
    return out


def no_repeats(values: Iterable[Any], where: str, what: str) -> None:
    """`<where>: <what> <value> appears twice` for the first value listed twice."""
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{where}: {what} {v!r} appears twice")
        seen.add(v)


@contextmanager
def context(loc: str) -> Iterator[None]:
    """A bad value found by a registry or parser inside is re-raised as `<loc>: <its message>`."""
    try:
        yield
    except (ConfigError, ValueError) as e:
        raise ConfigError(f"{loc}: {e}") from e
