"""Survive any kill: SIGKILL the runner at random moments and rerun; nothing finished is redone,
nothing half-written is left, and the tables equal an uninterrupted run's.

The suite has 12 units (four feature upstreams x IC, KS and CCA-mel, a few steps each) on the
tiny synthetic corpus. Kill moments are drawn from a seeded generator: the start-up time (a
dry run of the same suite: imports and planning) plus a fraction of the uninterrupted run's
remaining wall time, both measured in the same test, so they land at comparable stages
(pooled-cache extraction, training, result writing, tables) on any machine, fast or loaded.
A second test kills the synthetic-corpus generator mid-way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.results import read_record
from suite_fixtures import feature_suite, result_stamps, tables

ROOT = Path(__file__).resolve().parent.parent
KILLS = 10
ZOO = [{"name": "FBANK", "spec": "fbank"}, {"name": "MFCC", "spec": "mfcc"},
       {"name": "FBANK-nc", "spec": "fbank:no_cmvn"}, {"name": "MFCC-nc", "spec": "mfcc:no_cmvn"}]  # x3 = 12 units


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def assert_nothing_half_written(*folders: Path, final: bool) -> None:
    """Every visible result/record parses and every cache file loads; at the end, no temporary
    file, staging folder or lock is left either."""
    for folder in folders:
        for p in folder.rglob("*.json"):
            if not p.name.startswith("."):
                json.loads(p.read_text())  # raises on a truncated file
                if "results" in p.parts and "cache" not in p.parts:
                    read_record(p)
        for p in folder.rglob("*.pt"):
            if not p.name.startswith("."):
                torch.load(p, map_location="cpu", weights_only=True)
        if final:
            leftovers = [p for pattern in ("*.tmp", ".partial~*", "*.lock", "*.new") for p in folder.rglob(pattern)]
            assert not leftovers, leftovers


@pytest.mark.slow
def test_sigkill_at_ten_random_moments_then_resume(tmp_path, synth_root):
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    t0 = time.monotonic()
    ref = subprocess.run(cli("run", str(feature_suite(tmp_path, synth_root, ref_out, "kill", ZOO)), "--no-progress"),
                         env=env(), capture_output=True, text=True, timeout=900)
    t_ref = time.monotonic() - t0
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert len(result_stamps(ref_out)) == 12

    suite = feature_suite(tmp_path / "b", synth_root, out, "kill", ZOO)
    t0 = time.monotonic()
    dry = subprocess.run(cli("run", str(suite), "--dry-run", "--no-progress"), env=env(), capture_output=True,
                         text=True, timeout=300)
    t_start = time.monotonic() - t0
    assert dry.returncode == 0 and not out.joinpath("results").exists(), dry.stderr[-3000:]
    rng = random.Random(16)
    seen: dict[Path, tuple[int, int]] = {}
    progress: list[int] = []  # finished units after each attempt
    for attempt in range(KILLS):
        proc = subprocess.Popen(cli("run", str(suite), "--no-progress"), env=env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=t_start + rng.uniform(0.06, 0.2) * max(t_ref - t_start, 1.0))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # the runner only: its workers must cope with losing it
            proc.wait()
        now = result_stamps(out)
        for path, stamp in seen.items():
            assert now.get(path) == stamp, f"attempt {attempt}: finished {path} was rewritten or removed"
        progress.append(len(now))
        seen.update(now)
        assert_nothing_half_written(out, final=False)

    final = subprocess.run(cli("run", str(suite), "--no-progress"), env=env(), capture_output=True, text=True,
                           timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    now = result_stamps(out)
    assert len(now) == 12
    for path, stamp in seen.items():
        assert now[path] == stamp, f"finished {path} was recomputed by the final run"
    # the kills really interrupted the suite between units, not only before the first or after the last
    assert sum(0 < n < 12 for n in progress) >= 3, f"finished units after each kill: {progress}"
    assert_nothing_half_written(out, synth_root, final=True)
    assert tables(out) == tables(ref_out)
    for path in now:  # the same numbers, unit by unit
        a = json.loads((ref_out / path.relative_to(out)).read_text())
        b = json.loads(path.read_text())
        assert a["config_hash"] == b["config_hash"] and a.get("per_layer") == b.get("per_layer")


MICRO = dict(
    libri={"train-clean-100": (2, 6), "dev-clean": (1, 2), "test-clean": (1, 2)},
    sc_speakers={"train": 2, "dev": 1, "share": 1}, sc_reps=1, sc_test_speakers=1, sc_test_unknown=2,
    sc_test_silence=2, noise_seconds=(1, 1), fsc={"train": (2, 6), "valid": (1, 2), "test": (1, 2)},
    slurp={"train": (2, 4), "devel": (1, 2), "test": (1, 2), "train_synthetic": (1, 2)}, work_items=1,
)
GENERATE = ("import json, sys; from bench.synth.corpora import Size, generate; "
            "generate(sys.argv[1], Size(**json.loads(sys.argv[2])), seed=3, workers=1, progress=False)")


def generate(root: Path) -> list[str]:
    return [sys.executable, "-c", GENERATE, str(root), json.dumps(MICRO)]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "SYNTH_INFO.json"}


@pytest.mark.slow
def test_synthesis_killed_midway_leaves_no_corpus_file_and_is_redone(tmp_path):
    from bench.synth.corpora import INFO_FILE, OWNED

    pytest.importorskip("espeakng_loader")
    ref, root = tmp_path / "ref", tmp_path / "corpus"
    assert subprocess.run(generate(ref), env=env(), timeout=600).returncode == 0

    proc = subprocess.Popen(generate(root), env=env(), start_new_session=True)
    deadline = time.monotonic() + 300
    while not any(p.suffix in (".flac", ".wav") for p in root.glob(".partial~*/**/*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the generator ended before it wrote audio"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # a reader sees no corpus at all: no marker, none of the corpus folders, only the staging area
    assert not (root / INFO_FILE).exists() and not any((root / d).exists() for d in OWNED)
    assert list(root.glob(".partial~*"))

    assert subprocess.run(generate(root), env=env(), timeout=600).returncode == 0
    time.sleep(0.5)  # any worker of the killed run is gone by now (it dies with its parent)
    assert (root / INFO_FILE).is_file() and not list(root.glob(".partial~*")) and not list(root.rglob("*.tmp"))
    assert _files(root) == _files(ref)
