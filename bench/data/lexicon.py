"""Pronunciation lexicons in the format of s3prl's SUPERB PR lexicons.

One entry per line, `WORD<whitespace>PHONE PHONE ...` (stressed ARPAbet, e.g. `HELLO\tHH AH0 L OW1`).
A word may be listed more than once; as in s3prl's libriphone recipe, the files are read in
the order given and a word's *first* pronunciation wins (s3prl: "taking the first phoneme
sequences for a deterministic behavior").
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lexicon:
    """word -> first pronunciation, and where it came from (paths with their sha256)."""

    words: Mapping[str, tuple[str, ...]]
    sources: tuple[tuple[str, str], ...]  # (path, sha256)

    def pronounce(self, word: str) -> tuple[str, ...]:
        try:
            return self.words[word]
        except KeyError:
            files = ", ".join(p for p, _ in self.sources)
            raise KeyError(f"word {word!r} is in no lexicon file ({files})") from None


def read_lexicon(paths: Sequence[str | os.PathLike], phones: Iterable[str]) -> Lexicon:
    """Read `paths` in order; every phone must be in `phones` (an error names file and line)."""
    allowed = frozenset(phones)
    if not paths:
        raise ValueError("no lexicon file given")
    words: dict[str, tuple[str, ...]] = {}
    sources = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"lexicon file not found: {path}")
        data = path.read_bytes()
        sources.append((str(path), hashlib.sha256(data).hexdigest()))
        for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            word, *pron = fields
            if not pron:
                raise ValueError(f"lexicon {path} line {n}: word {word!r} has no pronunciation")
            bad = [p for p in pron if p not in allowed]
            if bad:
                raise ValueError(f"lexicon {path} line {n}: {word!r} uses phone(s) {bad} outside the "
                                 f"{len(allowed)}-token phone set")
            words.setdefault(word, tuple(pron))
    return Lexicon(words, tuple(sources))


def write_lexicon(path: str | os.PathLike, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
    """Write `WORD\\tPHONES` lines atomically, in the order given (the first entry of a word wins)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{w}\t{' '.join(p)}\n" for w, p in entries)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
