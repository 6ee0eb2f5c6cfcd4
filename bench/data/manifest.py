"""The one record every task and analysis reads: an utterance with its labels and alignments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Segment:
    """An aligned unit: a word or a phone, times in seconds from the start of the utterance."""

    label: str
    start: float
    end: float


@dataclass
class Utterance:
    """One example. `offset`/`duration` select a crop of the file (Speech Commands `_silence_`);
    `gain_db` scales the samples on load (SUPERB's KS reads its audio through sox `gain -3`)."""

    id: str
    path: Path
    duration: float
    speaker: str = ""
    text: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    words: list[Segment] | None = None
    phones: list[Segment] | None = None  # ARPAbet with stress digits as aligned (MFA convention)
    offset: float = 0.0
    gain_db: float = 0.0

    def load(self) -> np.ndarray:
        """16 kHz mono float32 samples (resampled / down-mixed when the file differs)."""
        from bench.data.audio import read_audio

        wav = read_audio(self.path, offset=self.offset, duration=self.duration)
        return wav * np.float32(10.0 ** (self.gain_db / 20.0)) if self.gain_db else wav


@dataclass
class Corpus:
    """A loaded corpus: its kind, root, and utterances per split (split names as published)."""

    kind: str  # a kind of bench.data.corpus.LOADERS
    root: Path
    splits: dict[str, list[Utterance]]
    problems: list[str] = field(default_factory=list)  # skipped examples, when the user asked to skip

    def split(self, name: str) -> list[Utterance]:
        if name not in self.splits:
            raise KeyError(f"corpus {self.root} ({self.kind}) has no split {name!r}; it has: {', '.join(self.splits)}")
        utts = self.splits[name]
        if not utts:
            raise ValueError(f"split {name!r} of corpus {self.root} ({self.kind}) is empty")
        return utts
