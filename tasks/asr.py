"""ASR (SUPERB ASR): LibriSpeech characters, Linear -> 2-layer BiLSTM -> CTC head, greedy, WER."""

from __future__ import annotations

import string

import torch

from tasks.base import BiLSTMHead, CTCTask, ModuleHeads, Splits, Vocab

WORD_SEP = "|"
CHARS: tuple[str, ...] = (WORD_SEP, "'", *string.ascii_uppercase)


class SpeechRecognition(CTCTask):
    """Characters A-Z, apostrophe and a word separator; SpecAugment comes from the config."""

    name = "asr"
    corpus_kind = "librispeech"
    splits = Splits("train-clean-100", "dev-clean", "test-clean")
    metric = "wer"

    def vocab(self) -> Vocab:
        return Vocab(CHARS)

    def tokens(self, utt) -> list[str]:
        words = utt.text.upper().split()
        if not words:
            raise ValueError(f"task asr: utterance {utt.id} ({utt.path}) has an empty transcript")
        bad = sorted({c for w in words for c in w if c not in CHARS or c == WORD_SEP})
        if bad:
            raise ValueError(f"task asr: utterance {utt.id} transcript {utt.text!r} has characters "
                             f"outside A-Z and apostrophe: {bad}")
        return list(WORD_SEP.join(words))

    def render(self, toks) -> str:
        return " ".join("".join(toks).replace(WORD_SEP, " ").split())

    def make_heads(self, groups, dim, space: Vocab, cfg, generator) -> ModuleHeads:
        h = cfg["head"]
        # nn.LSTM draws its init from the global RNG: seed it from the bank's generator.
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            heads = [BiLSTMHead(dim, int(h["proj"]), int(h["hidden"]), int(h["layers"]), float(h["dropout"]), space.size)
                     for _ in range(groups)]
        return ModuleHeads(heads)


TASK = SpeechRecognition()
