"""Launching: the `launcher:` section and options, claims and stale locks, and bad input around a launch.

These run without a cluster: a stand-in `sinfo` on PATH answers for the partition check, and
the claim tests use a live `sleep` process (then a dead pid) as the other holder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import launch, locks, runner
from bench.cli import main as cli_main
from bench.config import ConfigError
from results_fixtures import stand_in
from bench.launch import slurm


def _suite_file(tmp_path: Path, synth_root: Path, **changes) -> Path:
    data = {
        "name": "t",
        "zoo": [{"name": "FBANK", "spec": "fbank"}],
        "tasks": [{"task": "ks", "preset": "quick"}, {"task": "ic", "preset": "quick"}],
        "corpora": {"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}},
        "out": str(tmp_path / "out"),
    }
    data.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------- the launcher section


def test_launcher_section_and_options(tmp_path, synth_root):
    suite = runner.load_suite(_suite_file(tmp_path, synth_root, launcher={
        "kind": "slurm", "partition": "gpu", "gpus_per_unit": 1, "time": "1-00:00:00", "array_parallelism": 8}))
    spec = suite.launcher
    assert (spec.kind, spec.partition, spec.gpus_per_unit, spec.array_parallelism) == ("slurm", "gpu", 1, 8)
    assert spec.time_minutes == 24 * 60
    assert runner.load_suite(_suite_file(tmp_path, synth_root)).launcher.kind == "local"  # the default
    over = launch.with_options(spec, partition="debug", time="30", gpus_per_unit=None)
    assert (over.partition, over.time_minutes, over.gpus_per_unit) == ("debug", 30, 1)
    assert [launch.parse_time(t, "w") for t in ("90", "1:30:00", "45:30", "1-2", "2-00:00:00")] == [
        90, 90, 46, 26 * 60, 2 * 24 * 60]


@pytest.mark.parametrize("section, expected", [
    ({"kind": "slurn"}, ["launcher.kind", "'slurn'", "did you mean 'slurm'"]),
    ({"kind": "slurm", "partiton": "gpu"}, ["launcher", "unknown key 'partiton'", "did you mean 'partition'"]),
    ({"kind": "slurm", "time": "soon"}, ["launcher.time", "'soon'", "not a Slurm time"]),
    ({"kind": "slurm", "gpus_per_unit": -1}, ["launcher.gpus_per_unit", ">= 0"]),
    ({"kind": "slurm", "array_parallelism": 0}, ["launcher.array_parallelism", ">= 1"]),
])
def test_launcher_section_errors_name_the_file_and_key(tmp_path, synth_root, section, expected):
    path = _suite_file(tmp_path, synth_root, launcher=section)
    with pytest.raises(ConfigError) as err:
        runner.load_suite(path)
    for part in [str(path), *expected]:
        assert part in str(err.value), str(err.value)


def test_bad_slurm_time_on_the_command_line(tmp_path, synth_root, capsys):
    rc = cli_main(["run", str(_suite_file(tmp_path, synth_root)), "--launcher", "slurm", "--slurm-time", "0:00"])
    assert rc == 2 and "--slurm-*" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad input around launching


def _fake_slurm(tmp_path: Path, partitions: str) -> str:
    """A PATH with stand-in `sinfo` / `sbatch` that list `partitions` (for the checks only)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "sinfo").write_text(f"#!/bin/sh\nprintf '{partitions}\\n'\n")
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'stand-in sbatch: nothing submitted' >&2\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return str(bin_dir)


def test_no_slurm_on_the_machine(tmp_path, synth_root, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rc = cli_main(["run", str(_suite_file(tmp_path, synth_root)), "--launcher", "slurm", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--launcher slurm: no Slurm on this machine" in err and "scripts/slurm-up" in err
    assert not (tmp_path / "out").exists()  # nothing was started


def test_unknown_partition_names_the_option_and_the_known_ones(tmp_path, synth_root, monkeypatch, capsys):
    monkeypatch.setenv("PATH", _fake_slurm(tmp_path, "debug*\\ngpu-a100") + os.pathsep + os.environ["PATH"])
    rc = cli_main(["run", str(_suite_file(tmp_path, synth_root)), "--launcher", "slurm",
                   "--slurm-partition", "gpu-a10", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--slurm-partition" in err and "unknown partition 'gpu-a10'" in err
    assert "did you mean 'gpu-a100'" in err and "debug*, gpu-a100" in err


def test_unwritable_results_folder(tmp_path, synth_root, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc = cli_main(["run", str(_suite_file(tmp_path, synth_root)), "--out", str(blocker / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and f"results folder {blocker / 'out'}" in err and "not writable" in err and "--out" in err


def test_results_folder_shared_by_two_suites_is_refused(tmp_path, synth_root, monkeypatch):
    out = tmp_path / "shared"
    first = runner.load_suite(_suite_file(tmp_path / "a", synth_root, name="first", out=str(out)))
    runner.prepare_out(first)
    assert json.loads((out / "suite.json").read_text())["suite"] == "first"
    runner.prepare_out(first)  # the same suite again (a resume) is fine
    second = runner.load_suite(_suite_file(tmp_path / "b", synth_root, name="second", out=str(out)))
    with pytest.raises(ConfigError) as err:
        runner.prepare_out(second)
    msg = str(err.value)
    assert f"results folder {out} holds suite 'first'" in msg and "'second'" in msg and "--out" in msg
    assert str(out / "suite.json") in msg


# ----------------------------------------------------------------------------- claims and locks


def test_lock_is_exclusive_and_a_dead_holders_lock_is_taken_over(tmp_path):
    path = tmp_path / "x.lock"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = locks.Holder(locks.HOST, other.pid, locks._start_ticks(other.pid), "77_3", "then")
        path.write_text(json.dumps(holder.__dict__))
        ok, who = locks.try_acquire(path)
        assert not ok and who.pid == other.pid and "Slurm job 77_3" in who.describe()
    finally:
        other.kill()
        other.wait()
    ok, who = locks.try_acquire(path)  # its holder is dead now: stale, taken over
    assert ok and who is None and locks.read_holder(path).pid == os.getpid()
    locks.release(path)
    assert not path.exists()
    path.write_text("{half a lock")  # unreadable content (cannot come from try_acquire): stale
    assert locks.try_acquire(path)[0]


def test_reused_pid_does_not_keep_a_lock_alive(tmp_path):
    path = tmp_path / "x.lock"
    me = locks.Holder.me()
    # same pid, but a process that started at another time: the pid was reused, the holder is gone
    stale = locks.Holder(locks.HOST, os.getpid() + 0, (me.start or 0) + 12345, None, "then")
    path.write_text(json.dumps(stale.__dict__))
    assert not stale.alive()


def test_dead_writers_temporary_files_are_swept_live_ones_kept(tmp_path):
    target = tmp_path / "r.json"
    mine = locks.temp_path(target)
    dead = tmp_path / f".r.json~{locks.HOST}~999999999~abc.tmp"
    elsewhere = tmp_path / ".r.json~otherhost~1~abc.tmp"
    for p in (dead, elsewhere):
        p.write_text("partial")
    assert locks.sweep_dead_temps(tmp_path) == [dead]
    assert mine.exists() and elsewhere.exists() and not dead.exists()
    assert mine.stat().st_mode & 0o777 == 0o666 & ~locks._UMASK  # not mkstemp's 0600: shared folders


def test_a_unit_claimed_by_a_live_process_is_left_to_it(tmp_path, synth_root, monkeypatch):
    """Two launches never compute one unit twice: the second leaves a claimed unit alone, and
    takes it over once the claimer is dead."""
    from bench import probe
    from bench.results import UnitOutcome, write_record

    suite = runner.load_suite(_suite_file(tmp_path, synth_root))
    units = runner.plan(suite)
    computed = []

    def fake_probe(upstream, task, corpus, **kw):
        computed.append(task)
        path, config, chash = probe.plan_probe(upstream, task, corpus, preset=kw["preset"], overrides=kw["overrides"],
                                               layers=kw["layers"], out_dir=kw["out_dir"], seed=kw["seed"])
        record = stand_in("probe", upstream, task, config, chash, kw["seed"])
        return UnitOutcome(write_record(path, record), False, record)

    monkeypatch.setattr(probe, "run_probe", fake_probe)
    monkeypatch.setattr(runner, "summarise", lambda *a, **kw: {"tables": "built"})
    ks = next(u for u in units if u.name == "ks")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = ks.claim_path(suite.out)
        claim.parent.mkdir(parents=True)
        claim.write_text(json.dumps(locks.Holder(locks.HOST, other.pid, locks._start_ticks(other.pid), "5_0", "t").__dict__))
        summary = runner.run_suite(suite, progress=False, echo=lambda _: None)
        assert {r.unit.name: r.status for r in summary.reports} == {"ks": "claimed", "ic": "done"}
        assert computed == ["ic"] and not ks.path.exists()
        assert summary.outputs == {}  # no tables while a unit is still out
        assert "claimed" in [s.state for s in slurm.unit_states(suite, units, slurm.read_ledger(suite.out), {})]
    finally:
        other.kill()
        other.wait()
    summary = runner.run_suite(suite, progress=False, echo=lambda _: None)
    assert {r.unit.name: r.status for r in summary.reports} == {"ks": "done", "ic": "skipped"}
    assert summary.outputs == {"tables": "built"}  # all units in: compare and leaderboard run
    assert computed == ["ic", "ks"] and not list((suite.out / "claims").glob("*.lock"))


def test_the_ledger_of_a_submission_gives_each_unit_its_state(tmp_path, synth_root, monkeypatch):
    """Without a cluster: a stand-in submitit records two array tasks; the ledger read back says which
    task holds which unit, and the unit states follow from it, squeue and the failure records."""
    import submitit

    from bench.records import SlurmLedger

    class Job:
        def __init__(self, job_id: str):
            self.job_id = job_id
            self.paths = type("Paths", (), {"stderr": tmp_path / f"{job_id}.err"})()

    class Executor:
        def __init__(self, folder):
            self.params = {}

        def update_parameters(self, **params):
            self.params.update(params)

        def map_array(self, fn, *args):
            return [Job(f"77_{i}") for i in range(len(args[0]))]

    monkeypatch.setattr(submitit, "SlurmExecutor", Executor)
    suite = runner.load_suite(_suite_file(tmp_path, synth_root, launcher={"kind": "slurm", "time": "30"}))
    runner.prepare_out(suite)
    units = runner.plan(suite)
    entry = slurm.submit(suite, runner.execution_groups(units), suite.launcher, force=False)
    ledger = slurm.read_ledger(suite.out)
    assert isinstance(ledger, SlurmLedger) and ledger.arrays == [entry] and entry["array"] == "77"
    assert {uid: u.job_id for uid, u in ledger.units.items()} == {units[0].id: "77_0", units[1].id: "77_1"}
    on_disk = json.loads((suite.out / slurm.LEDGER).read_text())
    assert on_disk["kind"] == "slurm-ledger" and on_disk["units"][units[1].id]["log"] == str(tmp_path / "77_1.err")
    states = slurm.unit_states(suite, units, ledger, {"77_0": "RUNNING"})
    assert [(s.state, s.detail) for s in states] == [("running", "job 77_0 RUNNING"), (
        "lost", f"job 77_1 ended without a result (cancelled, killed or out of time); log: {tmp_path / '77_1.err'}")]
    # A ledger written before it carried a schema version reads; a damaged one names itself and what to do.
    (suite.out / slurm.LEDGER).write_text(json.dumps({k: v for k, v in on_disk.items() if k != "schema_version"}))
    assert slurm.read_ledger(suite.out).units == ledger.units
    (suite.out / slurm.LEDGER).write_text(json.dumps({"kind": "slurm-ledger", "units": {"x": {"job": 1}}}))
    with pytest.raises(ConfigError, match=r"ledger.json: malformed unit entry.*move the ledger away"):
        slurm.read_ledger(suite.out)


def test_status_reports_a_local_run(tmp_path, synth_root, monkeypatch, capsys):
    suite = runner.load_suite(_suite_file(tmp_path, synth_root))
    runner.prepare_out(suite)
    assert cli_main(["status", str(suite.out)]) == 1
    out = capsys.readouterr().out
    assert "2 units: 2 missing" in out and "missing  FBANK x probe:ks" in out
    assert cli_main(["status", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
