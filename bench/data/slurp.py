"""SLURP: jsonl texts with several recordings each; every recording is one example.

Protocol default: the train split is train.jsonl (real recordings, `slurp_real/`) plus
train_synthetic.jsonl (TTS recordings, `slurp_synth/`), as in SpeechBrain's SLURP recipe
(train_splits = train_synthetic + train_real) and ESPnet's (tr_real + tr_synthetic); devel
and test are real recordings only. `synthetic=False` trains on real recordings only.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.data.corpus import BadExamples, durations, select_splits
from bench.data.manifest import Utterance

FOLDER = "slurp"
TEXT_DIR = Path("dataset") / "slurp"
SPLITS: tuple[str, ...] = ("train", "devel", "test")
SLOTS: tuple[str, ...] = ("scenario", "action", "intent")
_REQUIRED = ("slurp_id", "sentence", "scenario", "action", "recordings")


def find(root: Path) -> Path | None:
    if (root / FOLDER / TEXT_DIR).is_dir():
        return root / FOLDER
    if (root / TEXT_DIR).is_dir():
        return root
    return None


def read_jsonl(path: Path, audio_dir: Path, bad: BadExamples) -> list[tuple[Utterance, Path]]:
    """(utterance without duration, audio path) per recording of every line of one jsonl file."""
    if not path.is_file():
        raise FileNotFoundError(f"SLURP text file not found: {path}")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            bad(ValueError(f"{where}: line is not JSON ({e.msg})"))
            continue
        missing = [k for k in _REQUIRED if not isinstance(rec, dict) or k not in rec]
        if missing:
            bad(ValueError(f"{where}: missing key(s) {', '.join(missing)}"))
            continue
        recordings = rec["recordings"]
        if not isinstance(recordings, list) or not recordings or not all(isinstance(r, dict) and r.get("file") for r in recordings):
            bad(ValueError(f"{where}: 'recordings' must be a non-empty list of {{\"file\": ...}} objects"))
            continue
        labels = {"scenario": str(rec["scenario"]), "action": str(rec["action"]),
                  "intent": str(rec.get("intent") or f"{rec['scenario']}_{rec['action']}")}
        for r in recordings:
            audio = audio_dir / r["file"]
            if not audio.is_file():
                bad(FileNotFoundError(f"{where}: recording {r['file']} not found ({audio})"))
                continue
            speaker = str(r.get("speaker") or r.get("usrid") or r.get("user_id") or "")
            out.append((Utterance(id=f"{rec['slurp_id']}-{Path(r['file']).stem}", path=audio, duration=0.0,
                                  speaker=speaker, text=str(rec["sentence"]), labels=dict(labels)), audio))
    return out


def load(folder: Path, bad: BadExamples, *, splits: list[str] | None = None, audio_root: str | Path | None = None,
         synthetic: bool = True) -> dict[str, list[Utterance]]:
    """train/devel/test; labels = {"scenario", "action", "intent"}.

    audio_root: folder holding slurp_real/ and slurp_synth/ (default <slurp>/audio).
    synthetic: add train_synthetic.jsonl's recordings to train (the common protocol).
    """
    text_dir = folder / TEXT_DIR
    names = select_splits(SPLITS, splits, text_dir)
    audio = Path(audio_root).expanduser() if audio_root is not None else folder / "audio"
    if not audio.is_dir():
        raise FileNotFoundError(f"SLURP audio folder not found: {audio} (give it with the audio_root option)")
    plan: dict[str, list[tuple[Path, Path]]] = {}
    for name in names:
        plan[name] = [(text_dir / f"{name}.jsonl", audio / "slurp_real")]
        if name == "train" and synthetic:
            plan[name].append((text_dir / "train_synthetic.jsonl", audio / "slurp_synth"))
    for jsonl, audio_dir in (src for sources in plan.values() for src in sources):  # fail fast on structure
        if not jsonl.is_file():
            hint = " (or open with synthetic=False)" if jsonl.stem == "train_synthetic" else ""
            raise FileNotFoundError(f"SLURP text file not found: {jsonl}{hint}")
        if not audio_dir.is_dir():
            raise FileNotFoundError(f"SLURP audio folder not found: {audio_dir} (needed by {jsonl})")
    out: dict[str, list[Utterance]] = {}
    for name, sources in plan.items():
        items = [item for jsonl, audio_dir in sources for item in read_jsonl(jsonl, audio_dir, bad)]
        lengths = durations([a for _, a in items], bad, desc=f"SLURP {name}")
        utts = []
        for (utt, _), d in zip(items, lengths):
            if d is not None:
                utt.duration = d
                utts.append(utt)
        out[name] = utts
    return out
