"""Keyword spotting (SUPERB KS): Speech Commands v0.01, 12 classes, class-balanced training sampler."""

from __future__ import annotations

from bench.config import CONFIG_DIR
from tasks.base import ClassificationTask, Splits

TASK = ClassificationTask("ks", "speech_commands", Splits("train", "dev", "test"), slots=("keyword",), balanced=True,
                          preset_file=CONFIG_DIR / "tasks" / "ks.yaml")
