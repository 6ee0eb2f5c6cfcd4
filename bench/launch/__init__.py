"""Where a suite's units run: here, one after another (`local`), or as a Slurm job array (`slurm`).

The runner plans units and knows how to run one; a launcher decides where. `local` is the
runner's own loop. `slurm` sends the pending units out as one job array through submitit (one
array task per unit; the CCA properties of one upstream share their single upstream pass, as
they do locally), every task writing its result atomically into the shared results folder.
The submitting command then watches the folder (or returns at once with `--no-wait`); a later
`layerbench run` or `layerbench status RUN_DIR` reports progress and re-submits only what is
missing or failed. Units are claimed before they run (`bench.locks`), so launches of any kind
never compute a unit twice.

A suite may name its launcher in a `launcher:` section; command-line options override it.
"""

from __future__ import annotations

import re
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bench import schema
from bench.config import ConfigError

LauncherKind = Literal["local", "slurm"]
LAUNCHERS = typing.get_args(LauncherKind)


@dataclass(frozen=True)
class LauncherSpec:
    """The `launcher:` section of a suite (every field but `kind` is for Slurm)."""

    kind: LauncherKind = "local"
    partition: str | None = None  # None: the cluster's default partition
    gpus_per_unit: int = field(default=0, metadata={"ge": 0})
    cpus_per_unit: int = field(default=1, metadata={"ge": 1})
    mem_gb: float | None = field(default=None, metadata={"gt": 0})  # None: the partition's default
    time: str | int = "4:00:00"  # per task: minutes, H:MM:SS or D-HH:MM:SS
    array_parallelism: int = field(default=64, metadata={"ge": 1})  # at most this many tasks of the array run at once
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # further sbatch options, e.g. {mail-type: END}
    poll_seconds: float = field(default=10.0, metadata={"gt": 0})  # how often the waiting command looks at the results folder

    def checked(self, loc: str) -> "LauncherSpec":
        parse_time(self.time, f"{loc}.time")
        return self

    @property
    def time_minutes(self) -> int:
        return parse_time(self.time, "launcher.time / --slurm-time")


def parse_time(value: Any, where: str) -> int:
    """Slurm's time formats in whole minutes: `90` (minutes), `MM:SS`, `H:MM:SS`, `D-H`, `D-H:MM`, `D-H:MM:SS`."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(value).strip())
    if not m:
        raise ConfigError(f"{where}: {value!r} is not a Slurm time (minutes, H:MM:SS or D-HH:MM:SS)")
    days, a, b, c = (int(g) if g is not None else None for g in m.groups())
    if days is not None:  # D-H[:M[:S]]
        seconds = ((days * 24 + a) * 60 + (b or 0)) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = (a * 60 + b) * 60 + c
    elif b is not None:  # M:S
        seconds = a * 60 + b
    else:  # M
        seconds = a * 60
    if seconds <= 0:
        raise ConfigError(f"{where}: {value!r} is no time at all; give the wall time one unit may take")
    return -(-seconds // 60)


def parse_launcher(data: Any, where: str) -> LauncherSpec:
    """The suite's `launcher:` mapping (or just a name) checked into a `LauncherSpec`."""
    if data is None:
        return LauncherSpec()
    return schema.load(LauncherSpec, {"kind": data} if isinstance(data, str) else data, where, "launcher")


def with_options(spec: LauncherSpec, **options: Any) -> LauncherSpec:
    """The suite's launcher with the command-line options that were given (None = not given)."""
    given = {k: v for k, v in options.items() if v is not None}
    return schema.load(LauncherSpec, {**asdict(spec), **given}, "command line --slurm-*") if given else spec
