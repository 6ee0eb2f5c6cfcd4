"""Audio reading: every consumer gets 16 kHz mono float32, whatever the file holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from bench.types import SAMPLE_RATE


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header only (cheap: used when building manifests)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises its own error types for unreadable data
        raise ValueError(f"unreadable or corrupt audio file {path}: {e}") from e
    if info.samplerate <= 0 or info.frames <= 0:
        raise ValueError(f"audio file {path} holds no samples")
    return info.frames / info.samplerate


def resample(wav: np.ndarray, orig_sr: int, new_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited sinc resampling (torchaudio); output length ceil(n * new_sr / orig_sr)."""
    if orig_sr == new_sr:
        return wav
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), orig_sr, new_sr)
    return out.numpy().astype(np.float32, copy=False)


def read_audio(path: str | Path, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Samples of `path` from `offset` s for `duration` s (None: to the end), 16 kHz mono float32.

    Seeks in the file so a 1-second crop of a long noise file reads only that second.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            start = int(round(offset * sr))
            if start < 0 or start > f.frames:
                raise ValueError(f"offset {offset} s is outside audio file {path} ({f.frames / sr:.3f} s)")
            n = -1 if duration is None else int(round(duration * sr))
            if n != -1 and start + n > f.frames:
                raise ValueError(f"crop {offset}+{duration} s runs past the end of audio file {path} "
                                 f"({f.frames / sr:.3f} s)")
            f.seek(start)
            data = f.read(frames=n, dtype="float32", always_2d=True)
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"unreadable or corrupt audio file {path}: {e}") from e
    except Exception as e:
        raise ValueError(f"unreadable or corrupt audio file {path}: {e}") from e
    if n != -1 and data.shape[0] != n:
        raise ValueError(f"audio file {path} is truncated: read {data.shape[0]} of {n} samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(np.ascontiguousarray(wav, dtype=np.float32), sr)
