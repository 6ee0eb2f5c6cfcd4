"""README "The SUPERB protocol" claims about inputs: checked on tiny random-weight models."""

from __future__ import annotations

import math

import pytest
import torch

import upstreams


def _speechlike(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    env = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)
    return 0.1 * env * (torch.sin(2 * math.pi * 220 * t) + 0.3 * torch.randn(n, generator=g))


def _relative_change(spec: str, scale: float = 1.0) -> list[float]:
    """Per layer, ||f(normalised wav) - f(raw wav * scale)|| / ||f(raw wav * scale)||."""
    up = upstreams.load(spec).eval()
    wav = torch.stack([_speechlike(24000, 0), _speechlike(24000, 1)])
    lens = torch.tensor([24000, 24000])
    outs = {}
    for norm in (True, False):
        up.do_normalize = norm
        with torch.inference_mode():
            outs[norm] = up(wav * scale, lens).hidden
    return [float((a - b).norm() / b.norm()) for a, b in zip(outs[True], outs[False])]


@pytest.mark.slow
def test_group_norm_encoders_ignore_waveform_normalisation():
    """wav2vec2-base / hubert-base: HF normalises the waveform, fairseq's checkpoints (and so
    s3prl) do not; the first conv block's per-channel GroupNorm cancels the difference, also
    under KS's -3 dB gain. A layer-norm conv encoder (the Large models) does not cancel it."""
    for scale in (1.0, 10 ** (-3 / 20)):
        assert max(_relative_change("randinit:hubert-tiny", scale)) < 0.02  # ~0.5-1 % here, eps-limited
    assert max(_relative_change("randinit:hubert-large-tiny")) > 0.1  # ~26 %
