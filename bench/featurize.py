"""What the probe bank does to features around a task's head: pooling, the weighted sum, SpecAugment.

These belong to the bank, not to any one task: the pooled cache stores `masked_mean`s, every
task's weighted-sum head is the same `WeightedSum`, and the bank applies `spec_augment` to
frame-level inputs (with the same masks for every head) before handing them to the task.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.params import SpecAugParams


def masked_mean(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames of [..., B, T, D] given lengths [B] -> [..., B, D]."""
    t = x.shape[-2]
    mask = (torch.arange(t, device=x.device)[None, :] < lens[:, None]).to(x.dtype)  # [B, T]
    summed = (x * mask[..., None]).sum(-2)
    return summed / lens.clamp(min=1).to(x.dtype)[:, None]


class WeightedSum(nn.Module):
    """s3prl's featurizer: one zero-initialised scalar per layer, softmax, weighted sum.

    With `layer_norm` each layer is normalised (no affine) before summing; the caller
    supplies the already-normalised layers so the pooled cache can hold their means. The
    probe bank feeds the sum to one more slice of a stacked head (`bench.probe.HeadGroup`).
    """

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def normalized(self) -> torch.Tensor:
        return F.softmax(self.weights, dim=0)

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        """[L, ...] -> [...]"""
        w = self.normalized().to(layers.dtype)
        return torch.tensordot(w, layers, dims=([0], [0]))


def weighted_sums(featurizers: Sequence[WeightedSum], layers: torch.Tensor) -> torch.Tensor:
    """Each featurizer's sum of the same layers [L, ...] -> [K, ...], in one matmul: the layers
    are read once for the K weighted sums of the tuner's stacked rates, not K times."""
    w = torch.stack([f.normalized() for f in featurizers]).to(layers.dtype)
    return torch.tensordot(w, layers, dims=([1], [0]))


def _time_warp(seq: torch.Tensor, window: int, generator: torch.Generator) -> torch.Tensor:
    """s3prl's TimeWarp of one utterance [G, n, D]: the frames before a random centre are
    stretched or squeezed (bicubic) to end at a random point within +-window of it."""
    n, d = seq.shape[-2:]
    if n - window <= window:
        return seq
    center = int(torch.randint(window, n - window, (1,), generator=generator))
    warped = int(torch.randint(center - window, center + window, (1,), generator=generator)) + 1
    img = seq[:, None]
    left = F.interpolate(img[:, :, :center], (warped, d), mode="bicubic", align_corners=False)
    right = F.interpolate(img[:, :, center:], (n - warped, d), mode="bicubic", align_corners=False)
    return torch.cat([left, right], dim=2)[:, 0]


def _band_mask(size: int, width: Sequence[int], num: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """s3prl's MaskAlongAxis: `num` bands per utterance, widths in [low, high), start positions
    drawn below `size` minus the widest band of the whole batch. [B, size] bool."""
    length = torch.randint(int(width[0]), int(width[1]), (batch, num), generator=generator).unsqueeze(2)
    pos = torch.randint(0, max(1, size - int(length.max())), (batch, num), generator=generator).unsqueeze(2)
    aran = torch.arange(size)[None, None, :]
    return ((pos <= aran) & (aran < pos + length)).any(dim=1)


def spec_augment(x: torch.Tensor, lens: torch.Tensor, cfg: SpecAugParams, generator: torch.Generator) -> torch.Tensor:
    """s3prl's SpecAug (downstream/specaug.py) on [..., B, T, D], the same draws for every head.

    In s3prl's order and with its random draws in the same sequence (so a generator seeded
    like torch's global one reproduces s3prl's masks): time warp of each utterance within its
    length (when apply_time_warp), then num_freq_mask feature bands, then num_time_mask time
    bands, each band's position drawn over the whole padded batch. Time warping leaves zeros past
    an utterance's length, as s3prl's re-padded batch has (the heads ignore those frames either
    way). Warping and masking are linear in
    the features, so they commute with the weighted sum and sharing draws across heads
    changes nothing for any single head.
    """
    if not cfg.enabled:
        return x
    *lead, b, t, d = x.shape
    y = x.reshape(-1, b, t, d)
    n = [int(v) for v in lens]
    t_max = max(n)
    if cfg.apply_time_warp:
        window = cfg.time_warp_window
        y = torch.stack([F.pad(_time_warp(y[:, i, : n[i]], window, generator), (0, 0, 0, t - n[i]))
                         for i in range(b)], dim=1)
    if cfg.num_freq_mask > 0:
        freq = _band_mask(d, cfg.freq_mask_width_range, cfg.num_freq_mask, b, generator)
        y = y.masked_fill(freq[:, None, :].to(y.device), 0.0)
    if cfg.num_time_mask > 0:
        time = F.pad(_band_mask(t_max, cfg.time_mask_width_range, cfg.num_time_mask, b, generator),
                     (0, t - t_max))
        y = y.masked_fill(time[:, :, None].to(y.device), 0.0)
    return y.reshape(*lead, b, t, d)
