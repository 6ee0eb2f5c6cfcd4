"""Config values: YAML files, presets and `key=value` overrides with clear errors."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file, key or value the user gave is wrong; the message names it."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def parse_value(text: str) -> Any:
    """`3` -> 3, `1e-4` -> 0.0001, `[1,2]` -> list, `true` -> True, anything else a string.

    YAML 1.1 reads `1e-4` (no dot) as a string; people write learning rates that way, so a
    string that Python reads as a float is taken as one.
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if _FLOAT.fullmatch(value.strip()) else value
        except ValueError:
            return value
    return value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["optim.lr=1e-3", "steps=200"]` -> nested dict."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parse_value(value)
    return out


def suggest(name: object, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the nearest choice (difflib), or '' when nothing is close."""
    near = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {near[0]!r}?)" if near else ""


def merge(base: dict[str, Any], override: dict[str, Any], where: str = "config", strict: bool = True) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (the one merge of the package).

    strict: `base` is a complete config and a key it lacks is an error naming the nearest
    key; otherwise both are partial (two override sets, a preset delta) and keys combine.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if strict and key not in out:
            raise ConfigError(f"unknown key {key!r} in {where}{suggest(key, out)}; known keys: {', '.join(sorted(out))}")
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge(out[key], value, f"{where}.{key}", strict)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_preset_config(path: Path, preset: str, overrides: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """`default` of a config file with `default:` and `presets:`, then the named preset, then the
    overrides; unknown presets and keys are errors naming the file (or `<what> overrides`)."""
    data = load_yaml(path)
    cfg = data["default"]
    presets = data.get("presets") or {}
    if preset != "default":
        if preset not in presets:
            raise ConfigError(f"unknown {what} preset {preset!r} in {path}; "
                              f"choose from: {', '.join(['default', *presets])}")
        cfg = merge(cfg, presets[preset], f"{path} preset {preset}")
    if overrides:
        cfg = merge(cfg, overrides, f"{what} overrides")
    return cfg


def load_presets(path: str | Path) -> dict[str, dict[str, Any]]:
    """A preset file: preset name -> values, written as defaults plus deltas.

    A preset may say `base: <preset>`: it is that preset (earlier in the file) with its own
    values merged over it (keys must exist there). The file may say `extends: <file>` (next
    to it): its presets start from that file's, with what it lists merged over them (a delta
    may add keys, e.g. KS's `dev_sampler`).
    """
    path = Path(path)
    data = load_yaml(path)
    presets: dict[str, dict[str, Any]] = {}
    if "extends" in data:
        presets = load_presets(path.parent / str(data.pop("extends")))
    for name, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"preset {name!r} in {path} must be a mapping of values")
        values = dict(values)
        base = values.pop("base", None)
        if base is not None:
            if base not in presets:
                raise ConfigError(f"preset {name!r} in {path}: base preset {base!r} is not defined above it"
                                  f"{suggest(base, presets)}")
            presets[name] = merge(presets[base], values, f"{path} preset {name!r}")
        else:
            presets[name] = merge(presets.get(name, {}), values, f"{path} preset {name!r}", strict=False)
    return presets
