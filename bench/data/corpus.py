"""Finding corpora on disk and opening them: kind detection, options, bad-example policy.

`LOADERS` is the one registry of corpus kinds. Each loader module provides `FOLDER` (the
corpus folder's standard name), `find(root)` (the corpus folder under `root`, or None) and
`load(folder, bad, **options)` (split -> utterances). Tasks name the kind they read; the
runner, `layerbench corpus info --kind` and the synthetic corpus take the kinds from here.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from bench.data.audio import audio_duration
from bench.data.manifest import Corpus

log = logging.getLogger("bench.data")

# kind -> loader module; this order is the order of detection and of every listing.
LOADERS: dict[str, str] = {
    "librispeech": "bench.data.librispeech",
    "speech_commands": "bench.data.speech_commands",
    "fsc": "bench.data.fsc",
    "slurp": "bench.data.slurp",
}
KINDS: tuple[str, ...] = tuple(LOADERS)


class BadExamples:
    """The bad-example policy: raise the first error, or (skip) record it and carry on.

    Skipped examples end up in Corpus.problems and in one warning with a count, so nothing
    is dropped silently.
    """

    def __init__(self, skip: bool):
        self.skip = skip
        self.items: list[str] = []

    def __call__(self, err: Exception) -> None:
        if not self.skip:
            raise err
        self.items.append(str(err))

    def warn(self, kind: str, folder: Path) -> None:
        if self.items:
            first = "; ".join(self.items[:3])
            log.warning("%s corpus %s: skipped %d bad example(s); first: %s", kind, folder, len(self.items), first)


def durations(paths: Sequence[Path], bad: BadExamples, desc: str) -> list[float | None]:
    """Header-only durations of many files (threads: the work is file I/O in libsndfile).

    A file that cannot be read gives None after `bad` has been told (in input order, so the
    error raised is always the first bad file).
    """
    def one(p: Path) -> float | Exception:
        try:
            return audio_duration(p)
        except (FileNotFoundError, ValueError) as e:
            return e

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(tqdm(pool.map(one, paths, chunksize=64), total=len(paths), desc=desc, unit="file",
                            leave=False, disable=None if len(paths) > 2000 else True))
    out: list[float | None] = []
    for r in results:
        if isinstance(r, Exception):
            bad(r)
            out.append(None)
        else:
            out.append(r)
    return out


def select_splits(available: Iterable[str], wanted: Sequence[str] | None, where: Path) -> list[str]:
    """The splits to load: all available ones, or the requested ones (each must exist)."""
    available = list(available)
    if wanted is None:
        return available
    if isinstance(wanted, str):
        wanted = [wanted]
    missing = [s for s in wanted if s not in available]
    if missing:
        raise FileNotFoundError(f"split(s) {', '.join(missing)} not found in {where}; "
                                f"available: {', '.join(available) or 'none'}")
    return list(wanted)


def detect_kinds(root: str | Path) -> dict[str, Path]:
    """Which corpora live at or directly under `root`: kind -> corpus folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus path not found or not a folder: {root}")
    found = {}
    for kind in KINDS:
        folder = importlib.import_module(LOADERS[kind]).find(root)
        if folder is not None:
            found[kind] = folder
    return found


def open_corpus(root: str | Path, kind: str | None = None, *, skip_bad: bool = False, **options) -> Corpus:
    """Load a corpus manifest. `root` is the corpus folder or a parent holding it under its
    standard name (so the synthetic root works for every kind); kind None = detect.

    skip_bad: skip bad examples (warned with a count, listed in Corpus.problems) instead of
    raising on the first one. Options are per kind (see each loader's `load`).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown corpus kind {kind!r}; expected one of: {', '.join(KINDS)}")
    found = detect_kinds(root)
    if kind is None:
        if not found:
            folders = ", ".join(f"{importlib.import_module(m).FOLDER}/" for m in LOADERS.values())
            raise FileNotFoundError(f"no corpus found under {root}: expected one of {folders} "
                                    "(or the corpus folder itself)")
        if len(found) > 1:
            listing = ", ".join(f"{k} ({p})" for k, p in found.items())
            raise ValueError(f"several corpora under {root}: {listing}; say which kind to open")
        kind = next(iter(found))
    elif kind not in found:
        raise FileNotFoundError(f"no {kind} corpus found under {root}"
                                + (f" (found: {', '.join(found)})" if found else ""))
    module = importlib.import_module(LOADERS[kind])
    allowed = [p for p in inspect.signature(module.load).parameters if p not in ("folder", "bad")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for a {kind} corpus; "
                         f"allowed: {', '.join(allowed)}")
    folder = found[kind]
    bad = BadExamples(skip_bad)
    splits = module.load(folder, bad, **options)
    bad.warn(kind, folder)
    return Corpus(kind=kind, root=folder, splits=splits, problems=list(bad.items))


def label_maps(corpus: Corpus, split: str = "train") -> dict[str, list[str]]:
    """Sorted label set per label key, from one split (FSC / SLURP / KS class maps).

    FSC's protocol takes its action / object / location maps from the train csv: this is it.
    """
    maps: dict[str, set[str]] = {}
    for utt in corpus.split(split):
        for key, value in utt.labels.items():
            maps.setdefault(key, set()).add(value)
    return {k: sorted(v) for k, v in sorted(maps.items())}
