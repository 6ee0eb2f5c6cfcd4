"""The small types at the seams between bench, upstreams and tasks.

`upstreams` and `tasks` import these; `bench` never imports `upstreams` or `tasks`
except through their registries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class LayerSpec:
    """One exposed layer. `stride` is in input samples (320 = 20 ms at 16 kHz)."""

    name: str
    index: int
    dim: int
    stride: int
    final_norm: bool = False  # True when the model's final LayerNorm is applied to this layer
    weighted_sum: bool = True  # among the hidden states s3prl's featurizer sums (not CNN / sampling modules)

    @property
    def frame_rate(self) -> float:
        return SAMPLE_RATE / self.stride


@dataclass
class UpstreamOutput:
    """Every layer's hidden states for one batch; each layer has its own length and rate."""

    hidden: list[torch.Tensor]  # one [B, T_l, D_l] per layer, in `layers` order
    lengths: list[torch.Tensor]  # one [B] long tensor of valid frames per layer


@dataclass
class Batch:
    """Targets of a batch in the form the task's loss and metric need."""

    y: torch.Tensor  # [B, S] class ids (utterance tasks) or [B, U] padded token ids (CTC)
    y_lens: torch.Tensor | None = None  # [B] target lengths (CTC)
    refs: list[str] | None = None  # reference strings (CTC)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.y.to(device, non_blocking=True),
                     None if self.y_lens is None else self.y_lens.to(device, non_blocking=True), self.refs)


@runtime_checkable
class Upstream(Protocol):
    """A frozen speech model exposing all its layers (contract in docs/design.md)."""

    spec: str
    layers: list[LayerSpec]

    def __call__(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput: ...

    def to(self, device: torch.device | str) -> "Upstream": ...
