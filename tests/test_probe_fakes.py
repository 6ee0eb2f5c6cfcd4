"""Fake upstreams and handmade corpora whose right answers are known by construction.

Audio is piecewise constant over 10 ms frames; each frame's value encodes a symbol (a class
or a phone). `SignalUpstream` maps every frame back to its symbol's embedding and adds noise
that grows with the layer index, so layer 0 is the best layer and the last the worst.
Imported by the other probe tests; the single test here checks the fake itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from bench.data.arpabet import PHONES39
from bench.data.manifest import Corpus, Segment, Utterance
from bench.types import LayerSpec, UpstreamOutput

HOP = 160  # samples per frame (10 ms)
STEP = 0.01  # symbol k is written as the amplitude (k + 1) * STEP


def symbol_of(value: torch.Tensor) -> torch.Tensor:
    return (value / STEP).round().long() - 1


class SignalUpstream(nn.Module):
    """Layer l = E[symbol] + noise[l] * (utterance noise + frame noise); optional NaN / odd-width layers."""

    def __init__(self, noise: list[float], dim: int = 16, symbols: int = 40, nan_layer: int | None = None,
                 seed: int = 0, spec: str = "fake:signal"):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("emb", torch.randn(symbols, dim, generator=g))
        self.noise = list(noise)
        self.nan_layer = nan_layer
        self.spec = spec
        self.revision = f"seed{seed}"
        self.layers = [LayerSpec(f"layer{l}", l, dim if l != nan_layer else dim // 2, HOP) for l in range(len(noise))]

    @property
    def num_params(self) -> int:
        return 0

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        b = wavs.shape[0]
        t = wavs.shape[1] // HOP
        frames = wavs[:, : t * HOP].reshape(b, t, HOP).mean(-1)
        sym = symbol_of(frames).clamp(0, self.emb.shape[0] - 1)
        lens = wav_lens // HOP
        hidden = []
        for l, sigma in enumerate(self.noise):
            outs = []
            for i in range(b):
                n = int(wav_lens[i])
                # Noise depends only on the utterance's own samples: padding cannot change it.
                seed = int((wavs[i, :n].double().abs().sum() * 1e6).item()) % (2**31 - 1) + 7919 * l
                gi = torch.Generator().manual_seed(seed)
                z_utt = torch.randn(1, self.emb.shape[1], generator=gi)
                z_frm = torch.randn(t, self.emb.shape[1], generator=gi)
                outs.append(self.emb[sym[i]] + sigma * (z_utt + 0.5 * z_frm))
            h = torch.stack(outs)
            if l == self.nan_layer:
                h = torch.full((b, t, self.emb.shape[1] // 2), float("nan"))
            hidden.append(h)
        return UpstreamOutput(hidden, [lens.clone() for _ in self.noise])


def _write(path: Path, symbols: list[int], frames_each: list[int], rng: np.random.Generator) -> float:
    wav = np.concatenate([np.full(n * HOP, (s + 1) * STEP, dtype=np.float32) for s, n in zip(symbols, frames_each)])
    wav = wav + rng.uniform(-1e-4, 1e-4, size=wav.shape).astype(np.float32)  # unique per utterance
    sf.write(path, wav, 16000, subtype="FLOAT")
    return len(wav) / 16000


def class_corpus(root: Path, classes: int = 6, per_class: dict[str, int] | None = None, seed: int = 0,
                 kind: str = "speech_commands", slot: str = "keyword") -> Corpus:
    """Utterance-level corpus: class k is 0.3-0.5 s of symbol k; splits train/dev/test."""
    per_class = per_class or {"train": 20, "dev": 8, "test": 8}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, n in per_class.items():
        utts = []
        for k in range(classes):
            for j in range(n):
                path = root / f"{split}_{k}_{j}.wav"
                dur = _write(path, [k], [int(rng.integers(30, 50))], rng)
                utts.append(Utterance(f"{split}_{k}_{j}", path, dur, speaker=f"s{j}", labels={slot: f"c{k}"}))
        splits[split] = utts
    return Corpus(kind, root, splits)


PR_SPLITS = {"train-clean-100": 40, "dev-clean": 12, "test-clean": 12}


def phone_corpus(root: Path, phones: int = 8, counts: dict[str, int] | None = None, seed: int = 0) -> Corpus:
    """LibriSpeech-like corpus with phone alignments: 4-8 phones of 4-7 frames each, silences at the ends.

    The transcript's words are the phone names, and the lexicon the `quick` PR preset reads
    (lexicon/synthetic-lexicon.txt beside the corpus folder) spells each as its one phone.
    """
    from bench.data.arpabet import VOWELS
    from bench.data.lexicon import write_lexicon

    counts = counts or PR_SPLITS
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_lexicon(root.parent / "lexicon" / "synthetic-lexicon.txt",
                  [(p, [p + "1" if p in VOWELS else p]) for p in PHONES39])
    inventory = list(PHONES39[:phones])
    sil = len(PHONES39)  # symbol written for silence
    splits = {}
    for split, n in counts.items():
        utts = []
        for j in range(n):
            seq = [int(rng.integers(0, phones))]
            while len(seq) < int(rng.integers(4, 9)):  # no immediate repeats: CTC needs a blank there
                nxt = int(rng.integers(0, phones - 1))
                seq.append(nxt + (nxt >= seq[-1]))
            lens = [int(x) for x in rng.integers(4, 8, size=len(seq))]
            syms, frames, segs, t = [sil], [5], [Segment("sil", 0.0, 0.05)], 0.05
            for s, n_fr in zip(seq, lens):
                syms.append(s)
                frames.append(n_fr)
                segs.append(Segment(inventory[s] + "1", t, t + n_fr * 0.01))
                t += n_fr * 0.01
            path = root / f"{split}_{j}.wav"
            dur = _write(path, syms, frames, rng)
            words = " ".join(inventory[s] for s in seq)
            utts.append(Utterance(f"{split}-{j}", path, dur, speaker="s", text=words, phones=segs))
        splits[split] = utts
    return Corpus("librispeech", root, splits)


def test_fake_upstream_layer0_recovers_symbols(tmp_path):
    corpus = class_corpus(tmp_path, classes=3, per_class={"train": 2})
    up = SignalUpstream([0.0, 1.0])
    utt = corpus.split("train")[4]
    wav = torch.from_numpy(utt.load())[None]
    out = up(wav, torch.tensor([wav.shape[1]]))
    assert out.hidden[0].shape == (1, wav.shape[1] // HOP, 16)
    assert torch.allclose(out.hidden[0][0], up.emb[2].expand_as(out.hidden[0][0]))
    assert not torch.allclose(out.hidden[1], out.hidden[0])


@pytest.fixture
def one_thread():
    """Tiny heads run faster on one thread (and do not fight parallel test workers for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
