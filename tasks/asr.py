"""ASR (SUPERB ASR): LibriSpeech characters, Linear -> 2-layer BiLSTM -> CTC head, greedy, WER.

Targets as s3prl's `downstream/asr` builds them: the upper-cased transcript, `|` between
words and after the last one, one token per character, then `</s>` (fairseq's `encode_line`
appends it). Outputs are s3prl's fairseq dictionary over `downstream/asr/char.dict`: `<s>`
(the CTC blank), `<pad>`, `</s>`, `<unk>`, then the 28 characters in the file's
(frequency) order = 32. Scoring drops `</s>` and joins characters into words at `|`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bench.config import CONFIG_DIR
from bench.params import ProbeParams
from tasks.base import BiLSTMHead, CTCTask, ModuleHeads, Splits, Vocab, char_error_rate

WORD_SEP = "|"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary's bos, pad, eos, unk
# The symbols of s3prl's downstream/asr/char.dict, in its order.
CHARS: tuple[str, ...] = tuple("|ETAONIHSRDLUMCWFGYPBVK'XJQZ")


@dataclass(frozen=True)
class BiLSTMParams:
    """Linear(D, proj) -> `layers`-layer BiLSTM of `hidden` per direction, dropout between layers."""

    proj: int = field(metadata={"ge": 1})
    hidden: int = field(metadata={"ge": 1})
    layers: int = field(metadata={"ge": 1})
    dropout: float = field(metadata={"ge": 0})


@dataclass(frozen=True, kw_only=True)
class ASRParams(ProbeParams):
    head: BiLSTMParams


class SpeechRecognition(CTCTask):
    """SpecAugment (with time warping) comes from the preset."""

    name = "asr"
    corpus_kind = "librispeech"
    splits = Splits("train-clean-100", "dev-clean", "test-clean")
    metric = "wer"
    preset_file = CONFIG_DIR / "tasks" / "asr.yaml"
    params_type = ASRParams

    def fit(self, train, params=None, root=None) -> Vocab:
        return Vocab(SPECIALS + CHARS, blank=0, eos=2, info={"scheme": "characters (s3prl char.dict)"})

    def tokens(self, utt, space=None) -> list[str]:
        words = utt.text.upper().split()
        if not words:
            raise ValueError(f"task asr: utterance {utt.id} ({utt.path}) has an empty transcript")
        bad = sorted({c for w in words for c in w if c not in CHARS or c == WORD_SEP})
        if bad:
            raise ValueError(f"task asr: utterance {utt.id} transcript {utt.text!r} has characters "
                             f"outside A-Z and apostrophe: {bad}")
        return list(WORD_SEP.join(words) + WORD_SEP)

    def extra_metrics(self, refs, preds) -> dict[str, float]:
        """CER beside WER: at CPU scale WER sits near 100 % while characters are already learnt."""
        return {"cer": char_error_rate(refs, preds)}

    def render(self, toks) -> str:
        return " ".join("".join(toks).replace(WORD_SEP, " ").split())

    def make_heads(self, groups, dim, space: Vocab, params, generator) -> ModuleHeads:
        h = params.head
        # nn.LSTM draws its init from the global RNG: seed it from the bank's generator.
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            heads = [BiLSTMHead(dim, h.proj, h.hidden, h.layers, h.dropout, space.size)
                     for _ in range(groups)]
        return ModuleHeads(heads)


TASK = SpeechRecognition()
