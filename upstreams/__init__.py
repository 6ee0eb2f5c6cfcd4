"""Upstreams: one module per model family; `upstreams.load(spec)` returns a frozen model.

A spec is `<family>:<argument>` (`hf:facebook/hubert-base-ls960`, `randinit:hubert-base`,
`s3prl:hubert_local`, `torchaudio:HUBERT_BASE`, `py:pkg.mod:Class`) or a bare family name
(`fbank`, `mfcc`). The registry maps a family to "module:factory"; a factory takes the
argument plus `spec=` and the family's keyword options. Adding a family is one module and
one line here. Modules are imported on first use, so listing families stays cheap.

Options shared by the model families: `cnn_layers=True` also exposes the conv feature
encoder as `cnn1..cnnN` (negative LayerSpec indices, listed before layer 0); `seed` (randinit
and torchaudio without weights), `trust_remote_code`, `revision` and `ctc_logits` (hf), `ckpt` (s3prl),
`pretrained` (torchaudio).
"""

from __future__ import annotations

import importlib
import inspect

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


def parse_spec(spec: str) -> tuple[str, str]:
    """'family:argument' -> (family, argument); a bare name is a family with no argument."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"upstream spec {spec!r} is empty; families: {', '.join(FAMILIES)}")
    family, _, arg = spec.strip().partition(":")
    return family, arg


def load(spec: str, **options) -> Upstream:
    """Resolve `spec` to a frozen upstream (torch.nn.Module implementing bench.types.Upstream)."""
    family, arg = parse_spec(spec)
    if family not in FAMILIES:
        raise unresolved(spec, "upstream family", family, list(FAMILIES))
    module, _, fn_name = FAMILIES[family][0].partition(":")
    factory = getattr(importlib.import_module(module), fn_name)
    params = inspect.signature(factory).parameters
    accepted = [p for p, v in params.items() if p not in ("name", "spec") and v.kind is not v.VAR_KEYWORD]
    open_ended = any(v.kind is v.VAR_KEYWORD for v in params.values())  # py: passes options to the class
    bad = [] if open_ended else sorted(set(options) - set(accepted))
    if bad:
        raise ValueError(
            f"upstream spec {spec!r}: option(s) {', '.join(bad)} not accepted by family {family!r}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    return factory(arg, spec=spec.strip(), **options)


__all__ = ["FAMILIES", "families", "load", "parse_spec", "presets"]
