"""fbank / mfcc: SUPERB's Kaldi baselines, checked against torchaudio.compliance.kaldi."""

from __future__ import annotations

import pytest
import torch
import torchaudio
from upstream_fixtures import padded_audio

import upstreams


def reference(kind: str, wav: torch.Tensor, cmvn: bool = True) -> torch.Tensor:
    """kaldi features + deltas (order 2, window 5) + per-utterance CMVN, as in s3prl's baseline."""
    kaldi = torchaudio.compliance.kaldi
    if kind == "fbank":
        x = kaldi.fbank(wav[None], num_mel_bins=80, frame_length=25.0, frame_shift=10.0, sample_frequency=16000)
    else:
        x = kaldi.mfcc(wav[None], num_ceps=13, frame_length=25.0, frame_shift=10.0, sample_frequency=16000)
    delta = torchaudio.functional.compute_deltas
    d1 = delta(x.T, win_length=5).T
    d2 = delta(d1.T, win_length=5).T
    y = torch.cat([x, d1, d2], 1)
    return (y - y.mean(0)) / (y.std(0) + 1e-10) if cmvn else y


@pytest.mark.parametrize("kind,dim", [("fbank", 240), ("mfcc", 39)])
def test_equals_kaldi(kind, dim):
    up = upstreams.load(kind)
    assert [(s.name, s.index, s.dim, s.stride) for s in up.layers] == [(kind, 0, dim, 160)]
    assert up.num_params == 0
    wavs, lens = padded_audio([16000, 9000, 12345], seed=7)
    with torch.inference_mode():
        out = up(wavs, lens)
    expected_frames = [(n - 400) // 160 + 1 for n in lens.tolist()]
    assert out.lengths[0].tolist() == expected_frames
    for i, n in enumerate(lens.tolist()):
        ref = reference(kind, wavs[i, :n])
        assert ref.shape == (expected_frames[i], dim)
        torch.testing.assert_close(out.hidden[0][i, : expected_frames[i]], ref, atol=1e-4, rtol=1e-4)
        assert torch.all(out.hidden[0][i, expected_frames[i] :] == 0)


def test_unknown_variant():
    with pytest.raises(ValueError, match="'fbank:80'.*unknown variant '80'"):
        upstreams.load("fbank:80")


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_cmvn_zeroes_the_pooled_mean_and_no_cmvn_keeps_it(kind):
    """Why SUPERB's FBANK sits at chance on mean-pooled tasks, and what `:no_cmvn` changes."""
    wavs, lens = padded_audio([16000, 12000], seed=3)
    with torch.inference_mode():
        pooled = [upstreams.load(spec)(wavs, lens) for spec in (kind, f"{kind}:no_cmvn")]
    for i, n in enumerate(pooled[0].lengths[0].tolist()):
        torch.testing.assert_close(pooled[0].hidden[0][i, :n].mean(0), torch.zeros(pooled[0].hidden[0].shape[-1]),
                                   atol=1e-4, rtol=0)
        plain = pooled[1].hidden[0][i, :n]
        torch.testing.assert_close(plain, reference(kind, wavs[i, : int(lens[i])], cmvn=False), atol=1e-4, rtol=1e-4)
        assert plain.mean(0).abs().max() > 1.0
