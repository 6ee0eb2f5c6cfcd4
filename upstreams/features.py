"""`fbank` and `mfcc`: SUPERB's hand-crafted baselines, one layer at a 10 ms stride.

Settings follow s3prl's baseline configs (s3prl/upstream/baseline/fbank.yaml, mfcc.yaml):
torchaudio.compliance.kaldi features with 25 ms windows and 10 ms shift (fbank: 80 log mel
bins; mfcc: 13 cepstra), then first and second order deltas (torchaudio ComputeDeltas,
window 5) and per-utterance CMVN ((x - mean) / (std + 1e-10) over time): 240 dims for
FBANK, 39 for MFCC. Computed per utterance over its valid samples only, so padding never
changes a frame. Kaldi's dither is 0 here, so features are deterministic.
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
    def __init__(self, spec: str, kind: str, kaldi_fn: Callable[..., torch.Tensor], base_dim: int, kaldi_kwargs: dict):
        super().__init__()
        self.spec = spec
        self.kind = kind
        self.kaldi_fn = kaldi_fn
        self.kaldi_kwargs = dict(kaldi_kwargs, frame_length=FRAME_LENGTH_MS, frame_shift=FRAME_SHIFT_MS,
                                 sample_frequency=SAMPLE_RATE)
        self.deltas = torchaudio.transforms.ComputeDeltas(win_length=DELTA_WIN)
        self.revision = f"kaldi-{kind}-{base_dim}x3-cmvn"
        stride = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)
        self.layers = [LayerSpec(name=kind, index=0, dim=3 * base_dim, stride=stride)]
        self.freeze()

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """One utterance [S] -> [T, 3 * base_dim]."""
        x = self.kaldi_fn(wav.float().view(1, -1), **self.kaldi_kwargs)  # [T, D]
        d1 = self.deltas(x.T).T
        d2 = self.deltas(d1.T).T
        x = torch.cat([x, d1, d2], dim=-1)
        return (x - x.mean(0, keepdim=True)) / (1e-10 + x.std(0, keepdim=True))

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        feats = [self.features(wavs[i, : int(n)]) for i, n in enumerate(wav_lens.tolist())]
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long, device=wavs.device)
        out = wavs.new_zeros(len(feats), int(lengths.max()) if feats else 0, self.layers[0].dim)
        for i, f in enumerate(feats):
            out[i, : f.shape[0]] = f.to(out.dtype)
        return UpstreamOutput(hidden=[out], lengths=[lengths])


def _no_argument(name: str, spec: str) -> None:
    if name:
        raise ValueError(f"upstream spec {spec!r}: this family takes no argument (write just the family name)")


def load_fbank(name: str, *, spec: str) -> KaldiFeatures:
    _no_argument(name, spec)
    return KaldiFeatures(spec, "fbank", torchaudio.compliance.kaldi.fbank, 80, dict(num_mel_bins=80, use_log_fbank=True))


def load_mfcc(name: str, *, spec: str) -> KaldiFeatures:
    _no_argument(name, spec)
    return KaldiFeatures(spec, "mfcc", torchaudio.compliance.kaldi.mfcc, 13, dict(num_ceps=13))
