"""Compatibility shim that lets s3prl 0.4.18 import under torchaudio >= 2.9.

What fails without it (`python -c "import s3prl.nn"` with torchaudio 2.11):
1. `s3prl/upstream/byol_s/byol_a/common.py` (and others) call `torchaudio.set_audio_backend`
   at import time -> AttributeError; the function was removed in torchaudio 2.9.
2. `s3prl/upstream/mos_prediction/expert.py` does `from torchaudio.sox_effects import
   apply_effects_tensor` at import time -> ModuleNotFoundError (sox_effects was removed).

Both are imported by s3prl's hub registry, so every upstream is affected even though none
of the SSL upstreams uses them for feature extraction. The shim adds exactly those two
names and nothing else: `set_audio_backend` becomes a no-op (LayerBench reads audio with
soundfile, never through a torchaudio backend), and a `torchaudio.sox_effects` module whose
functions raise a clear error if anything ever calls them. It only fills in what is
missing, so on an older torchaudio it changes nothing.
"""

from __future__ import annotations

import importlib.util
import sys
import types

_REMOVED = "torchaudio.sox_effects.{} was removed in torchaudio 2.9; LayerBench's s3prl shim only lets s3prl import"


def _set_audio_backend(backend: str | None) -> None:
    """No-op stand-in for the removed torchaudio.set_audio_backend (audio I/O is soundfile)."""


def _removed(name: str):
    def fn(*args, **kwargs):
        raise RuntimeError(_REMOVED.format(name))

    fn.__name__ = name
    return fn


def install() -> None:
    """Idempotently add the two removed names s3prl 0.4.18 touches at import time."""
    import torchaudio

    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
    if "torchaudio.sox_effects" not in sys.modules and importlib.util.find_spec("torchaudio.sox_effects") is None:
        mod = types.ModuleType("torchaudio.sox_effects")
        mod.__doc__ = "Stand-in installed by upstreams.s3prl_compat: the real module was removed in torchaudio 2.9."
        for name in ("apply_effects_tensor", "apply_effects_file", "effect_names", "init_sox_effects", "shutdown_sox_effects"):
            setattr(mod, name, _removed(name))
        sys.modules["torchaudio.sox_effects"] = mod
        torchaudio.sox_effects = mod
