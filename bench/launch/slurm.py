"""The Slurm launcher: pending units as one job array through submitit, watched through the results folder.

Nothing but files connects the submitter and the tasks: each task plans the same suite, claims
its units, runs them and writes result files (or failure records) into the shared results
folder, exactly as a local run does. The submitter keeps a ledger (`<out>/slurm/ledger.json`:
which array task holds which unit, when it was submitted, where its log is) and, to know what
is still queued or running, asks `squeue`. So a unit's state needs no accounting database and
survives the submitter being killed: done (its result is there), failed (a failure record newer
than its submission), queued / running (its task is in `squeue`), lost (its task left the queue
without a result: cancelled, killed, out of time), claimed (another launch computes it), or
missing (never submitted).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.config import ConfigError, suggest
from bench.launch import LauncherSpec
from bench.locks import read_holder
from bench.records import FailureRecord, LedgerUnit, SchemaError, SlurmLedger
from bench.results import is_done, read_record, write_record

LEDGER = Path("slurm") / "ledger.json"
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING")
FINAL_STATES = ("done", "failed", "lost")


# --------------------------------------------------------------------------- the cluster


def check_cluster(spec: LauncherSpec) -> None:
    """Slurm answers here and the partition exists; otherwise a ConfigError saying which option."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise ConfigError("--launcher slurm: no Slurm on this machine (`sbatch`/`sinfo` not found on PATH); "
                          "run on a cluster's login node, start a local one (sudo scripts/slurm-up), "
                          "or use --launcher local")
    proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ConfigError(f"--launcher slurm: `sinfo` failed, Slurm does not answer here: "
                          f"{(proc.stderr or proc.stdout).strip()}")
    names = [p.strip() for p in proc.stdout.split()]
    known = [p.rstrip("*") for p in names]
    if not known:
        raise ConfigError("--launcher slurm: `sinfo` lists no partition on this cluster")
    if spec.partition is not None and spec.partition not in known:
        raise ConfigError(f"--slurm-partition / launcher.partition: unknown partition {spec.partition!r}"
                          f"{suggest(spec.partition, known)}; "
                          f"this cluster has: {', '.join(names)} (* = default)")


def queue() -> dict[str, str] | None:
    """This user's Slurm tasks and their states, `<array>_<task>` -> state; None when squeue fails."""
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i %T"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


# --------------------------------------------------------------------------- ledger and unit states


def read_ledger(out: Path) -> SlurmLedger:
    path = out / LEDGER
    if not path.is_file():
        return SlurmLedger()
    try:
        return read_record(path, SlurmLedger)
    except SchemaError as e:
        raise ConfigError(f"{e}; move the ledger away to start afresh") from e


@dataclass
class UnitState:
    unit: Any  # runner.Unit
    state: str  # done, failed, queued, running, lost, claimed, missing
    detail: str = ""


def unit_states(suite, units: Sequence[Any], ledger: SlurmLedger, jobs: dict[str, str] | None) -> list[UnitState]:
    """Where every unit stands, from the result files, failure records, claims, the ledger and squeue."""
    out = []
    for u in units:
        entry = ledger.units.get(u.id)
        fpath = u.failure_path(suite.out)
        failed_at = fpath.stat().st_mtime if fpath.is_file() else None
        if is_done(u.path, u.config_hash):
            out.append(UnitState(u, "done"))
            continue
        if entry is not None:
            job = entry.job_id
            slurm_state = (jobs or {}).get(job)
            holder = read_holder(u.claim_path(suite.out))
            if jobs is None:
                out.append(UnitState(u, "queued", f"job {job} (squeue did not answer)"))
            elif slurm_state in ACTIVE:
                out.append(UnitState(u, "running" if slurm_state == "RUNNING" else "queued", f"job {job} {slurm_state}"))
            elif holder is not None and holder.job_id != job and holder.alive():
                out.append(UnitState(u, "claimed", holder.describe()))
            elif failed_at is not None and failed_at >= entry.submitted - 1:
                out.append(UnitState(u, "failed", _failure_error(fpath)))
            else:
                out.append(UnitState(u, "lost", f"job {job} ended without a result (cancelled, killed or out of "
                                                f"time); log: {entry.log or '?'}"))
            continue
        holder = read_holder(u.claim_path(suite.out))
        if holder is not None and holder.alive():
            out.append(UnitState(u, "claimed", holder.describe()))
        elif failed_at is not None:
            out.append(UnitState(u, "failed", _failure_error(fpath)))
        else:
            out.append(UnitState(u, "missing"))
    return out


def _failure_error(path: Path) -> str:
    try:
        return f"{read_record(path, FailureRecord).error or '?'} (record: {path})"
    except (OSError, ValueError):
        return f"record: {path}"


def format_states(states: Sequence[UnitState]) -> str:
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    order = ("done", "running", "queued", "claimed", "failed", "lost", "missing")
    return f"{len(states)} units: " + ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))


# --------------------------------------------------------------------------- submitting


def run_task(suite, unit_ids: list[str], force: bool) -> dict[str, str]:
    """What one array task runs on its node: the named units of the suite, as a local run would."""
    from bench import runner

    units = [u for u in runner.plan(suite) if u.id in set(unit_ids)]
    missing = set(unit_ids) - {u.id for u in units}
    if missing:
        raise RuntimeError(f"units {sorted(missing)} are no longer in suite {suite.source}")
    reports = runner.execute(suite, units, force=force, progress=False, echo=lambda m: print(m, flush=True))
    return {r.unit.id: r.status for r in reports}


def submit(suite, groups: list[list[Any]], spec: LauncherSpec, force: bool) -> dict[str, Any]:
    """One job array, one task per group; the ledger records each unit's task. Returns the array entry."""
    import submitit

    folder = suite.out / "slurm" / "logs"
    executor = submitit.SlurmExecutor(folder=folder)
    params: dict[str, Any] = {
        "job_name": f"layerbench-{suite.name}",
        "time": spec.time_minutes,
        "cpus_per_task": spec.cpus_per_unit,
        "array_parallelism": spec.array_parallelism,
    }
    if spec.partition:
        params["partition"] = spec.partition
    if spec.gpus_per_unit:
        params["gpus_per_node"] = spec.gpus_per_unit
    if spec.mem_gb:
        params["mem"] = f"{int(spec.mem_gb * 1024)}M"
    for name in ("account", "qos", "constraint"):
        if getattr(spec, name):
            params[name] = getattr(spec, name)
    if spec.extra:
        params["additional_parameters"] = dict(spec.extra)
    executor.update_parameters(**params)
    submitted = time.time()
    try:
        jobs = executor.map_array(run_task, [suite] * len(groups), [[u.id for u in g] for g in groups],
                                  [force] * len(groups))
    except Exception as e:  # sbatch refused: its message says why (partition, time limit, GPUs, account)
        raise ConfigError(f"--launcher slurm: sbatch refused the job array: {e}") from e
    ledger = read_ledger(suite.out)
    array_id = jobs[0].job_id.split("_")[0]
    entry = {"array": array_id, "submitted": submitted, "tasks": len(jobs),
             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(submitted)), "params": params}
    ledger.arrays.append(entry)
    for job, group in zip(jobs, groups):
        for u in group:
            ledger.units[u.id] = LedgerUnit(job.job_id, submitted, str(job.paths.stderr))
    write_record(suite.out / LEDGER, ledger)
    return entry


def absolute(suite):
    """The suite with every path absolute: array tasks may start in another folder."""
    syn = suite.synthetic
    return replace(
        suite,
        out=suite.out.resolve(),
        synthetic=replace(syn, dir=syn.dir.resolve()) if syn is not None else None,
        corpora={k: v.resolve() for k, v in suite.corpora.items()},
    )


# --------------------------------------------------------------------------- the whole launch


def launch(suite, spec: LauncherSpec, *, force: bool = False, wait: bool = True, progress: bool = True,
           echo: Callable[[str], None] = print) -> tuple[list[UnitState], dict[str, Any]]:
    """Submit what is missing or failed, then (with `wait`) watch until every unit ended.

    Returns the final unit states and what compare/leaderboard wrote (empty until all are done).
    """
    from bench import runner

    check_cluster(spec)
    suite = absolute(suite)
    runner.prepare_out(suite)
    runner.ensure_corpora(suite, progress=progress, echo=echo)  # once, here, before any task needs it
    units = runner.plan(suite)
    echo(runner.format_plan(suite, units))
    states = unit_states(suite, units, read_ledger(suite.out), queue())
    resubmit = ("missing", "failed", "lost") + (("done",) if force else ())
    todo = [s.unit for s in states if s.state in resubmit]
    if todo:
        groups = runner.execution_groups(todo)
        entry = submit(suite, groups, spec, force)
        where = f"partition {spec.partition}" if spec.partition else "the default partition"
        echo(f"submitted {len(todo)} unit(s) as Slurm job array {entry['array']} ({len(groups)} task(s), {where}, "
             f"{spec.gpus_per_unit} GPU(s) and {spec.cpus_per_unit} CPU(s) per task, {spec.time} each, "
             f"at most {spec.array_parallelism} at once); logs in {suite.out / 'slurm' / 'logs'}")
    else:
        echo("nothing to submit: " + format_states(states))
    if not wait:
        echo(f"not waiting (--no-wait). Watch: layerbench status {suite.out}   "
             f"Resume or re-submit what failed: rerun this command")
        return states, {}
    return watch(suite, units, spec, progress=progress, echo=echo)


def watch(suite, units: Sequence[Any], spec: LauncherSpec, *, progress: bool = True,
          echo: Callable[[str], None] = print) -> tuple[list[UnitState], dict[str, Any]]:
    """Poll until no unit is queued, running or claimed; report failures as they come; then summarise."""
    from tqdm.auto import tqdm

    told: set[str] = set()
    quiet_squeue = False
    bar = tqdm(total=len(units), desc=f"suite {suite.name} (slurm)", unit="unit", disable=not progress)
    try:
        while True:
            jobs = queue()
            if jobs is None and not quiet_squeue:
                echo("squeue does not answer; still watching the results folder")
                quiet_squeue = True
            states = unit_states(suite, units, read_ledger(suite.out), jobs)
            for s in states:
                if s.state in ("failed", "lost") and s.unit.id not in told:
                    told.add(s.unit.id)
                    bar.write(f"{s.state.upper()} {s.unit.key}: {s.detail}") if progress else echo(
                        f"{s.state.upper()} {s.unit.key}: {s.detail}")
            bar.n = sum(s.state in FINAL_STATES for s in states)
            bar.set_postfix_str(format_states(states).split(": ", 1)[1])
            bar.refresh()
            if not any(s.state in ("queued", "running", "claimed") for s in states):
                break
            time.sleep(spec.poll_seconds)
    finally:
        bar.close()
    return states, finish(suite, states, echo=echo)


def finish(suite, states: Sequence[UnitState], echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Compare and leaderboard once every unit is done (or failed for good); else say what is left."""
    from bench import runner

    left = [s for s in states if s.state not in ("done", "failed")]
    if left:
        echo(f"{len(left)} unit(s) not in yet ({format_states(states)}); compare and leaderboard wait for them: "
             f"rerun `layerbench run ... --launcher slurm` to re-submit what is missing")
        return {}
    reports = [runner.UnitReport(s.unit, "done" if s.state == "done" else "failed", error=s.detail,
                                 failure_path=s.unit.failure_path(suite.out) if s.state == "failed" else None)
               for s in states]
    outputs = runner.summarise(suite, reports)
    runner.write_summary(suite, reports, outputs)
    return outputs


def status(run_dir: str | os.PathLike, *, echo: Callable[[str], None] = print) -> int:
    """`layerbench status RUN_DIR`: progress of a run, and compare + leaderboard once all units are in."""
    from bench import runner

    suite = runner.reload_suite(Path(run_dir))
    units = runner.plan(suite)
    ledger = read_ledger(suite.out)
    states = unit_states(suite, units, ledger, queue() if ledger.arrays else {})
    echo(f"suite {suite.name} ({suite.source}) in {suite.out}: {format_states(states)}")
    for s in states:
        if s.state != "done":
            echo(f"  {s.state:<8} {s.unit.key}" + (f": {s.detail}" if s.detail else ""))
    outputs = finish(suite, states, echo=echo) if not any(
        s.state in ("queued", "running", "claimed") for s in states) else {}
    if outputs:
        echo(f"all units in: comparison and leaderboard written under {suite.out}")
    return 0 if all(s.state == "done" for s in states) else 1
