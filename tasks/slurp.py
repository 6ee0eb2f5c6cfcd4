"""SLURP scenario and action classification with the IC head and one softmax (as in the paper)."""

from __future__ import annotations

from tasks.base import ClassificationTask, Splits

_SPLITS = Splits("train", "devel", "test")
SCENARIO = ClassificationTask("slurp_scenario", "slurp", _SPLITS, slots=("scenario",))
ACTION = ClassificationTask("slurp_action", "slurp", _SPLITS, slots=("action",))
