"""Phoneme recognition (SUPERB PR): LibriSpeech, linear CTC head over the 39 ARPAbet phones, PER."""

from __future__ import annotations

from bench.data.arpabet import PHONES39, normalize_phone
from tasks.base import CTCTask, FrameLinearHeads, Splits, Vocab


class PhonemeRecognition(CTCTask):
    """Targets are the alignments' phone tier, stress removed and silences dropped."""

    name = "pr"
    corpus_kind = "librispeech"
    splits = Splits("train-clean-100", "dev-clean", "test-clean")
    metric = "per"

    def vocab(self) -> Vocab:
        return Vocab(tuple(PHONES39))

    def tokens(self, utt) -> list[str]:
        if utt.phones is None:
            raise ValueError(f"task pr: utterance {utt.id} ({utt.path}) has no phone alignment")
        out = []
        for seg in utt.phones:
            try:
                p = normalize_phone(seg.label)
            except ValueError as e:
                raise ValueError(f"task pr: utterance {utt.id}: {e}") from e
            if p is not None:
                out.append(p)
        return out

    def render(self, toks) -> str:
        return " ".join(toks)

    def make_heads(self, groups, dim, space: Vocab, cfg, generator) -> FrameLinearHeads:
        return FrameLinearHeads(groups, dim, int(cfg["head"]["hidden"]), space.size, generator)


TASK = PhonemeRecognition()
