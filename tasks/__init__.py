"""Tasks: one module per SUPERB-style task, registered here; `py:package.module:TaskClass` for your own.

`BUILTIN` is the one list of task names: the CLI choices, the runner's checks, the comparator's
order and default CCA mapping, and the tests all read it. Adding a task to the package is one
module plus one line here; a task of your own needs neither (`--task py:my_tasks:Toy`), it is
imported and checked against the task contract (`tasks.base.Task`).
"""

from __future__ import annotations

import functools
import inspect

from bench.config import suggest
from bench.plugins import PREFIX, import_object, missing_members
from tasks.base import Splits, Task

# name -> "module:attribute" of its Task object; this order is the order of every table and report.
BUILTIN: dict[str, str] = {
    "pr": "tasks.pr:TASK",
    "asr": "tasks.asr:TASK",
    "ic": "tasks.ic:TASK",
    "slurp_scenario": "tasks.slurp:SCENARIO",
    "slurp_action": "tasks.slurp:ACTION",
    "ks": "tasks.ks:TASK",
}

# What a task object must have (the contract of tasks.base.Task, checked for `py:` tasks).
CONTRACT: dict[str, str] = {
    **{a: "attribute" for a in ("name", "corpus_kind", "splits", "level", "metric", "higher_is_better",
                                "cca_properties", "params_type")},
    **{m: "method" for m in ("fit", "target_info", "targets", "make_heads", "losses", "predict", "references",
                             "score", "balanced_draw", "presets")},
}


def names() -> list[str]:
    """The built-in task names, in report order."""
    return list(BUILTIN)


def sort_key(name: str) -> tuple[int, str]:
    """Built-in tasks in registry order, then any other (user) task by name."""
    order = list(BUILTIN)
    return (order.index(name) if name in order else len(order), name)


@functools.lru_cache(maxsize=None)
def get(name: str) -> Task:
    """The task called `name` (built-in) or referenced by `py:package.module:TaskClass`.

    An unknown name is a ValueError listing the known ones; a `py:` object that breaks the
    contract is a ValueError naming what is missing or wrong.
    """
    if name.startswith(PREFIX):
        return _user_task(name)
    if name not in BUILTIN:
        raise ValueError(f"unknown task {name!r}{suggest(name, BUILTIN)}; known tasks: {', '.join(BUILTIN)}, "
                         "or py:package.module:TaskClass")
    module, _, attr = BUILTIN[name].partition(":")
    return import_object(f"{module}:{attr}", f"task {name!r}")


def _user_task(ref: str) -> Task:
    where = f"task {ref!r}"
    obj = import_object(ref[len(PREFIX):], where, "TaskClass")
    if inspect.isclass(obj):
        try:
            obj = obj()
        except TypeError as e:
            raise ValueError(f"{where}: {obj.__name__}() must take no arguments ({e})") from e
    missing = missing_members(obj, CONTRACT)
    if missing:
        raise ValueError(f"{where}: {type(obj).__name__} lacks {', '.join(missing)} of the task contract "
                         "(subclass tasks.base.Task, or tasks.base.ClassificationTask / CTCTask)")
    check(obj, where)
    return obj


def check(task: Task, where: str) -> None:
    """The declared attributes have the values the harness relies on."""
    from bench.data.corpus import KINDS

    problems = []
    if task.level not in ("utterance", "frame"):
        problems.append(f"level must be 'utterance' or 'frame', got {task.level!r}")
    if task.corpus_kind not in KINDS:
        problems.append(f"corpus_kind must be one of {', '.join(KINDS)}, got {task.corpus_kind!r}")
    if not isinstance(task.splits, Splits):
        problems.append(f"splits must be a tasks.base.Splits, got {task.splits!r}")
    if not isinstance(task.higher_is_better, bool):
        problems.append(f"higher_is_better must be True or False, got {task.higher_is_better!r}")
    if not isinstance(task.name, str) or not task.name:
        problems.append(f"name must be a non-empty string, got {task.name!r}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


__all__ = ["BUILTIN", "Task", "get", "names", "sort_key"]
