"""Against a real Slurm: the tiny suite through `--launcher slurm` equals a local run, and a task
killed with `scancel` mid-unit loses only that unit, which the next launch re-submits alone.

CI starts a one-node cluster first (`scripts/slurm-up` in .ci/run); elsewhere the fixture tries
that script itself and skips, with its reason, only when Slurm cannot be started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.cli import main as cli_main
from bench.locks import read_holder
from suite_fixtures import feature_suite, result_stamps, tables

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _node_state() -> str:
    if shutil.which("sinfo") is None:
        return ""
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=60)
    return proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.split() else ""


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    if _node_state().rstrip("*") in ("idle", "mixed", "allocated"):
        return
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-up")], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no reason given"])[-1]
        pytest.skip(f"Slurm cannot be started on this machine: {reason}")


def _suite(folder: Path, corpus: Path, out: Path) -> Path:
    """Three units: FBANK on IC and KS and CCA-mel; the suite's own launcher is Slurm."""
    return feature_suite(folder, corpus, out, "slurm-tiny", [{"name": "FBANK", "spec": "fbank"}],
                         launcher={"kind": "slurm", "time": "0:20:00", "cpus_per_unit": 1, "poll_seconds": 1})


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, synth_root) -> Path:
    base = tmp_path_factory.mktemp("slurm-local")
    out = base / "out"
    assert cli_main(["run", str(_suite(base, synth_root, out)), "--launcher", "local", "--no-progress"]) == 0
    return out


def _results(out: Path) -> dict[str, dict]:
    return {p.relative_to(out).as_posix(): json.loads(p.read_text())
            for p in (out / "results").rglob("*.json") if "cache" not in p.parts and not p.name.startswith(".")}


def _same_numbers(a: Path, b: Path) -> None:
    ra, rb = _results(a), _results(b)
    assert sorted(ra) == sorted(rb) and len(ra) == 3
    for name in ra:
        assert ra[name]["config_hash"] == rb[name]["config_hash"]
        for key in ("per_layer", "weighted_sum", "scores"):
            assert ra[name].get(key) == rb[name].get(key), (name, key)
    assert tables(a) == tables(b)


def test_suite_through_slurm_equals_a_local_run(slurm_cluster, local_run, tmp_path, synth_root, capsys):
    out = tmp_path / "out"
    suite = _suite(tmp_path, synth_root, out)
    rc = cli_main(["run", str(suite), "--no-progress"])  # the suite's own `launcher: slurm`
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "submitted 3 unit(s) as Slurm job array" in text and "3 units: 3 done" in text
    ledger = json.loads((out / "slurm/ledger.json").read_text())
    assert len(ledger["arrays"]) == 1 and len(ledger["units"]) == 3
    array = ledger["arrays"][0]["array"]
    assert {u["job_id"] for u in ledger["units"].values()} == {f"{array}_{i}" for i in range(3)}
    for u in ledger["units"].values():  # each unit ran in its own array task, which logged there
        assert Path(u["log"]).is_file()
    _same_numbers(local_run, out)

    # Again: everything is in, nothing is submitted.
    assert cli_main(["run", str(suite), "--no-progress"]) == 0
    assert "nothing to submit: 3 units: 3 done" in capsys.readouterr().out
    assert len(json.loads((out / "slurm/ledger.json").read_text())["arrays"]) == 1


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_scancel_mid_unit_loses_only_that_unit(slurm_cluster, local_run, tmp_path, synth_root, capsys):
    out = tmp_path / "out"
    suite = _suite(tmp_path, synth_root, out)
    assert cli_main(["run", str(suite), "--no-wait", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "not waiting (--no-wait)" in text and f"layerbench status {out}" in text

    # A unit is claimed by its task (so it is running): kill that task with scancel.
    claim = _wait(lambda: next((out / "claims").glob("*.lock"), None) if (out / "claims").is_dir() else None,
                  600, "a task to claim its unit")
    holder = _wait(lambda: read_holder(claim), 10, "the claim's content")
    # Kill the unit's process first (same host), as an OOM kill or a lost node would: scancel's own
    # signals reach it through srun as SIGCONT + SIGTERM, which submitit bypasses, so a unit of a
    # few seconds could finish within slurmstepd's grace time and the test would kill nothing.
    os.kill(holder.pid, signal.SIGKILL)
    victim = claim.name.removesuffix(".lock")
    subprocess.run(["scancel", "--full", "--signal=KILL", holder.job_id], check=True)
    ledger = json.loads((out / "slurm/ledger.json").read_text())
    assert ledger["units"][victim]["job_id"] == holder.job_id

    # Wait until the other tasks have ended; then status names the lost unit and its job.
    def settled():
        cli_main(["status", str(out)])
        report = capsys.readouterr().out
        return report if "running" not in report and "queued" not in report else None

    report = _wait(settled, 900, "the array to end")
    assert "1 lost" in report and f"job {holder.job_id} ended without a result" in report
    assert len(_results(out)) == 2  # the killed unit left no result, the two others finished
    before = result_stamps(out)

    # The next launch re-submits the lost unit alone; finished results stay untouched.
    assert cli_main(["run", str(suite), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "submitted 1 unit(s)" in text and "3 units: 3 done" in text
    assert {p: s for p, s in result_stamps(out).items() if p in before} == before
    leftovers = [p for pattern in ("*.tmp", "*.lock") for p in out.rglob(pattern)]
    assert not leftovers, leftovers
    _same_numbers(local_run, out)
