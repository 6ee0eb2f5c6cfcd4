"""Write the synthetic corpus: LibriSpeech, Speech Commands, FSC and SLURP in their real layouts.

The parent process plans every utterance (who says what kind of thing, and where the file
goes) from the seed, then hands fixed batches of that plan ("work items") to worker
processes. espeak-ng keeps hidden state between calls, so every work item runs in a freshly
started interpreter (never a forked or reused one): the output depends only on the seed and the plan,
never on how many workers there are. Workers synthesize, check and write the audio (and
TextGrids); the parent writes the index files (transcripts, csv, jsonl, split lists). All of it
goes to a private staging folder first, moved into place when complete; last of all comes
`SYNTH_INFO.json`, which marks the corpus complete. One writer per folder (a lock beside it).
"""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
import os
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.data.corpus import KINDS
from bench.synth.espeak import ESPEAK_RATE, Voice
from bench.types import SAMPLE_RATE

GENERATOR_VERSION = 2  # 2: writes the pronunciation lexicon (lexicon/synthetic-lexicon.txt)
INFO_FILE = "SYNTH_INFO.json"
STARTED_FILE = "SYNTH_INCOMPLETE"  # written first: a folder with it and without INFO is ours to redo
OWNED = ("LibriSpeech", "librispeech_alignments", "lexicon", "speech_commands_v0.01", "speech_commands_test_set_v0.01",
         "fluent_speech_commands_dataset", "slurp")
LEXICON = "lexicon/synthetic-lexicon.txt"  # beside LibriSpeech/, in s3prl's lexicon format
MAX_ATTEMPTS = 8
SC_SECONDS = 1.0

# ---------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Size:
    """How much of everything. (speakers, utterances) per split; SC counts are speakers."""

    libri: dict[str, tuple[int, int]]
    sc_speakers: dict[str, int]  # "train" / "dev" / "share" (the archive's own test share), by hash rule
    sc_reps: int  # takes of every word per speaker
    sc_test_speakers: int
    sc_test_unknown: int
    sc_test_silence: int
    # Length range of each background-noise file. Train and dev `_silence_` examples are 1 s
    # crops of these files, so their total length sets silence's share of train and dev;
    # sized so it stays near the real archive's (~1/12), not half of dev.
    noise_seconds: tuple[int, int]
    fsc: dict[str, tuple[int, int]]
    slurp: dict[str, tuple[int, int]]  # (speakers, texts); each text has 1-3 recordings
    work_items: int  # batches the plan is cut into (fixed: never depends on the worker count)


SIZES: dict[str, Size] = {
    "tiny": Size(
        libri={"train-clean-100": (6, 60), "dev-clean": (2, 15), "test-clean": (2, 15)},
        sc_speakers={"train": 10, "dev": 2, "share": 1}, sc_reps=1,
        sc_test_speakers=3, sc_test_unknown=12, sc_test_silence=12, noise_seconds=(2, 2),
        fsc={"train": (6, 60), "valid": (2, 15), "test": (2, 15)},
        slurp={"train": (6, 32), "devel": (3, 8), "test": (3, 8), "train_synthetic": (2, 10)},
        work_items=2,
    ),
    "small": Size(
        libri={"train-clean-100": (30, 900), "dev-clean": (6, 150), "test-clean": (6, 150)},
        sc_speakers={"train": 28, "dev": 5, "share": 2}, sc_reps=3,
        sc_test_speakers=8, sc_test_unknown=60, sc_test_silence=60, noise_seconds=(4, 6),
        fsc={"train": (20, 600), "valid": (4, 100), "test": (4, 100)},
        slurp={"train": (30, 320), "devel": (8, 60), "test": (8, 60), "train_synthetic": (6, 80)},
        work_items=8,
    ),
}

# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Job:
    """One text to synthesize, by one or more voices (SLURP: several recordings).

    `outputs` are paths relative to the corpus root, one per voice. `words` is fixed for
    Speech Commands; otherwise the worker draws the text (and labels) from `kind`.
    """

    kind: str  # the corpus kind it belongs to (bench.data.corpus.KINDS)
    key: str
    outputs: tuple[str, ...]
    voices: tuple[Voice, ...]
    words: tuple[str, ...] = ()
    textgrid: str = ""
    intent: tuple[str, ...] | None = None  # FSC (action, object, location) / SLURP (scenario, action)


@dataclass
class Done:
    """What a worker made of a Job: the text actually spoken, its labels, each file's length."""

    key: str
    text: str
    labels: dict[str, str] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)


def _rng(seed: int, *parts: str | int) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(p).encode()) for p in parts])


def _pool_voices(rng: np.random.Generator, n: int, taken: set[Voice]) -> list[Voice]:
    from bench.synth.speakers import make_voices

    out = [v for v in make_voices(rng, n + len(taken) + 8) if v not in taken][:n]
    taken.update(out)
    return out


def _distinct_ints(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[int]:
    return [int(x) + lo for x in rng.choice(hi - lo, size=n, replace=False)]


def plan(size: Size, seed: int) -> dict[str, list[Job]]:
    """Every job, per corpus, in a fixed order. Speakers never cross splits."""
    from bench.data.speech_commands import hash_split
    from bench.synth.text import FSC_INTENTS, SC_KEYWORDS, SC_OTHER_WORDS, SLURP_TEMPLATES

    taken: set[Voice] = set()
    jobs: dict[str, list[Job]] = {kind: [] for kind in KINDS}

    rng = _rng(seed, "librispeech")
    n_spk = sum(s for s, _ in size.libri.values())
    spk_ids = _distinct_ints(rng, n_spk, 19, 9000)
    chapters = _distinct_ints(rng, 2 * n_spk, 100, 300000)
    k = 0
    for split, (n_speakers, n_utts) in size.libri.items():
        voices = _pool_voices(rng, n_speakers, taken)
        for i in range(n_utts):
            s = i % n_speakers
            spk = spk_ids[k + s]
            per_spk = i // n_speakers
            ch = chapters[2 * (k + s) + (per_spk % 2)]
            uid = f"{spk}-{ch}-{per_spk // 2:04d}"
            rel = f"{split}/{spk}/{ch}"
            jobs["librispeech"].append(Job("librispeech", uid, (f"LibriSpeech/{rel}/{uid}.flac",), (voices[s],),
                                     textgrid=f"librispeech_alignments/{rel}/{uid}.TextGrid"))
        k += n_speakers

    # Speech Commands: speaker hex ids drawn until each hash-rule bucket has its share
    rng = _rng(seed, "speech_commands")
    want = dict(size.sc_speakers)
    hex_ids: dict[str, list[str]] = {b: [] for b in want}
    while any(len(hex_ids[b]) < want[b] for b in want):
        h = f"{int(rng.integers(2**32)):08x}"
        bucket = {"dev": "dev", None: "share", "train": "train"}[hash_split(f"{h}_nohash_0.wav")]
        if len(hex_ids[bucket]) < want[bucket] and all(h not in v for v in hex_ids.values()):
            hex_ids[bucket].append(h)
    words = SC_KEYWORDS + SC_OTHER_WORDS
    for bucket in ("train", "dev", "share"):
        voices = _pool_voices(rng, len(hex_ids[bucket]), taken)
        for h, v in zip(hex_ids[bucket], voices):
            for w in words:
                for n in range(size.sc_reps):
                    rel = f"speech_commands_v0.01/{w}/{h}_nohash_{n}.wav"
                    jobs["speech_commands"].append(Job("speech_commands", rel, (rel,), (v,), words=(w,)))
    test_hex = [f"{int(x):08x}" for x in rng.choice(2**32, size=size.sc_test_speakers, replace=False)]
    test_voices = _pool_voices(rng, size.sc_test_speakers, taken)
    for h, v in zip(test_hex, test_voices):
        for w in SC_KEYWORDS:
            for n in range(size.sc_reps):
                rel = f"speech_commands_test_set_v0.01/{w}/{h}_nohash_{n}.wav"
                jobs["speech_commands"].append(Job("speech_commands", rel, (rel,), (v,), words=(w,)))
    for i in range(size.sc_test_unknown):
        h, v = test_hex[i % len(test_hex)], test_voices[i % len(test_voices)]
        w = SC_OTHER_WORDS[int(rng.integers(len(SC_OTHER_WORDS)))]
        rel = f"speech_commands_test_set_v0.01/_unknown_/{h}_nohash_{i}.wav"
        jobs["speech_commands"].append(Job("speech_commands", rel, (rel,), (v,), words=(w,)))

    # FSC: every split cycles through all 31 intents (the real train set holds every label)
    rng = _rng(seed, "fsc")
    for split, (n_speakers, n_utts) in size.fsc.items():
        order = rng.permutation(len(FSC_INTENTS))
        voices = _pool_voices(rng, n_speakers, taken)
        ids = ["".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), 16))
               for _ in range(n_speakers)]
        for i in range(n_utts):
            s = i % n_speakers
            u = rng.integers(0, 16, size=32)
            hx = "".join(f"{x:x}" for x in u)
            name = f"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-{hx[20:]}"
            rel = f"fluent_speech_commands_dataset/wavs/speakers/{ids[s]}/{name}.wav"
            jobs["fsc"].append(Job("fsc", f"{split}:{rel}", (rel,), (voices[s],),
                                   intent=FSC_INTENTS[int(order[i % len(order)])]))

    rng = _rng(seed, "slurp")
    intents = list(SLURP_TEMPLATES)
    slurp_id = 1000
    for split, (n_speakers, n_texts) in size.slurp.items():
        order = rng.permutation(len(intents))  # cycled, so a train split of >= 31 texts has every intent
        voices = _pool_voices(rng, n_speakers, taken)
        folder = "slurp_synth" if split == "train_synthetic" else "slurp_real"
        for i in range(n_texts):
            slurp_id += 1 + int(rng.integers(5))
            n_rec = 1 if split == "train_synthetic" else 1 + int(rng.integers(min(3, n_speakers)))
            who = rng.choice(n_speakers, size=n_rec, replace=False)
            outs = tuple(f"slurp/audio/{folder}/audio-{slurp_id}-{j}.flac" for j in range(n_rec))
            jobs["slurp"].append(Job("slurp", f"{split}:{slurp_id}", outs, tuple(voices[int(w)] for w in who),
                                     intent=intents[int(order[i % len(order)])]))
    return jobs


def work_items(jobs: dict[str, list[Job]], n_items: int) -> list[list[Job]]:
    """The plan cut into `n_items` consecutive batches (each one fresh process's work).

    Few, large batches: every worker process pays for importing torch, which costs more
    than synthesizing a few hundred utterances.
    """
    flat = [job for corpus_jobs in jobs.values() for job in corpus_jobs]
    n = math.ceil(len(flat) / max(1, n_items))
    return [flat[i : i + n] for i in range(0, len(flat), n)]


# ---------------------------------------------------------------- the worker


def _text_for(job: Job, rng: np.random.Generator) -> tuple[list[str], str, dict[str, str]]:
    """(spoken words, transcript as the corpus writes it, labels)."""
    from bench.synth import text as T

    if job.kind == "speech_commands":
        return list(job.words), job.words[0], {}
    if job.kind == "librispeech":
        words = T.read_sentence(rng)
        return words, " ".join(words).upper(), {}
    if job.kind == "fsc":
        cmd = T.fsc_command(rng, job.intent)
        return T.spoken_words(cmd.transcription), cmd.transcription, {
            "action": cmd.action, "object": cmd.object, "location": cmd.location}
    if job.kind == "slurp":
        st = T.slurp_text(rng, job.intent)
        return T.spoken_words(st.sentence), st.sentence, {
            "scenario": st.scenario, "action": st.action, "intent": st.intent, "annotation": st.annotation}
    raise ValueError(f"unknown job kind {job.kind!r}")


class _Resampler:
    """22.05 -> 16 kHz with torchaudio's sinc kernel, built once per worker (not per utterance)."""

    def __init__(self) -> None:
        import torchaudio

        self._t = torchaudio.transforms.Resample(ESPEAK_RATE, SAMPLE_RATE)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self._t(torch.from_numpy(audio)).numpy()


def _render(engine, resample: _Resampler, words: list[str], voice: Voice, espeak_seed: int):
    """Synthesize and align; 16 kHz float32 audio, word and phone segments. Raises AlignmentError."""
    from bench.synth.phonemes import align, check_alignment

    syn = engine.synthesize(words, voice, espeak_seed)
    if len(syn.audio) == 0:
        from bench.synth.phonemes import AlignmentError

        raise AlignmentError(f"no audio for {words}")
    word_segs, phones = align(words, syn.text, syn.events, syn.audio, ESPEAK_RATE)
    audio = resample(syn.audio.astype(np.float32) / 32768.0)
    check_alignment(words, word_segs, phones, len(audio) / SAMPLE_RATE)
    return audio, word_segs, phones


def _fit_one_second(audio: np.ndarray, start: float, end: float, rng: np.random.Generator) -> np.ndarray:
    """Cut the spoken word (with a short margin) and place it at a random spot in exactly 1 s."""
    from bench.synth.phonemes import AlignmentError

    margin = 0.04
    a = max(0, int((start - margin) * SAMPLE_RATE))
    b = min(len(audio), int(math.ceil((end + margin) * SAMPLE_RATE)))
    clip = audio[a:b]
    n = int(SC_SECONDS * SAMPLE_RATE)
    if len(clip) > n:
        raise AlignmentError(f"word lasts {len(clip) / SAMPLE_RATE:.2f} s, more than {SC_SECONDS} s")
    out = np.zeros(n, dtype=np.float32)
    off = int(rng.integers(0, n - len(clip) + 1))
    out[off : off + len(clip)] = clip
    return out


def _write(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "FLAC" if path.suffix == ".flac" else "WAV"
    sf.write(str(path), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format=fmt)


def run_item(args: tuple[str, int, list[Job]], tick=lambda: None) -> list[Done]:
    """Synthesize one work item in this (fresh) process. Failures are redrawn, never written."""
    root_s, seed, jobs = args
    import torch

    torch.set_num_threads(1)
    from bench.data.textgrid import write_textgrid
    from bench.synth.espeak import Engine
    from bench.synth.phonemes import AlignmentError, UnknownPhoneme
    from bench.synth.speakers import jitter

    root = Path(root_s)
    engine = Engine()
    resample = _Resampler()
    out: list[Done] = []
    for job in jobs:
        errors = []
        for attempt in range(MAX_ATTEMPTS):
            rng = _rng(seed, job.key, attempt)
            words, transcript, labels = _text_for(job, rng)
            rendered = []
            try:
                for k, voice in enumerate(job.voices):
                    v = voice if attempt == 0 else jitter(voice, rng)
                    audio, word_segs, phones = _render(engine, resample, words, v, zlib.crc32(f"{job.key}/{k}/{attempt}".encode()))
                    # recording level varies by take; peak-normalised, so nothing clips
                    audio = audio * np.float32(rng.uniform(0.3, 0.9) / max(float(np.abs(audio).max()), 1e-4))
                    if job.kind == "speech_commands":
                        audio = _fit_one_second(audio, word_segs[0].start, word_segs[-1].end, rng)
                    rendered.append((audio, word_segs, phones))
            except (AlignmentError, UnknownPhoneme) as e:
                errors.append(str(e))
                continue
            durations = []
            for rel, (audio, word_segs, phones) in zip(job.outputs, rendered):
                _write(root / rel, audio)
                durations.append(len(audio) / SAMPLE_RATE)
            if job.textgrid:
                audio, word_segs, phones = rendered[0]
                write_textgrid(root / job.textgrid, {"words": word_segs, "phones": phones}, len(audio) / SAMPLE_RATE)
            out.append(Done(job.key, transcript, labels, durations))
            tick()
            break
        else:
            raise RuntimeError(f"could not synthesize {job.key} in {MAX_ATTEMPTS} attempts: {'; '.join(errors[-3:])}")
    return out


def _worker_main(in_path: str, out_path: str, parent_pid: str) -> None:
    """Entry point of a worker process: one pickled work item in, its pickled results out.

    Prints one "+" line per finished job so the parent can move its progress bar, and stops
    when the parent has died (a killed run must not keep writing into the folder).
    """
    _die_with_parent()
    with open(in_path, "rb") as f:
        args = pickle.load(f)

    def tick() -> None:
        if os.getppid() != int(parent_pid):
            raise SystemExit("layerbench synth: parent process is gone; stopping")
        print("+", flush=True)

    results = run_item(args, tick=tick)
    with open(out_path, "wb") as f:
        pickle.dump(results, f)


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this worker when its parent dies, even by SIGKILL: a
    worker must not write into a staging folder that the next run is about to clear."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the parent check in `tick` still stops the worker


def _run_one(root: Path, seed: int, item: list[Job], index: int, tmp: Path, tick, procs: list) -> list[Done]:
    """Run one work item in a freshly started interpreter (a clean espeak-ng state)."""
    in_path, out_path, err_path = (tmp / f"item{index}.{ext}" for ext in ("in", "out", "err"))
    with open(in_path, "wb") as f:
        pickle.dump((str(root), seed, item), f)
    cmd = [sys.executable, "-c", "import sys; from bench.synth.corpora import _worker_main; _worker_main(*sys.argv[1:])",
           str(in_path), str(out_path), str(os.getpid())]
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        procs.append(proc)
        for line in proc.stdout:
            if line.strip() == "+":
                tick()
        rc = proc.wait()
    if rc != 0:
        tail = "\n".join(err_path.read_text().strip().splitlines()[-8:])
        raise RuntimeError(f"synthesis worker for work item {index} ({item[0].key} ...) failed:\n{tail}")
    with open(out_path, "rb") as f:
        return pickle.load(f)


def _run_items(root: Path, seed: int, items: list[list[Job]], workers: int, tick):
    """Results of every work item, in plan order, `workers` processes at a time."""
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="layerbench-synth-") as tmp, ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_run_one, root, seed, item, i, Path(tmp), tick, procs) for i, item in enumerate(items)]
        try:
            for fut in futures:
                yield fut.result()
        except BaseException:  # an error or Ctrl-C: stop every worker we started, then re-raise
            for fut in futures:
                fut.cancel()
            for proc in list(procs):
                if proc.poll() is None:
                    proc.terminate()
            for proc in list(procs):
                proc.wait()
            raise


# ---------------------------------------------------------------- noise (parent)


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Deterministic background noise of a few familiar colours, scaled to a moderate level."""
    t = np.arange(n) / SAMPLE_RATE
    white = rng.standard_normal(n)
    if kind == "white_noise":
        x = white
    elif kind in ("pink_noise", "brown_noise"):
        spec = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
        spec /= np.sqrt(f) if kind == "pink_noise" else f
        x = np.fft.irfft(spec, n)
    elif kind == "running_tap":
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spec *= np.exp(-(((f - 2500.0) / 1500.0) ** 2))
        x = np.fft.irfft(spec, n) * (1 + 0.3 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6)))
    elif kind == "hum":
        x = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 6)) / h for h in (1, 2, 3, 5)) + 0.05 * white
    elif kind == "exercise_bike":
        spec = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
        x = np.fft.irfft(spec / f**0.7, n) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.4 * t) ** 2)
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    x = x / (np.abs(x).max() + 1e-9)
    return (0.3 * x).astype(np.float32)


NOISES = ("white_noise", "pink_noise", "brown_noise", "running_tap", "hum", "exercise_bike")

# ---------------------------------------------------------------- index files (parent)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_libri(root: Path, jobs: list[Job], done: dict[str, Done]) -> None:
    chapters: dict[Path, list[str]] = {}
    for job in jobs:
        audio = root / job.outputs[0]
        chapters.setdefault(audio.parent / f"{'-'.join(job.key.split('-')[:2])}.trans.txt", []).append(
            f"{job.key} {done[job.key].text}")
    for path, lines in chapters.items():
        _write_text(path, "\n".join(sorted(lines)) + "\n")


def write_synthetic_lexicon(root: Path) -> Path:
    """The LibriSpeech part's lexicon in s3prl's format, from its alignments: every word with
    each pronunciation espeak gave it, the most frequent first (ties: first met in TextGrid
    path order), so a reader that takes a word's first entry — s3prl's libriphone recipe —
    gets its usual pronunciation."""
    from collections import Counter

    from bench.data.arpabet import is_silence
    from bench.data.lexicon import write_lexicon
    from bench.data.textgrid import read_textgrid

    eps = 1e-6
    counts: dict[str, Counter] = {}
    for grid in sorted((root / "librispeech_alignments").rglob("*.TextGrid")):
        tiers = read_textgrid(grid)
        phones = [p for p in tiers["phones"] if not is_silence(p.label)]
        for w in tiers["words"]:
            if is_silence(w.label):
                continue
            pron = tuple(p.label for p in phones if p.start >= w.start - eps and p.end <= w.end + eps)
            counts.setdefault(w.label.upper(), Counter())[pron] += 1
    path = root / LEXICON
    write_lexicon(path, [(w, pron) for w in sorted(counts) for pron, _ in counts[w].most_common()])
    return path


def _write_speech_commands(root: Path, size: Size, seed: int) -> None:
    """Noise files, split lists by the hash rule, and the test set's _silence_ crops."""
    from bench.data.speech_commands import hash_split

    rng = _rng(seed, "noise")
    main = root / "speech_commands_v0.01"
    lo, hi = size.noise_seconds
    noises = {}
    for kind in NOISES:
        noises[kind] = _noise(kind, int(rng.integers(lo, hi + 1)) * SAMPLE_RATE, rng)
        _write(main / "_background_noise_" / f"{kind}.wav", noises[kind])
    files = sorted(p.relative_to(main).as_posix() for p in main.glob("*/*.wav") if not p.parent.name.startswith("_"))
    _write_text(main / "validation_list.txt", "".join(f"{f}\n" for f in files if hash_split(f) == "dev"))
    _write_text(main / "testing_list.txt", "".join(f"{f}\n" for f in files if hash_split(f) is None))
    test = root / "speech_commands_test_set_v0.01" / "_silence_"
    for i in range(size.sc_test_silence):
        # the test set's silence comes from other noise than training's (fresh draws, random gain)
        kind = NOISES[i % len(NOISES)]
        crop = _noise(kind, SAMPLE_RATE, rng) * float(rng.uniform(0.05, 1.0))
        _write(test / f"{int(rng.integers(2**32)):08x}_nohash_{i}.wav", crop)


def _write_fsc(root: Path, jobs: list[Job], done: dict[str, Done]) -> None:
    import pandas as pd

    rows: dict[str, list[dict]] = {}
    for job in jobs:
        split, rel = job.key.split(":", 1)
        d = done[job.key]
        rows.setdefault(split, []).append({
            "path": rel.split("/", 1)[1], "speakerId": rel.split("/")[-2], "transcription": d.text,
            "action": d.labels["action"], "object": d.labels["object"], "location": d.labels["location"]})
    folder = root / "fluent_speech_commands_dataset" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for split, recs in rows.items():
        pd.DataFrame(recs).to_csv(folder / f"{split}_data.csv", index=True, lineterminator="\n")


def _write_slurp(root: Path, jobs: list[Job], done: dict[str, Done]) -> None:
    lines: dict[str, list[str]] = {}
    for job in jobs:
        split, sid = job.key.split(":", 1)
        d = done[job.key]
        rec = {
            "slurp_id": int(sid), "sentence": d.text, "sentence_annotation": d.labels["annotation"],
            "intent": d.labels["intent"], "action": d.labels["action"], "scenario": d.labels["scenario"],
            "recordings": [{"file": Path(o).name, "wer": 0.0, "ent_wer": 0.0, "status": "correct"} for o in job.outputs],
        }
        lines.setdefault(split, []).append(json.dumps(rec))
    folder = root / "slurp" / "dataset" / "slurp"
    for split, ls in lines.items():
        _write_text(folder / f"{split}.jsonl", "\n".join(ls) + "\n")


# ---------------------------------------------------------------- entry points


@dataclass
class SynthInfo:
    seed: int
    size: str
    generator_version: int
    utterances: dict[str, int]
    hours: float
    versions: dict[str, str]


def read_info(root: Path) -> SynthInfo | None:
    path = Path(root) / INFO_FILE
    if not path.is_file():
        return None
    try:
        return SynthInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{path} is not a synthetic-corpus marker written by `layerbench synth` ({e})") from e


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("espeakng-loader", "numpy", "torch", "torchaudio", "soundfile", "layerbench"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _prepare(root: Path) -> None:
    """Make `root` ready for a fresh generation without ever deleting someone else's corpus."""
    present = [d for d in OWNED if (root / d).exists()]
    ours = (root / STARTED_FILE).exists() or (root / INFO_FILE).exists()
    if present and not ours:
        raise ValueError(f"{root} already holds {', '.join(present)} not written by `layerbench synth`; "
                         "choose an empty --out folder")
    for d in present:
        shutil.rmtree(root / d)
    root.mkdir(parents=True, exist_ok=True)
    (root / STARTED_FILE).write_text("layerbench synth started here and has not finished\n", encoding="utf-8")


# corpus kind -> writer of its files from the synthesized takes: (stage, size, seed, jobs, done)
WRITERS = {
    "librispeech": lambda stage, spec, seed, jobs, done: (_write_libri(stage, jobs["librispeech"], done),
                                                          write_synthetic_lexicon(stage)),
    "speech_commands": lambda stage, spec, seed, jobs, done: _write_speech_commands(stage, spec, seed),
    "fsc": lambda stage, spec, seed, jobs, done: _write_fsc(stage, jobs["fsc"], done),
    "slurp": lambda stage, spec, seed, jobs, done: _write_slurp(stage, jobs["slurp"], done),
}


def generate(root: str | Path, size: str | Size = "small", seed: int = 0, workers: int | None = None,
             progress: bool = True) -> SynthInfo:
    """Write the four corpora under `root` (an interrupted earlier run there is redone).

    `size` is a preset name or a `Size` (recorded as "custom" in the marker).
    """
    missing = [kind for kind in KINDS if kind not in WRITERS]
    if missing:  # checked before any synthesis: a registered kind needs its writer here
        raise ValueError(f"the synthetic corpus has no writer for corpus kind(s) {', '.join(missing)}: "
                         "add one to bench.synth.corpora.WRITERS")
    root = Path(root).expanduser().resolve()
    with _corpus_lock(root, progress):
        return _generate(root, size, seed, workers, progress)


def _corpus_lock(root: Path, progress: bool):
    """One writer per corpus folder, across processes and hosts: a lock file beside `root`."""
    from bench.locks import exclusive

    root.parent.mkdir(parents=True, exist_ok=True)

    def waiting(holder) -> None:
        if progress:
            print(f"synthetic corpus {root} is being written by {holder.describe()}; waiting", file=sys.stderr)

    return exclusive(root.parent / f".{root.name}.synth.lock", on_wait=waiting)


def _generate(root: Path, size: str | Size, seed: int, workers: int | None, progress: bool) -> SynthInfo:
    """Synthesize into a private staging folder inside `root`, then move the corpora in and write
    the marker last: a killed run leaves no half-written corpus file where a reader looks."""
    from tqdm import tqdm

    from bench.locks import HOST
    from bench.synth.espeak import load_library

    if isinstance(size, Size):
        spec, size = size, "custom"
    elif size in SIZES:
        spec = SIZES[size]
    else:
        raise ValueError(f"unknown synthetic corpus size {size!r}; expected one of: {', '.join(SIZES)}")
    load_library()  # fail early, with the install hint, when the extra is missing
    _prepare(root)
    (root / INFO_FILE).unlink(missing_ok=True)
    for stale in root.glob(".partial~*"):  # left by a killed writer (we hold the lock: no live one)
        shutil.rmtree(stale, ignore_errors=True)
    stage = root / f".partial~{HOST}~{os.getpid()}"
    stage.mkdir()
    jobs = plan(spec, seed)
    items = work_items(jobs, spec.work_items)
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    done: dict[str, Done] = {}
    total = sum(len(i) for i in items)
    lock = threading.Lock()
    with tqdm(total=total, desc="synthesizing", unit="utt", disable=not progress) as bar:

        def tick() -> None:
            with lock:
                bar.update(1)

        for results in _run_items(stage, seed, items, workers, tick):
            for d in results:
                done[d.key] = d
    for kind in KINDS:  # every registered corpus kind (checked in `generate`), so every task has its corpus
        WRITERS[kind](stage, spec, seed, jobs, done)
    for d in OWNED:
        if (stage / d).exists():
            (stage / d).rename(root / d)
    stage.rmdir()
    seconds = sum(sum(d.durations) for d in done.values()) + spec.sc_test_silence * SC_SECONDS
    counts = {kind: sum(len(j.outputs) for j in js) for kind, js in jobs.items()}
    counts["speech_commands"] += spec.sc_test_silence
    info = SynthInfo(seed=seed, size=size, generator_version=GENERATOR_VERSION, utterances=counts,
                     hours=round(seconds / 3600, 4), versions=_versions())
    tmp = root / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(root / INFO_FILE)
    (root / STARTED_FILE).unlink(missing_ok=True)
    return info


def is_complete(root: str | Path, size: str, seed: int) -> bool:
    """True when `root` holds a finished corpus of this size and seed; a different one is an error."""
    info = read_info(Path(root))
    if info is None:
        return False
    if (info.size, info.seed, info.generator_version) == (size, seed, 1):
        _upgrade_v1(Path(root), info)
        return True
    if (info.size, info.seed, info.generator_version) != (size, seed, GENERATOR_VERSION):
        raise ValueError(f"{root} holds a synthetic corpus of size {info.size!r}, seed {info.seed}, generator "
                         f"v{info.generator_version}; asked for size {size!r}, seed {seed}, v{GENERATOR_VERSION}: "
                         "choose another --out folder (or delete this one)")
    return True


def _upgrade_v1(root: Path, info: SynthInfo) -> None:
    """Generator 1 wrote everything but the lexicon: add it (from the alignments) in place."""
    write_synthetic_lexicon(root)
    info.generator_version = GENERATOR_VERSION
    tmp = root / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(root / INFO_FILE)


def ensure_corpus(out_dir: str | Path, size: str = "small", seed: int = 0, workers: int | None = None,
                  progress: bool = True) -> Path:
    """The corpus root, generated first when it is missing or was left unfinished.

    Safe to call from many processes at once (tasks of a cluster job): one writes it under a
    lock, the others wait for it and then find it complete.
    """
    root = Path(out_dir).expanduser().resolve()
    if is_complete(root, size, seed):
        return root
    with _corpus_lock(root, progress):
        if not is_complete(root, size, seed):
            _generate(root, size, seed, workers, progress)
    return root
