"""Shared pieces of every upstream adapter: the frozen-module base class, spec errors,
waveform normalisation, equal-length grouping and convolution length arithmetic.

Adapters differ only in how they run their model; everything that decides *correctness*
across families (frozen weights, valid-sample normalisation, padding invariance, per-layer
lengths) lives here once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from bench.config import suggest
from bench.types import LayerSpec, UpstreamOutput


class UpstreamBase(nn.Module):
    """A frozen speech model exposing all its layers (bench.types.Upstream).

    Subclasses set `spec`, `layers` and `revision` and implement `forward(wavs, wav_lens)`.
    `freeze()` is called once the weights are in place: eval mode, no gradients, and
    `train()` can never switch dropout back on (the probes train, the upstream never does).
    """

    spec: str
    layers: list[LayerSpec]
    revision: str

    def freeze(self) -> "UpstreamBase":
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "UpstreamBase":  # noqa: D102 - frozen on purpose
        return super().train(False)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, layers={len(self.layers)}, params={self.num_params})"


def unresolved(spec: str, what: str, name: str, choices: Sequence[str]) -> ValueError:
    """The one error shape for specs that do not resolve: names the spec, lists, suggests."""
    listing = ", ".join(sorted(choices))
    return ValueError(f"upstream spec {spec!r}: unknown {what} {name!r}; known: {listing}{suggest(name, choices)}.")


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def normalize_valid(wavs: torch.Tensor, wav_lens: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per-utterance zero mean, unit variance over VALID samples only; padding stays zero.

    Same formula as HF's Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm (population
    variance, eps 1e-7), but computed on the padded batch so a short utterance is normalised
    exactly as it would be alone.
    """
    mask = valid_mask(wav_lens, wavs.shape[1]).to(wavs.dtype)
    n = wav_lens.clamp(min=1).to(wavs.dtype)[:, None]
    mean = (wavs * mask).sum(1, keepdim=True) / n
    var = (((wavs - mean) * mask) ** 2).sum(1, keepdim=True) / n
    return (wavs - mean) / torch.sqrt(var + eps) * mask


def equal_length_groups(wav_lens: torch.Tensor) -> list[tuple[int, list[int]]]:
    """[(length, batch indices)] for each distinct valid length, longest first.

    Models whose feature encoder normalises over time (group norm) or pools frames see
    padding; running each group of equal-length utterances unpadded gives exactly the
    per-utterance result while still batching equal lengths (common after bucketing).
    """
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(wav_lens.tolist()):
        groups.setdefault(int(n), []).append(i)
    return sorted(groups.items(), key=lambda kv: -kv[0])


def run_in_length_groups(
    fn: Callable[[torch.Tensor], list[torch.Tensor]],
    wavs: torch.Tensor,
    wav_lens: torch.Tensor,
) -> UpstreamOutput:
    """Run `fn` ([G, S_g] unpadded audio -> per-layer [G, T_l, D_l]) per equal-length group
    and scatter the results into zero-padded [B, T_l, D_l]; lengths are the true frame counts.
    """
    per_group = [(idx, fn(wavs[idx, :n])) for n, idx in equal_length_groups(wav_lens)]
    n_layers = len(per_group[0][1])
    bsz = wavs.shape[0]
    hidden, lengths = [], []
    for layer in range(n_layers):
        t_max = max(outs[layer].shape[1] for _, outs in per_group)
        ref = per_group[0][1][layer]
        h = ref.new_zeros(bsz, t_max, ref.shape[2])
        lens = torch.zeros(bsz, dtype=torch.long, device=wavs.device)
        for idx, outs in per_group:
            t = outs[layer].shape[1]
            h[idx, :t] = outs[layer]
            lens[idx] = t
        hidden.append(h)
        lengths.append(lens)
    return UpstreamOutput(hidden=hidden, lengths=lengths)


def conv_out_lengths(lengths: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Frames out of an unpadded 1-D convolution: floor((n - k) / s) + 1 (0 when n < k)."""
    return torch.div(lengths - kernel, stride, rounding_mode="floor").add(1).clamp(min=0)


def cnn_layer_specs(kernels: Sequence[int], strides: Sequence[int], dims: Sequence[int]) -> list[LayerSpec]:
    """LayerSpecs `cnn1..cnnN` for a conv feature encoder.

    Indexing convention: CNN layers get NEGATIVE indices, cnn1 = -N ... cnnN = -1, so that
    transformer layers keep 0..L (HF/s3prl positions) and sorting by index keeps depth order.
    Each stride is the product of the strides up to that layer (in input samples).
    """
    specs, hop = [], 1
    n = len(kernels)
    for i, (s, d) in enumerate(zip(strides, dims)):
        hop *= int(s)
        specs.append(LayerSpec(name=f"cnn{i + 1}", index=i - n, dim=int(d), stride=hop, weighted_sum=False))
    return specs


def file_checksum(paths: Iterable[Path], n_chars: int = 16) -> str:
    """sha256 over the given files' names and bytes: the 'revision' of local weights."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()[:n_chars]
