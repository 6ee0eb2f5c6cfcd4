"""`fbank` and `mfcc`: SUPERB's hand-crafted baselines, one layer at a 10 ms stride.

Settings follow s3prl's baseline configs (s3prl/upstream/baseline/fbank.yaml, mfcc.yaml):
torchaudio.compliance.kaldi features with 25 ms windows and 10 ms shift (fbank: 80 log mel
bins; mfcc: 13 cepstra), then first and second order deltas (torchaudio ComputeDeltas,
window 5) and per-utterance CMVN ((x - mean) / (std + 1e-10) over time): 240 dims for
FBANK, 39 for MFCC. Computed per utterance over its valid samples only, so padding never
changes a frame. Kaldi's dither is 0 here, so features are deterministic.

Per-utterance CMVN makes every utterance's time-mean exactly zero, so a SUPERB utterance
head (affine, then mean pooling) sees the same vector for every input and sits at chance —
which is what SUPERB reports for FBANK on KS (8.63 %) and IC. `fbank:no_cmvn` /
`mfcc:no_cmvn` are s3prl's `fbank_no_cmvn` variant: the same features without CMVN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchaudio

from bench.types import SAMPLE_RATE, LayerSpec, UpstreamOutput
from upstreams.base import UpstreamBase

FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
DELTA_WIN = 5


class KaldiFeatures(UpstreamBase):
    def __init__(self, spec: str, kind: str, kaldi_fn: Callable[..., torch.Tensor], base_dim: int, kaldi_kwargs: dict,
                 cmvn: bool = True):
        super().__init__()
        self.cmvn = cmvn
        self.spec = spec
        self.kind = kind
        self.kaldi_fn = kaldi_fn
        self.kaldi_kwargs = dict(kaldi_kwargs, frame_length=FRAME_LENGTH_MS, frame_shift=FRAME_SHIFT_MS,
                                 sample_frequency=SAMPLE_RATE)
        self.deltas = torchaudio.transforms.ComputeDeltas(win_length=DELTA_WIN)
        self.revision = f"kaldi-{kind}-{base_dim}x3-{'cmvn' if cmvn else 'no_cmvn'}"
        stride = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)
        self.layers = [LayerSpec(name=kind, index=0, dim=3 * base_dim, stride=stride)]
        self.freeze()

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """One utterance [S] -> [T, 3 * base_dim]."""
        x = self.kaldi_fn(wav.float().view(1, -1), **self.kaldi_kwargs)  # [T, D]
        d1 = self.deltas(x.T).T
        d2 = self.deltas(d1.T).T
        x = torch.cat([x, d1, d2], dim=-1)
        if not self.cmvn:
            return x
        return (x - x.mean(0, keepdim=True)) / (1e-10 + x.std(0, keepdim=True))

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        feats = [self.features(wavs[i, : int(n)]) for i, n in enumerate(wav_lens.tolist())]
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long, device=wavs.device)
        out = wavs.new_zeros(len(feats), int(lengths.max()) if feats else 0, self.layers[0].dim)
        for i, f in enumerate(feats):
            out[i, : f.shape[0]] = f.to(out.dtype)
        return UpstreamOutput(hidden=[out], lengths=[lengths])


def _use_cmvn(name: str, spec: str) -> bool:
    """`fbank` -> CMVN (SUPERB); `fbank:no_cmvn` -> none."""
    if name not in ("", "no_cmvn"):
        raise ValueError(f"upstream spec {spec!r}: unknown variant {name!r}; use the bare family name or ':no_cmvn'")
    return name == ""


def load_fbank(name: str, *, spec: str) -> KaldiFeatures:
    return KaldiFeatures(spec, "fbank", torchaudio.compliance.kaldi.fbank, 80, dict(num_mel_bins=80, use_log_fbank=True),
                         cmvn=_use_cmvn(name, spec))


def load_mfcc(name: str, *, spec: str) -> KaldiFeatures:
    return KaldiFeatures(spec, "mfcc", torchaudio.compliance.kaldi.mfcc, 13, dict(num_ceps=13), cmvn=_use_cmvn(name, spec))
