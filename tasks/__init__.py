"""Tasks: one module per SUPERB-style task; `tasks.get(name)` returns its definition."""

from __future__ import annotations

import difflib

from tasks.base import Task


def _registry() -> dict[str, Task]:
    from tasks import asr, ic, ks, pr, slurp

    return {"pr": pr.TASK, "asr": asr.TASK, "ic": ic.TASK, "slurp_scenario": slurp.SCENARIO,
            "slurp_action": slurp.ACTION, "ks": ks.TASK}


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Task:
    """The task called `name`; an unknown name is a ValueError listing the known ones."""
    reg = _registry()
    if name not in reg:
        near = difflib.get_close_matches(name, list(reg), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown task {name!r}{hint}; known tasks: {', '.join(reg)}")
    return reg[name]


__all__ = ["Task", "get", "names"]
