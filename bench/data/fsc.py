"""Fluent Speech Commands: three csv files (pandas-written, with an unnamed index column)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.corpus import BadExamples, durations, label_maps, select_splits
from bench.data.manifest import Corpus, Utterance

if TYPE_CHECKING:
    import pandas as pd

FOLDER = "fluent_speech_commands_dataset"
SPLITS: tuple[str, ...] = ("train", "valid", "test")
SLOTS: tuple[str, ...] = ("action", "object", "location")
COLUMNS: tuple[str, ...] = ("path", "speakerId", "transcription") + SLOTS


def find(root: Path) -> Path | None:
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if root.name == FOLDER or (root / "data" / "train_data.csv").is_file() or (root / "data" / "test_data.csv").is_file():
        return root
    return None


def read_csv(path: Path) -> pd.DataFrame:
    """One split's table, every field a string ("none" is a real FSC label, not a missing value)."""
    import pandas as pd  # imported here: only FSC needs it, and bench.data is imported everywhere

    if not path.is_file():
        raise FileNotFoundError(f"Fluent Speech Commands csv not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot parse Fluent Speech Commands csv {path}: {e}") from e
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"Fluent Speech Commands csv {path} lacks column(s) {', '.join(missing)} "
                         f"(has: {', '.join(str(c) for c in df.columns)})")
    return df


def load(folder: Path, bad: BadExamples, *, splits: list[str] | None = None) -> dict[str, list[Utterance]]:
    """train/valid/test; labels = {"action", "object", "location"}; text = the transcription."""
    names = select_splits(SPLITS, splits, folder / "data")
    # every table is read and checked before any row is: a missing file or column fails fast
    tables = {name: read_csv(folder / "data" / f"{name}_data.csv") for name in names}
    out: dict[str, list[Utterance]] = {}
    for name, df in tables.items():
        csv = folder / "data" / f"{name}_data.csv"
        rows = []
        for i, row in enumerate(df[list(COLUMNS)].itertuples(index=False), 2):  # line 1 is the header
            rec = dict(zip(COLUMNS, row))
            empty = [c for c in COLUMNS if not rec[c].strip()]
            if empty:
                bad(ValueError(f"{csv}:{i}: empty field(s) {', '.join(empty)}"))
                continue
            audio = folder / rec["path"]
            if not audio.is_file():
                bad(FileNotFoundError(f"{csv}:{i}: audio file not found: {audio}"))
                continue
            rows.append((rec, audio))
        lengths = durations([a for _, a in rows], bad, desc=f"FSC {name}")
        out[name] = [Utterance(id=f"{rec['speakerId']}/{audio.stem}", path=audio, duration=d, speaker=rec["speakerId"],
                               text=rec["transcription"], labels={s: rec[s] for s in SLOTS})
                     for (rec, audio), d in zip(rows, lengths) if d is not None]
    return out


def fsc_label_maps(corpus: Corpus) -> dict[str, list[str]]:
    """FSC's action / object / location label lists (sorted), taken from the train csv as the
    protocol says — read from the csv itself when the corpus was opened without its train split."""
    if corpus.kind != "fsc":
        raise ValueError(f"fsc_label_maps needs a Fluent Speech Commands corpus, got a {corpus.kind} corpus ({corpus.root})")
    if "train" in corpus.splits:
        return label_maps(corpus, "train")
    df = read_csv(corpus.root / "data" / "train_data.csv")
    return {s: sorted(v for v in set(df[s]) if v.strip()) for s in sorted(SLOTS)}
