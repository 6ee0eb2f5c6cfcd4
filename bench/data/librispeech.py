"""LibriSpeech (`LibriSpeech/<split>/<spk>/<chapter>/`) with optional MFA TextGrid alignments."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from bench.data.arpabet import is_silence, normalize_phone
from bench.data.corpus import BadExamples, durations, select_splits
from bench.data.manifest import Segment, Utterance
from bench.data.textgrid import read_textgrid

FOLDER = "LibriSpeech"
ALIGNMENTS_FOLDER = "librispeech_alignments"
UNKNOWN_WORD = "<unk>"  # MFA's out-of-vocabulary word label: stands for whichever transcript word it aligns
_PARALLEL_MIN = 2000  # TextGrids below which a process pool costs more than it saves
_TOL = 0.02  # seconds an alignment may run past the header duration (frame rounding)


def _is_libri(folder: Path) -> bool:
    """A LibriSpeech folder holds split folders with <spk>/<chapter>/*.trans.txt inside."""
    return folder.is_dir() and next(folder.glob("*/*/*/*.trans.txt"), None) is not None


def find(root: Path) -> Path | None:
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if root.name == FOLDER or _is_libri(root):
        return root
    return None


def _split_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _textgrid_index(align_root: Path) -> dict[str, Path]:
    """Utterance id -> TextGrid, searched recursively (MFA output trees vary in depth)."""
    index: dict[str, Path] = {}
    for p in sorted(align_root.rglob("*.TextGrid")):
        if p.stem in index:
            raise ValueError(f"two TextGrids for utterance {p.stem} under {align_root}: {index[p.stem]} and {p}")
        index[p.stem] = p
    return index


def _tier(tiers: dict[str, list[Segment]], name: str, path: Path) -> list[Segment]:
    # MFA names tiers "words"/"phones", or "<speaker> - words" when it keeps speakers apart.
    for key, segs in tiers.items():
        if key == name or key.endswith(f" - {name}"):
            return segs
    raise ValueError(f"TextGrid {path} has no {name!r} tier (tiers: {', '.join(tiers) or 'none'})")


def read_alignment(path: Path, transcript: list[str], duration: float) -> tuple[list[Segment], list[Segment]]:
    """Non-silence words (upper-cased, checked against the transcript) and phones of one TextGrid."""
    tiers = read_textgrid(path)
    words = [s for s in _tier(tiers, "words", path) if not is_silence(s.label)]
    phones = [s for s in _tier(tiers, "phones", path) if not is_silence(s.label)]
    aligned = [s.label.upper() for s in words]
    if len(aligned) != len(transcript) or any(a != t and a != UNKNOWN_WORD.upper() for a, t in zip(aligned, transcript)):
        raise ValueError(f"TextGrid {path}: words {' '.join(aligned)!r} disagree with the transcript "
                         f"{' '.join(transcript)!r}")
    words = [Segment(t, s.start, s.end) for s, t in zip(words, transcript)]
    for s in words + phones:
        if s.start < -_TOL or s.end > duration + _TOL:
            raise ValueError(f"TextGrid {path}: interval {s.label!r} [{s.start}, {s.end}] lies outside the "
                             f"audio (0 to {duration:.3f} s)")
    for s in phones:
        try:
            normalize_phone(s.label)
        except ValueError as e:
            raise ValueError(f"TextGrid {path}: {e}") from None
    return words, phones


def _align_one(job: tuple[Path, list[str], float]) -> tuple[list[Segment], list[Segment]] | Exception:
    try:
        return read_alignment(*job)
    except (FileNotFoundError, ValueError) as e:
        return e


def _align_all(jobs: list[tuple[Path, list[str], float]], desc: str) -> list:
    """Parse many TextGrids, in worker processes when there are thousands (parsing is CPU-bound
    Python; train-clean-100 has 28k). Results keep the input order; errors come back as values."""
    workers = min(os.cpu_count() or 1, 8)
    bar = dict(total=len(jobs), desc=desc, unit="file", leave=False, disable=None if len(jobs) > 2000 else True)
    if len(jobs) < _PARALLEL_MIN or workers < 2 or "fork" not in mp.get_all_start_methods():
        return list(tqdm(map(_align_one, jobs), **bar))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(tqdm(pool.map(_align_one, jobs, chunksize=128), **bar))


def load(folder: Path, bad: BadExamples, *, splits: list[str] | None = None,
         alignments: str | Path | bool | None = None) -> dict[str, list[Utterance]]:
    """Every split folder (or the `splits` asked for), transcripts and, where found, alignments.

    alignments: folder of MFA TextGrids named <utt-id>.TextGrid anywhere below it; None looks
    for `librispeech_alignments/` beside the LibriSpeech folder; False loads none. Utterances
    without a TextGrid keep words/phones None (coverage shows in `corpus info`).
    """
    names = select_splits(_split_folders(folder), splits, folder)
    if not names:
        raise FileNotFoundError(f"LibriSpeech folder {folder} has no split folders (e.g. train-clean-100/)")
    if alignments is None:
        auto = folder.parent / ALIGNMENTS_FOLDER
        align_root = auto if auto.is_dir() else None
    elif alignments is False:
        align_root = None
    else:
        align_root = Path(alignments).expanduser()
        if not align_root.is_dir():
            raise FileNotFoundError(f"alignments folder not found: {align_root}")
    grids = _textgrid_index(align_root) if align_root is not None else {}

    out: dict[str, list[Utterance]] = {}
    for name in names:
        split_dir = folder / name
        entries: list[tuple[str, str, Path]] = []  # (id, text, audio)
        transcripts = sorted(split_dir.glob("*/*/*.trans.txt"))
        if not transcripts:
            raise FileNotFoundError(f"LibriSpeech split folder {split_dir} holds no <speaker>/<chapter>/*.trans.txt")
        for trans in transcripts:
            listed = set()
            for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split(maxsplit=1)
                if len(parts) < 2:
                    bad(ValueError(f"{trans}:{lineno}: line has an utterance id but no text: {line!r}"))
                    continue
                utt_id, text = parts[0], " ".join(parts[1].split())
                audio = trans.parent / f"{utt_id}.flac"
                listed.add(audio.name)
                if not audio.is_file():
                    bad(FileNotFoundError(f"{trans}:{lineno}: audio for utterance {utt_id} not found ({audio})"))
                    continue
                entries.append((utt_id, text, audio))
            for orphan in sorted(p for p in trans.parent.glob("*.flac") if p.name not in listed):
                bad(ValueError(f"audio file {orphan} has no line in transcript {trans}"))
        lengths = durations([a for _, _, a in entries], bad, desc=f"LibriSpeech {name}")
        jobs = [(grids[u], t.upper().split(), d) for (u, t, _), d in zip(entries, lengths) if d is not None and u in grids]
        parsed = iter(_align_all(jobs, desc=f"alignments {name}"))
        utts = []
        for (utt_id, text, audio), dur in zip(entries, lengths):
            if dur is None:
                continue
            words = phones = None
            if utt_id in grids:
                result = next(parsed)
                if isinstance(result, Exception):
                    bad(result)
                    continue
                words, phones = result
            utts.append(Utterance(id=utt_id, path=audio, duration=dur, speaker=utt_id.split("-")[0], text=text,
                                  words=words, phones=phones))
        out[name] = utts
    return out
