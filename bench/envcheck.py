"""Print the resolved torch / torchaudio / transformers versions and prove the pair loads.

torchaudio's compiled library is built against one torch release; a mismatched pair fails
only when the library is first used (an undefined C++ symbol), deep inside corpus synthesis
or fbank. `python -m bench.envcheck` (run by the Makefile after every install, and by CI)
loads it up front and names both versions when it does not load.
"""

from __future__ import annotations

import sys
from importlib import metadata


def versions() -> dict[str, str]:
    """Installed distribution versions of the packages whose pairing matters."""
    out = {}
    for dist in ("torch", "torchaudio", "transformers", "s3prl", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


class BrokenPairError(RuntimeError):
    """torchaudio's compiled extension does not load with the installed torch."""


def check_torchaudio() -> None:
    """Load torchaudio's C++ extension and run the Kaldi fbank every FBANK upstream uses."""
    v = versions()
    try:
        import torch
        import torchaudio.compliance.kaldi as kaldi
        from torchaudio._extension import utils as ext_utils

        ext_utils._load_lib("libtorchaudio")
        feats = kaldi.fbank(torch.zeros(1, 16000) + 1e-3, num_mel_bins=80)
    except (OSError, ImportError, RuntimeError) as e:
        raise BrokenPairError(
            f"torchaudio {v['torchaudio']} does not work with torch {v['torch']}: {e}. "
            "Install the locked pair (make test / make demo rebuild .venv from requirements.lock)."
        ) from e
    if tuple(feats.shape) != (98, 80):
        raise BrokenPairError(f"torchaudio {v['torchaudio']} fbank returned shape {tuple(feats.shape)}, expected (98, 80)")


def main() -> int:
    print("environment: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    try:
        check_torchaudio()
    except BrokenPairError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("torchaudio's compiled extension loads and computes fbank with this torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
