"""A probe preset's values (configs/tasks/*.yaml) as typed sections.

The seam between a task's preset file, the probe bank and the task: `resolve_params` (bench.probe)
merges the preset and overrides into the mapping results are hashed on and checks it here by
type (`bench.schema`); the bank and the task read the typed `ProbeParams`. A task whose head or
targets take other values declares its own subclass as `params_type` (ASR's BiLSTM head, PR's
targets); the published values live in the preset files only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bench.extract import PassBatches


@dataclass(frozen=True, kw_only=True)
class ExtractParams(PassBatches):
    """The upstream passes of a probe (the pooled cache's extraction, or every batch of a frame task)."""

    keep_eval: bool = False  # frame tasks: hold dev/test features in memory after the first evaluation
    keep_train: bool = False  # frame tasks: hold each training utterance's frames after the first epoch


@dataclass(frozen=True)
class WeightedSumParams:
    enabled: bool  # train the weighted-sum head beside the single layers
    layer_norm: bool  # normalise each layer (no affine) before the sum


@dataclass(frozen=True)
class SpecAugParams:
    """s3prl's SpecAugment (downstream/specaug.py) applied to frame-level inputs."""

    enabled: bool
    apply_time_warp: bool = False
    time_warp_window: int = field(default=5, metadata={"ge": 0})
    num_time_mask: int = field(default=0, metadata={"ge": 0})
    time_mask_width_range: tuple[int, int] = (0, 0)
    num_freq_mask: int = field(default=0, metadata={"ge": 0})
    freq_mask_width_range: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class HiddenHead:
    """A head with one hidden width (Linear(D, hidden) -> ...)."""

    hidden: int = field(metadata={"ge": 1})


@dataclass(frozen=True, kw_only=True)
class ProbeParams:
    """Training values of one probe unit; the preset files' comments say where each comes from."""

    steps: int = field(metadata={"ge": 1})
    lr: float = field(metadata={"gt": 0})
    batch_size: int = field(metadata={"ge": 1})
    accumulate: int = field(metadata={"ge": 1})
    eval_every: int = field(metadata={"ge": 1})
    clip: float = field(metadata={"gt": 0})
    nonfinite: Literal["skip", "stop"] = "stop"  # a step with a NaN/inf gradient: skipped (s3prl), or the head stops
    head: HiddenHead  # a task with another head declares a subclass (its `params_type`) retyping this
    weighted_sum: WeightedSumParams
    extract: ExtractParams
    specaug: SpecAugParams | None = None
    cache_dir: str | None = None  # pooled cache folder (default <out>/cache/pooled)
    dev_sampler: Literal["all", "balanced"] = "all"
    max_batch_seconds: float | None = field(default=None, metadata={"gt": 0})  # frame tasks: bucketing cap
    half_batch_over_s: float | None = field(default=None, metadata={"gt": 0})  # halve a bucket whose first utterance is longer
    targets: Any = None  # the task's targets section, when it has one

