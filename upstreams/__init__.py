"""Upstreams: one module per model family; `upstreams.load(spec)` returns a frozen model.

A spec is `<family>:<argument>` (`hf:facebook/hubert-base-ls960`, `randinit:hubert-base`,
`s3prl:hubert_local`, `torchaudio:HUBERT_BASE`, `py:pkg.mod:Class`) or a bare family name
(`fbank`, `mfcc`). The registry maps a family to "module:factory"; a factory takes the
argument plus `spec=` and the family's keyword options. Adding a family is one module and
one line here. Modules are imported on first use, so listing families stays cheap.

Options are written inside the spec, after commas: `randinit:hubert-tiny,seed=2`,
`s3prl:multires_hubert_local,ckpt=/models/mr.pt`, `hf:facebook/wav2vec2-base,cnn_layers=true`.
The same string works in every command, zoo entry and `upstreams.load`, so an option is part of
the unit's identity: its config hash and its result file name. `canonical()` sorts the options
and drops those equal to the family's default, so `seed=0` names the same unit as no option.
Options of the families: `cnn_layers=true` also exposes the conv feature encoder as
`cnn1..cnnN` (negative LayerSpec indices, listed before layer 0); `seed` (randinit and
torchaudio without weights), `trust_remote_code`, `revision` and `ctc_logits` (hf), `padding`
(hf and randinit: `exact`, the default, or `s3prl`; see `upstreams.hf`), `ckpt` (s3prl),
`pretrained` (torchaudio); a `py:` class takes its constructor's keyword arguments.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any

from bench.types import Upstream
from upstreams.base import unresolved

# family -> ("module:factory", what the argument is)
FAMILIES: dict[str, tuple[str, str]] = {
    "hf": ("upstreams.hf:load_hf", "HF transformers hub id or local save_pretrained folder"),
    "randinit": ("upstreams.randinit:load_randinit", "random-weight preset (see below) or HF config.json"),
    "s3prl": ("upstreams.s3prl:load_s3prl", "s3prl upstream name (ckpt=... for *_local / *_custom)"),
    "torchaudio": ("upstreams.torchaudio_pipelines:load_torchaudio", "torchaudio.pipelines bundle, e.g. HUBERT_BASE"),
    "fbank": ("upstreams.features:load_fbank", "Kaldi fbank 80 + deltas + CMVN (SUPERB FBANK baseline); fbank:no_cmvn without CMVN"),
    "mfcc": ("upstreams.features:load_mfcc", "Kaldi MFCC 13 + deltas + CMVN (SUPERB MFCC baseline); mfcc:no_cmvn without CMVN"),
    "py": ("upstreams.custom:load_custom", "your own class: py:package.module:ClassName"),
}


def families() -> dict[str, str]:
    """Family name -> description of its argument."""
    return {k: v[1] for k, v in FAMILIES.items()}


def presets() -> dict[str, str]:
    """randinit preset name -> description."""
    from upstreams.randinit import presets as _presets

    return _presets()


_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Spec:
    """A parsed upstream spec: `family:argument,key=value,...`."""

    family: str
    arg: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def base(self) -> str:
        return f"{self.family}:{self.arg}" if self.arg else self.family

    def text(self) -> str:
        """The spec string, options sorted by key."""
        opts = "".join(f",{k}={_format(v)}" for k, v in sorted(self.options))
        return self.base + opts


def _format(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_spec(spec: str) -> Spec:
    """'family:argument,key=value' -> Spec; a bare name is a family with no argument.

    Options start at the first comma followed by `key=`; a comma elsewhere stays in the
    argument. Values are read like `--set` values (`true`, `2`, `1e-3`, else a string).
    """
    from bench.config import parse_value

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"upstream spec {spec!r} is empty; families: {', '.join(FAMILIES)}")
    parts = spec.strip().split(",")
    first = next((i for i, p in enumerate(parts) if i > 0 and _OPTION.match(p.strip())), len(parts))
    family, _, arg = ",".join(parts[:first]).partition(":")
    options: dict[str, Any] = {}
    for part in parts[first:]:
        key, eq, value = part.strip().partition("=")
        if not eq or not _OPTION.match(part.strip()):
            raise ValueError(f"upstream spec {spec!r}: option {part!r} must look like key=value")
        if key in options:
            raise ValueError(f"upstream spec {spec!r}: option {key!r} is given twice")
        options[key] = parse_value(value)
    return Spec(family, arg, tuple(options.items()))


def _factory(spec: str, family: str):
    if family not in FAMILIES:
        raise unresolved(spec, "upstream family", family, list(FAMILIES))
    module, _, fn_name = FAMILIES[family][0].partition(":")
    return getattr(importlib.import_module(module), fn_name)


def _resolve(spec: str, options: dict[str, Any]) -> tuple[Any, Spec, dict[str, Any]]:
    """(factory, canonical Spec, options to pass) with every option checked against the family."""
    parsed = parse_spec(spec)
    merged = dict(parsed.options)
    for key, value in options.items():
        if key in merged and merged[key] != value:
            raise ValueError(f"upstream spec {spec!r}: option {key!r} is {merged[key]!r} in the spec "
                             f"but {value!r} as a keyword")
        merged[key] = value
    factory = _factory(spec, parsed.family)
    params = inspect.signature(factory).parameters
    accepted = {p: v for p, v in params.items() if p not in ("name", "spec") and v.kind is not v.VAR_KEYWORD}
    open_ended = any(v.kind is v.VAR_KEYWORD for v in params.values())  # py: passes options to the class
    bad = [] if open_ended else sorted(set(merged) - set(accepted))
    if bad:
        raise ValueError(
            f"upstream spec {spec!r}: option(s) {', '.join(bad)} not accepted by family {parsed.family!r}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    named = {k: v for k, v in merged.items() if not (k in accepted and accepted[k].default == v)}
    return factory, Spec(parsed.family, parsed.arg, tuple(sorted(named.items()))), merged


def canonical(spec: str, **options) -> str:
    """The one spelling of an upstream and its options: what config hashes and file names use.

    Planning never loads a model: a spec whose family or options do not resolve keeps its
    written spelling (options sorted) here, and `load` raises the error when the unit runs,
    so a suite records that unit as failed and goes on.
    """
    try:
        return _resolve(spec, options)[1].text()
    except ValueError:
        parsed = parse_spec(spec)
        return Spec(parsed.family, parsed.arg, tuple(sorted({**dict(parsed.options), **options}.items()))).text()


def load(spec: str, **options) -> Upstream:
    """Resolve `spec` (options inside it or as keywords) to a frozen upstream (bench.types.Upstream).

    The model's `.spec` is the canonical spelling, options included.
    """
    factory, canon, merged = _resolve(spec, options)
    return factory(canon.arg, spec=canon.text(), **merged)


__all__ = ["FAMILIES", "Spec", "canonical", "families", "load", "parse_spec", "presets"]
