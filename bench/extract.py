"""Run a frozen upstream over utterances: one forward per batch, every layer handed to consumers.

This is the only place an upstream is called. Probe banks, pooled caches and CCA samplers
all consume the `UpstreamOutput` of `forward_batches`, so no layer ever costs a forward of
its own.

Audio never loads on the critical path: `audio_batches` decodes, resamples and collates in
DataLoader worker processes (`LAYERBENCH_WORKERS`, default from the CPU count) that run ahead
of the forward (prefetch), into pinned memory on CUDA. Batches come back in the order asked
for whatever the worker count, so results do not depend on it (and it is not in any config
hash).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.data.manifest import Utterance
from bench.types import Upstream, UpstreamOutput


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available")
    return torch.device(name)


def length_buckets(
    durations: Sequence[float],
    max_seconds: float,
    max_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> list[list[int]]:
    """Group indices of similar length so padding stays small.

    Sorted by duration, cut whenever the padded batch (size x longest) would exceed
    `max_seconds` or `max_size` items; batch order is shuffled when asked (training).
    """
    order = sorted(range(len(durations)), key=lambda i: (durations[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = max(durations[i], max((durations[j] for j in cur), default=0.0))
        if cur and (len(cur) + 1 > max_size or (len(cur) + 1) * longest > max_seconds):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    if shuffle:
        random.Random(seed).shuffle(batches)
    return batches


def collate_audio(waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad to the longest: float32 [B, S] and lengths [B]."""
    lens = torch.tensor([len(w) for w in waves], dtype=torch.long)
    out = torch.zeros(len(waves), int(lens.max()) if len(waves) else 0, dtype=torch.float32)
    for i, w in enumerate(waves):
        out[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return out, lens


def load_batch(utts: Sequence[Utterance]) -> tuple[torch.Tensor, torch.Tensor]:
    """Load and collate in this process (one-off batches; streams use `audio_batches`)."""
    return collate_audio([u.load() for u in utts])


WORKERS_ENV = "LAYERBENCH_WORKERS"
PREFETCH = 4  # batches each worker keeps ready ahead of the forward


def loader_workers() -> int:
    """Audio-loading worker processes: $LAYERBENCH_WORKERS, else one per spare core (at most 8;
    0 = load in this process)."""
    raw = os.environ.get(WORKERS_ENV)
    if raw is None or raw == "":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return min(8, max(0, cpus - 1))
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"{WORKERS_ENV}={raw!r}: give the number of audio-loading worker processes (an integer >= 0)")
    return n


class _IndexedBatches(torch.utils.data.Dataset):
    """Map-style dataset whose keys are lists of utterance indices: item = (indices, wavs, lens)."""

    def __init__(self, utts: Sequence[Utterance]):
        self.utts = utts

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, idx: list[int]) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        wavs, lens = collate_audio([self.utts[i].load() for i in idx])
        return list(idx), wavs, lens


def _as_is(item):
    return item


def audio_batches(
    utts: Sequence[Utterance],
    batches: Iterable[Sequence[int]],
    pin: bool = False,
    workers: int | None = None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(indices, wavs [B, S], lens [B]) for each index list of `batches`, in that order.

    `batches` may be endless (a training stream). With workers > 0, loading runs in DataLoader
    worker processes with `PREFETCH` batches each in flight; `pin` puts them in pinned memory
    (for non-blocking copies to CUDA).
    """
    workers = loader_workers() if workers is None else workers
    loader = torch.utils.data.DataLoader(
        _IndexedBatches(utts), sampler=batches, batch_size=None, collate_fn=_as_is, num_workers=workers,
        pin_memory=pin, prefetch_factor=PREFETCH if workers else None, persistent_workers=False,
    )
    yield from loader


def forward(
    upstream: Upstream,
    wavs: torch.Tensor,
    wav_lens: torch.Tensor,
    device: torch.device,
    bf16: bool = False,
) -> UpstreamOutput:
    """One frozen forward; hidden states come back as float32 on `device`."""
    wavs = wavs.to(device, non_blocking=True)
    wav_lens = wav_lens.to(device, non_blocking=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and device.type == "cuda" else nullcontext()
    with torch.inference_mode(), autocast:
        out = upstream(wavs, wav_lens)
    return UpstreamOutput(
        hidden=[h.float() for h in out.hidden],
        lengths=[n.to(device) for n in out.lengths],
    )


@dataclass(frozen=True)
class PassBatches:
    """How `forward_batches` packs an upstream pass (a config's `batch` / `extract` section)."""

    max_seconds: float = field(metadata={"gt": 0})  # padded audio seconds per forward
    max_size: int = field(metadata={"ge": 1})  # utterances per forward
    bf16: bool = False  # autocast the upstream to bf16 (CUDA)


def forward_batches(
    upstream: Upstream,
    utts: Sequence[Utterance],
    device: torch.device,
    max_seconds: float = 160.0,
    max_size: int = 32,
    bf16: bool = False,
    desc: str | None = None,
    audio: bool = False,
) -> Iterator[tuple]:
    """Yield (utterance indices, every layer's output) for length-bucketed batches of `utts`;
    with `audio`, also each utterance's 16 kHz samples (so a consumer that needs the waveform,
    CCA-mel, does not decode it a second time on the critical path)."""
    batches = length_buckets([u.duration for u in utts], max_seconds, max_size)
    with tqdm(total=len(utts), unit="utt", desc=desc or upstream.spec, disable=desc is False, leave=False) as bar:
        for idx, wavs, lens in audio_batches(utts, batches, pin=device.type == "cuda"):
            out = forward(upstream, wavs, lens, device, bf16=bf16)
            if audio:
                yield idx, out, [w[:n].numpy() for w, n in zip(wavs, lens.tolist())]
            else:
                yield idx, out
            bar.update(len(idx))
