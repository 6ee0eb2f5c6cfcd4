"""Intent classification (SUPERB IC): Fluent Speech Commands, three slots, all three must be right."""

from __future__ import annotations

from tasks.base import ClassificationTask, Splits

TASK = ClassificationTask("ic", "fsc", Splits("train", "valid", "test"), slots=("action", "object", "location"))
