"""Speech Commands v0.01 under the SUPERB 12-class keyword-spotting protocol.

train/dev come from the main archive split by the dataset's own hash rule (recomputed here;
validation_list.txt / testing_list.txt are only cross-checked, with a warning when they
disagree); test is the separate `speech_commands_test_set_v0.01`.

`_silence_` for train/dev: SUPERB (s3prl `speech_commands/dataset.py`) adds each
`_background_noise_` file once to train and once to dev and takes a fresh random 1-second
crop every time the file is drawn. The features of those crops are cached here, so the crops
are the 1-second windows on a SILENCE_HOP_S grid of every file (the same windows in train and
dev, as s3prl crops the same files for both); the sampler (BalancedSampler with the file as
the item) draws a file as s3prl weighs it and then one of its windows uniformly.

Every utterance carries `gain_db = -3`: s3prl reads all KS audio (train, dev and test) through
sox effects `channels 1, rate 16000, gain -3.0`, a plain 10^(-3/20) scaling of the samples.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from bench.data.corpus import BadExamples, durations, select_splits
from bench.data.manifest import Utterance

FOLDER = "speech_commands_v0.01"
TEST_FOLDER = "speech_commands_test_set_v0.01"
NOISE_FOLDER = "_background_noise_"
KEYWORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
CLASSES: tuple[str, ...] = KEYWORDS + (UNKNOWN, SILENCE)  # SUPERB's class order
SPLITS: tuple[str, ...] = ("train", "dev", "test")
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # the dataset README's constant
SILENCE_HOP_S = 0.25  # grid of the cached 1-s `_silence_` crops (s3prl: any sample offset)
GAIN_DB = -3.0  # s3prl's sox `gain -3.0` on every KS file

log = logging.getLogger("bench.data")


def hash_percentage(filename: str) -> float:
    """The dataset's split rule: a stable percentage from the speaker part of the file name."""
    speaker = re.sub(r"_nohash_.*$", "", Path(filename).name)
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    return (digest % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)


def hash_split(filename: str) -> str | None:
    """'dev' below 10 %, None (the archive's own test share, unused by SUPERB) below 20 %, else 'train'."""
    pct = hash_percentage(filename)
    if pct < 10:
        return "dev"
    if pct < 20:
        return None
    return "train"


def keyword_class(word: str) -> str:
    return word if word in CLASSES else UNKNOWN


def find(root: Path) -> Path | None:
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if root.name == FOLDER or ((root / NOISE_FOLDER).is_dir() and root.name != TEST_FOLDER):
        return root
    return None


def _speaker(name: str) -> str:
    return re.sub(r"_nohash_.*$", "", Path(name).stem)


def _utts(files: list[tuple[str, Path]], bad: BadExamples, desc: str) -> list[Utterance]:
    lengths = durations([p for _, p in files], bad, desc=desc)
    return [Utterance(id=f"{p.parent.name}/{p.name}", path=p, duration=d, speaker=_speaker(p.name),
                      text="" if p.parent.name.startswith("_") else p.parent.name, labels={"keyword": c},
                      gain_db=GAIN_DB)
            for (c, p), d in zip(files, lengths) if d is not None]


def _silence(noise_dir: Path, bad: BadExamples) -> list[Utterance]:
    """Every 1-s window on the SILENCE_HOP_S grid of every noise file (a file shorter than 1 s
    gives none, as s3prl's crop would fail on it)."""
    noise = sorted(noise_dir.glob("*.wav"))
    if not noise:
        raise FileNotFoundError(f"no background-noise wav files in {noise_dir} (needed for the _silence_ class)")
    out = []
    for path, dur in zip(noise, durations(noise, bad, desc="background noise")):
        if dur is None:
            continue
        for k in range(int((dur - 1.0) / SILENCE_HOP_S + 1e-6) + 1 if dur >= 1.0 else 0):
            off = k * SILENCE_HOP_S
            out.append(Utterance(id=f"{NOISE_FOLDER}/{path.name}@{off:.2f}", path=path, duration=1.0,
                                 labels={"keyword": SILENCE}, offset=off, gain_db=GAIN_DB))
    return out


def _cross_check(list_file: Path, computed: list[tuple[str, Path]]) -> None:
    """Warn when the archive's list file disagrees with the hash rule (the rule wins)."""
    if not list_file.is_file():
        return
    listed = {line.strip() for line in list_file.read_text(encoding="utf-8").splitlines() if line.strip()}
    ours = {f"{p.parent.name}/{p.name}" for _, p in computed}
    if listed != ours:
        only_list, only_rule = sorted(listed - ours), sorted(ours - listed)
        log.warning("%s disagrees with the hash split rule (which is used): %d listed file(s) the rule puts "
                    "elsewhere or that are missing (first: %s), %d file(s) the rule adds (first: %s)", list_file,
                    len(only_list), ", ".join(only_list[:3]) or "-", len(only_rule), ", ".join(only_rule[:3]) or "-")


def load(folder: Path, bad: BadExamples, *, splits: list[str] | None = None,
         test_root: str | Path | None = None) -> dict[str, list[Utterance]]:
    """train/dev/test of the SUPERB protocol; labels = {"keyword": one of CLASSES}.

    test_root: the separate test-set folder; default `speech_commands_test_set_v0.01` beside
    the main folder.
    """
    names = select_splits(SPLITS, splits, folder)
    out: dict[str, list[Utterance]] = {}
    if "train" in names or "dev" in names:
        noise_dir = folder / NOISE_FOLDER
        if not noise_dir.is_dir():
            raise FileNotFoundError(f"Speech Commands folder {folder} has no {NOISE_FOLDER}/ folder")
        by_split: dict[str, list[tuple[str, Path]]] = {"train": [], "dev": [], "excluded": []}
        words = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != NOISE_FOLDER and not p.name.startswith("."))
        for word_dir in words:
            for wav in sorted(word_dir.glob("*.wav")):
                by_split[hash_split(wav.name) or "excluded"].append((keyword_class(word_dir.name), wav))
        _cross_check(folder / "validation_list.txt", by_split["dev"])
        _cross_check(folder / "testing_list.txt", by_split["excluded"])
        for split in ("train", "dev"):
            if split in names:
                if not by_split[split]:
                    raise FileNotFoundError(f"Speech Commands folder {folder}: no word recordings fall in the {split} split")
                out[split] = _utts(by_split[split], bad, f"Speech Commands {split}") + _silence(noise_dir, bad)
    if "test" in names:
        test_dir = Path(test_root).expanduser() if test_root is not None else folder.parent / TEST_FOLDER
        if not test_dir.is_dir():
            raise FileNotFoundError(f"Speech Commands test-set folder not found: {test_dir} "
                                    "(give its location with the test_root option)")
        files = [(keyword_class(d.name), wav)
                 for d in sorted(p for p in test_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
                 for wav in sorted(d.glob("*.wav"))]
        if not files:
            raise FileNotFoundError(f"Speech Commands test-set folder {test_dir} holds no <class>/*.wav files")
        out["test"] = _utts(files, bad, "Speech Commands test")
    return {s: out[s] for s in names}
