"""Per-word vectors from a GloVe-format text file (`word v1 v2 ... vD`, one word per line).

Used for CCA against static word embeddings (GloVe) or acoustically grounded word
embeddings (AGWE): any per-word vectors a user has, in the commonest plain-text format.
A word2vec-style header line (`count dim`) is accepted and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def read_word_vectors(path: str | os.PathLike, words: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Vectors (float64) keyed by lower-cased word; only `words` are kept when given.

    Every line is checked (even of words not kept), so a malformed file fails loudly with
    its name and line number instead of silently giving fewer words.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word-vector file {path} does not exist")
    wanted = None if words is None else {w.lower() for w in words}
    out: dict[str, np.ndarray] = {}
    dim: int | None = None
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.rstrip("\n").rstrip().split(" ")
            if fields == [""]:
                continue
            if lineno == 1 and len(fields) == 2 and all(p.isdigit() for p in fields):
                continue  # word2vec header: "<count> <dim>"
            if len(fields) < 2:
                raise ValueError(f"{path}:{lineno}: expected 'word v1 v2 ...', got {line.strip()[:60]!r}")
            try:
                vec = np.asarray(fields[1:], dtype=np.float64)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: non-numeric value in the vector of {fields[0]!r}") from None
            if not np.all(np.isfinite(vec)):
                raise ValueError(f"{path}:{lineno}: the vector of {fields[0]!r} holds nan or inf")
            if dim is None:
                dim = len(vec)
            elif len(vec) != dim:
                raise ValueError(f"{path}:{lineno}: {fields[0]!r} has {len(vec)} values, earlier lines have {dim}")
            word = fields[0].lower()
            if (wanted is None or word in wanted) and word not in out:
                out[word] = vec
    if dim is None:
        raise ValueError(f"word-vector file {path} holds no vectors")
    return out
