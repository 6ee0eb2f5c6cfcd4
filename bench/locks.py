"""Claims and locks that survive any kill: lock files naming their holder, and dead holders recognised.

Two kinds of work must never run twice at once: a unit (two launches of one suite, or a local
run beside a cluster run, would compute it twice) and shared work (the pooled-feature cache of
a split, the synthetic corpus). Both are guarded by a *lock file* whose content names the holder
(host, pid, the process's start time, the Slurm job id when there is one). A holder killed with
SIGKILL cannot remove its file, so a lock is *stale* when its process is gone: on the same host
the pid is not alive (or was reused by a process that started later); on another host, its
Slurm job is no longer queued or running (`squeue`). A lock held by a process on another host
without a Slurm job is taken as live (nothing can tell otherwise).

Creating a lock is atomic (the content is written to a private file that is then hard-linked to
the lock name, which fails when the name exists), so a lock file is never seen half-written.
Replacing a stale lock happens under `fcntl.flock` of a guard file beside it, so two processes
that find the same stale lock cannot both take it over.

Temporary files of atomic writes are named by `temp_path` after their writer (host and pid), so
`sweep_dead_temps` can remove what a killed writer left behind without touching a live one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = socket.gethostname()
_UMASK = os.umask(0)
os.umask(_UMASK)


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int, start: int | None = None) -> bool:
    """True when `pid` runs on this host (and, given `start`, is the same process, not a reuse)."""
    if pid <= 0 or not _exists(pid):  # os.kill(0 or -1, ...) would address process groups, not a process
        return False
    if start is None:
        return True
    now = _start_ticks(pid)
    return now is None or now == start


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def slurm_job_id() -> str | None:
    """`<array job>_<task>` inside a Slurm array task, the job id in a plain job, else None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def slurm_job_active(job_id: str) -> bool | None:
    """Whether a Slurm job is queued or running (None when `squeue` cannot answer)."""
    try:
        proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        # squeue exits non-zero for a job id it no longer knows ("Invalid job id specified")
        return False if "Invalid job id" in proc.stderr else None
    return any(s.strip() in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED")
               for s in proc.stdout.splitlines())


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to tell, later and from elsewhere, whether it still lives."""

    host: str
    pid: int
    start: int | None
    job_id: str | None
    since: str

    @classmethod
    def me(cls) -> "Holder":
        return cls(HOST, os.getpid(), _start_ticks(os.getpid()), slurm_job_id(),
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def alive(self) -> bool:
        if self.host == HOST:
            return pid_alive(self.pid, self.start)
        if self.job_id:
            active = slurm_job_active(self.job_id)
            return True if active is None else active
        return True

    def describe(self) -> str:
        job = f"Slurm job {self.job_id}, " if self.job_id else ""
        return f"{job}pid {self.pid} on {self.host} since {self.since}"


def read_holder(path: str | os.PathLike) -> Holder | None:
    """The holder named in a lock file; None when there is no lock (an unreadable one counts as stale)."""
    try:
        data = json.loads(Path(path).read_text())
        return Holder(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Holder(host=HOST, pid=-1, start=None, job_id=None, since="?")  # garbage: treated as dead


def _link_new(path: Path, holder: Holder) -> bool:
    """Create `path` holding `holder`, atomically; False when it exists."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(holder), f)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def _guard(path: Path) -> Iterator[None]:
    with open(path.parent / f".{path.name}.guard", "a") as g:
        fcntl.flock(g, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(g, fcntl.LOCK_UN)


def try_acquire(path: str | os.PathLike) -> tuple[bool, Holder | None]:
    """Take the lock at `path`: (True, None), or (False, the live holder). Stale locks are replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = Holder.me()
    if _link_new(path, me):
        return True, None
    with _guard(path):
        holder = read_holder(path)
        if holder is not None and (holder.host, holder.pid) == (me.host, me.pid):
            return True, None  # re-entrant: this process holds it already
        if holder is not None and holder.alive():
            return False, holder
        path.unlink(missing_ok=True)  # stale: its holder is gone
        if _link_new(path, me):
            return True, None
    return False, read_holder(path)


def release(path: str | os.PathLike) -> None:
    """Drop a lock this process holds (a lock another process took over is left alone)."""
    path = Path(path)
    holder = read_holder(path)
    if holder is not None and (holder.host, holder.pid) == (HOST, os.getpid()):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, *, poll: float = 0.5,
              on_wait: Callable[[Holder], None] | None = None) -> Iterator[None]:
    """Hold the lock at `path` for the block, waiting (polling) while a live process holds it."""
    told = False
    while True:
        ok, holder = try_acquire(path)
        if ok:
            break
        if on_wait is not None and not told and holder is not None:
            on_wait(holder)
            told = True
        time.sleep(poll)
    try:
        yield
    finally:
        release(path)


# --------------------------------------------------------------------------- temporary files


def temp_path(target: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A fresh temporary name beside `target`, tagged with this host and pid (see `sweep_dead_temps`)."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}~{HOST}~{os.getpid()}~", suffix=suffix, dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results on a shared folder are for the group too
    os.close(fd)
    return Path(tmp)


def sweep_dead_temps(folder: str | os.PathLike, pattern: str = ".*~*~*~*.tmp", recursive: bool = True) -> list[Path]:
    """Remove temporary files under `folder` whose writer (on this host) is dead; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.rglob(pattern) if recursive else folder.glob(pattern):
        parts = p.name.rsplit("~", 3)  # .<target>~<host>~<pid>~<random><suffix>
        if len(parts) < 4:
            continue
        host, pid = parts[1], parts[2]
        if host == HOST and pid.isdigit() and not pid_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
