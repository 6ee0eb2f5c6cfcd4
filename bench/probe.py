"""The probe bank: every single-layer head and the weighted-sum head of one (upstream, task).

Each batch costs one upstream forward (frame-level tasks) or one gather from the pooled
cache (utterance-level tasks); every head then takes its own step on it. Heads never share
parameters or optimiser state: single-layer heads of equal width are *stacked* (slice g of
every tensor is head g's) so one bmm serves them all, and `StackedAdam` is Adam applied
element-wise with per-head gradient clipping, per-head step counts and a per-head stop
switch — mathematically G separate `torch.optim.Adam` + `clip_grad_norm_` runs. The
weighted-sum head joins the stack as one more slice when its width and rate match (its
layer weights are that slice's extra parameters); heads that cannot be stacked (LSTMs) get a
plain `torch.optim.Adam` each.

Every head keeps its best-dev checkpoint (dev evaluated every `eval_every` steps and at the
end) and is tested with it. A step whose gradient norm is NaN/inf is skipped for that head
and training goes on, as s3prl's runner does (`nonfinite: skip`, flagged "nonfinite_steps");
with `nonfinite: stop` such a head stops for good, is flagged "diverged", and the rest go on.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bench import schema
from bench.config import ConfigError, merge
from bench.data.manifest import Corpus, Utterance
from bench.extract import audio_batches, forward, length_buckets, pick_device
from bench.featurize import WeightedSum, spec_augment, weighted_sums
from bench.params import ProbeParams
from bench.records import LayerScore, ProbeResult, WeightedSumScore, upstream_info
from bench.results import UnitOutcome, config_hash, is_done, read_record, result_path, write_record
from bench.types import Batch, LayerSpec, Upstream, UpstreamOutput
from tasks.base import tile_heads

WS = "weighted_sum"


# ---------------------------------------------------------------- optimisers


class StackedAdam:
    """Adam over stacked heads (leading dim G of every tensor), each head its own run.

    Matches torch.optim.Adam (defaults, no weight decay) plus clip_grad_norm_(max_norm)
    applied to each head separately; a head not in `active` is left untouched, state too.
    The update is torch's fused Adam kernel (what `torch.optim.Adam(fused=True)` runs: one
    pass over each tensor) on slices of the stacked tensors, one call per (rate, step count),
    so its cost is the parameters' size, not a Python loop over heads or a dozen passes.
    """

    def __init__(self, params: Sequence[nn.Parameter], groups: int, lr: float | Sequence[float], clip: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 extra: Mapping[int, Sequence[nn.Parameter]] | None = None):
        self.params = list(params)
        self.groups, self.clip, self.betas, self.eps = groups, clip, betas, eps
        # One learning rate per head (a scalar is every head's): the tuner stacks several rates.
        self.lr = torch.as_tensor(lr, dtype=torch.float64).expand(groups).tolist()
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = [0] * groups
        # Unstacked parameters owned by one head each (the weighted sums' layer weights).
        self.extra = {h % groups: list(ps) for h, ps in (extra or {}).items()}
        self.em = {h: [torch.zeros_like(p) for p in ps] for h, ps in self.extra.items()}
        self.ev = {h: [torch.zeros_like(p) for p in ps] for h, ps in self.extra.items()}

    def _extra_params(self) -> list[nn.Parameter]:
        return [p for ps in self.extra.values() for p in ps]

    def zero_grad(self) -> None:
        for p in self.params + self._extra_params():
            p.grad = None

    def grad_norms(self) -> torch.Tensor:
        """Every head's gradient norm [G], its stacked slices and its own extra parameters together."""
        sq = torch.zeros(self.groups, device=self.params[0].device)
        for p in self.params:
            if p.grad is not None:
                sq += torch.linalg.vector_norm(p.grad.detach().reshape(self.groups, -1), dim=1,
                                               dtype=torch.float32).square()
        for h, ps in self.extra.items():
            for p in ps:
                if p.grad is not None:
                    sq[h] += torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float32).square()
        return sq.sqrt()

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> torch.Tensor:
        """Clip and step every active head with a finite gradient; returns the pre-clip norms [G]."""
        norms = self.grad_norms()
        go = (active.to(norms.device) & torch.isfinite(norms)).tolist()
        if not any(go):
            return norms.cpu()
        coef = (self.clip / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s coefficient, per head
        for p in self.params:
            if p.grad is not None:
                p.grad.mul_(coef.view((self.groups,) + (1,) * (p.dim() - 1)).to(p.dtype))
        calls: dict[tuple[float, int], tuple[list, list, list, list]] = {}
        h = 0
        while h < self.groups:  # runs of consecutive heads that step alike share one slice per tensor
            if not go[h]:
                h += 1
                continue
            self.t[h] += 1
            key = (self.lr[h], self.t[h])
            end = h + 1
            while end < self.groups and go[end] and (self.lr[end], self.t[end] + 1) == key:
                self.t[end] += 1
                end += 1
            lists = calls.setdefault(key, ([], [], [], []))
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is not None:
                    for out, x in zip(lists, (p, p.grad, m, v)):
                        out.append(x[h:end])
            for g in range(h, end):
                for p, m, v in zip(self.extra.get(g, ()), self.em.get(g, ()), self.ev.get(g, ())):
                    if p.grad is not None:
                        p.grad.mul_(coef[g].to(p.dtype))
                        for out, x in zip(lists, (p, p.grad, m, v)):
                            out.append(x)
            h = end
        b1, b2 = self.betas
        for (lr, t), (ps, gs, ms, vs) in calls.items():
            if ps:
                steps = [torch.tensor(float(t), device=ps[0].device)] * len(ps)
                torch._fused_adam_(ps, gs, ms, vs, [], steps, lr=lr, beta1=b1, beta2=b2, weight_decay=0.0,
                                   eps=self.eps, amsgrad=False, maximize=False)
        return norms.cpu()

    def snapshot(self, g: int) -> list[torch.Tensor]:
        own = [p.detach()[g].clone() for p in self.params]
        return own + [p.detach().clone() for p in self.extra.get(g, ())]

    @torch.no_grad()
    def restore(self, g: int, state: list[torch.Tensor]) -> None:
        for p, s in zip(self.params, state):
            p[g].copy_(s)
        for p, s in zip(self.extra.get(g, ()), state[len(self.params):]):
            p.copy_(s)


class ModuleAdam:
    """One torch.optim.Adam and clip_grad_norm_ per head module (heads that cannot be stacked)."""

    def __init__(self, modules: Sequence[nn.Module], lr: float | Sequence[float], clip: float):
        self.modules = list(modules)
        self.clip = clip
        lrs = [float(lr)] * len(self.modules) if isinstance(lr, (int, float)) else [float(x) for x in lr]
        self.opts = [torch.optim.Adam(m.parameters(), lr=r) for m, r in zip(self.modules, lrs)]

    def zero_grad(self) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=True)

    def step(self, active: torch.Tensor) -> torch.Tensor:
        norms = torch.zeros(len(self.modules))
        for g, (m, o) in enumerate(zip(self.modules, self.opts)):
            if not bool(active[g]):
                continue
            params = [p for p in m.parameters() if p.grad is not None]
            if not params:
                continue
            n = torch.nn.utils.clip_grad_norm_(params, self.clip)
            norms[g] = float(n)
            if torch.isfinite(n):
                o.step()
        return norms

    def snapshot(self, g: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.modules[g].state_dict().items()}

    def restore(self, g: int, state: dict[str, torch.Tensor]) -> None:
        self.modules[g].load_state_dict(state)


# ---------------------------------------------------------------- heads and their bookkeeping


@dataclass
class Features:
    """One batch of every layer: pooled [B, D] (with `ln` the layer-normed means) or frames [B, T, D]."""

    layers: list[torch.Tensor]
    lengths: list[torch.Tensor] | None = None
    ln: list[torch.Tensor] | None = None

    def normed(self, l: int) -> torch.Tensor:
        if self.ln is not None:
            return self.ln[l]
        h = self.layers[l]
        return F.layer_norm(h, h.shape[-1:])


@dataclass
class HeadGroup:
    """Heads trained together: single-layer heads of one width, then (optionally) the weighted sum.

    The heads come in `copies` (the tuner trains several learning rates at once): slice
    `c * len(names) + j` is head `names[j]` of copy c. Within a copy the weighted-sum head,
    when present, is the last slice; its input is that copy's `featurizers[c]` over the
    `ws_ids` layers.
    """

    names: list[str]  # result keys of one copy: layer names, and WS last
    layer_ids: list[int]  # positions in upstream.layers of the single-layer heads
    module: nn.Module
    opt: StackedAdam | ModuleAdam
    ws_ids: list[int] | None = None  # positions of the layers the weighted sum mixes
    ws_factors: list[int] | None = None  # each one's stride / the finest (frames repeated that often)
    featurizers: list[nn.Module] = field(default_factory=list)  # one weighted sum per copy
    layer_norm: bool = False
    copies: int = 1
    active: torch.Tensor = field(default=None)  # type: ignore[assignment]
    diverged: list[int] = field(default_factory=list)  # step at which each head stopped (-1: never)
    skipped: list[int] = field(default_factory=list)  # optimiser steps skipped for a non-finite gradient
    best_dev: list[float | None] = field(default_factory=list)
    best_step: list[int | None] = field(default_factory=list)
    best_state: list[Any] = field(default_factory=list)
    test: list[float | None] = field(default_factory=list)
    test_extra: list[dict[str, float]] = field(default_factory=list)  # the task's secondary test metrics

    def __post_init__(self):
        g = len(self.names) * self.copies
        self.active = torch.ones(g, dtype=torch.bool)
        self.diverged = [-1] * g
        self.skipped = [0] * g
        self.best_dev = [None] * g
        self.best_step = [None] * g
        self.best_state = [None] * g
        self.test = [None] * g
        self.test_extra = [{} for _ in range(g)]

    @property
    def size(self) -> int:
        return len(self.active)

    def slot(self, g: int) -> tuple[int, str]:
        """(copy, head name) of slice g."""
        return g // len(self.names), self.names[g % len(self.names)]

    def running(self) -> torch.Tensor | None:
        """The slices a step computes: None (every slice) while all heads train or when the module
        cannot run a subset; else the active ones (a CPU index, like `active`: no device sync), so
        a pruned or diverged head costs nothing."""
        if bool(self.active.all()) or not getattr(self.module, "selectable", False):
            return None
        return torch.nonzero(self.active).flatten()

    def run(self, x: torch.Tensor, lens: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor:
        """Logits of the slices `rows` (all when None) from their inputs x."""
        return self.module(x, lens) if rows is None else self.module(x, lens, heads=rows)

    def gather(self, feats: Features, device: torch.device, rows: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inputs [G', B, ...] of the slices `rows` (all G when None), and frame lengths (None when pooled)."""
        if feats.lengths is None:  # pooled [B, D]: rates do not matter
            single = (torch.stack([feats.layers[l] for l in self.layer_ids]).to(device, non_blocking=True)
                      if self.layer_ids else None)
            mixed = None
            if self.ws_ids is not None:
                xs = [feats.normed(l) if self.layer_norm else feats.layers[l] for l in self.ws_ids]
                mixed = torch.stack(xs).to(device, non_blocking=True)
            return self._copies(single, mixed, rows), None
        ids = list(self.layer_ids)
        xs = [feats.layers[l] for l in ids]
        factors = [1] * len(ids)
        if self.ws_ids is not None:
            xs += [feats.normed(l) if self.layer_norm else feats.layers[l] for l in self.ws_ids]
            ids += self.ws_ids
            factors += self.ws_factors or [1] * len(self.ws_ids)
        xs, lens = align_frames(xs, [feats.lengths[l] for l in ids], factors)
        x = torch.stack(xs).to(device, non_blocking=True)
        n = len(self.layer_ids)
        return (self._copies(x[:n] if n else None, x[n:] if self.ws_ids is not None else None, rows),
                lens.to(device))

    def _copies(self, single: torch.Tensor | None, mixed: torch.Tensor | None,
                rows: torch.Tensor | None) -> torch.Tensor:
        """The input of each slice in `rows` (all when None): slice c * len(names) + j is single layer
        j, or copy c's weighted sum of `mixed` when j is the weighted-sum head."""
        sums = weighted_sums(self.featurizers, mixed) if mixed is not None else None
        src = torch.cat([t for t in (single, sums) if t is not None])
        if rows is None and self.copies == 1:
            return src  # the single layers, then the weighted sum: already the slice order
        n, per = len(self.layer_ids), len(self.names)
        slices = range(self.size) if rows is None else rows.tolist()
        pick = [g % per if g % per < n else n + g // per for g in slices]
        return src.index_select(0, torch.tensor(pick, device=src.device))

    def train(self, mode: bool = True) -> None:
        self.module.train(mode)
        for f in self.featurizers:
            f.train(mode)

    def stop(self, heads: torch.Tensor, step: int) -> None:
        for g in torch.nonzero(heads & self.active).flatten().tolist():
            self.active[g] = False
            self.diverged[g] = step

    def skip(self, heads: torch.Tensor) -> None:
        for g in torch.nonzero(heads & self.active).flatten().tolist():
            self.skipped[g] += 1


def align_frames(xs: Sequence[torch.Tensor], lengths: Sequence[torch.Tensor], factors: Sequence[int]
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """[B, T_l, D] layers on one time grid: each layer's frames repeated `factor` times (s3prl's
    MR-HuBERT expert: `repeat_interleave` up to the finest rate), all cut to the shortest; the
    valid length of an utterance is its smallest over the layers. Layers of one stride whose
    frame counts differ by a frame (an MR-HuBERT decoder block vs its encoder block) lose it."""
    xs = [x if f == 1 else x.repeat_interleave(int(f), dim=1) for x, f in zip(xs, factors)]
    t = min(x.shape[1] for x in xs)
    lens = torch.stack([n * int(f) for n, f in zip(lengths, factors)]).min(0).values.clamp(max=t)
    return [x[:, :t] for x in xs], lens


def better(a: float, b: float | None, higher: bool) -> bool:
    return b is None or (a > b if higher else a < b)


# ---------------------------------------------------------------- config


def resolve_params(task: str, preset: str = "quick", overrides: dict | None = None) -> dict[str, Any]:
    """The task's preset values (its `preset_file`) with overrides merged: the mapping a unit is
    hashed on, checked by type now (unknown keys and bad values are errors naming the file)."""
    import tasks

    t = tasks.get(task)
    presets = t.presets()
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r} for task {task} in {t.preset_file}; "
                          f"presets: {', '.join(presets)}")
    params = merge(presets[preset], overrides or {}, where=f"{task} preset {preset!r}")
    typed_params(task, params, f"{task} preset {preset!r} ({t.preset_file}{' with overrides' if overrides else ''})")
    return params


def typed_params(task: str, params: dict[str, Any], where: str | None = None) -> ProbeParams:
    """The task's typed view (its `params_type`) of resolved preset values."""
    import tasks

    return schema.load(tasks.get(task).params_type, params, where or f"{task} params")


def normalize_layers(layers: Any) -> str | list[int]:
    """`None`/"all" -> "all"; "every:k"; "none" (weighted sum only); "0,3,5" or [0, 3, 5] -> list."""
    if layers is None:
        return "all"
    if isinstance(layers, str):
        text = layers.strip().lower()
        if text in ("all", "none"):
            return text
        if text.startswith("every:"):
            k = text.split(":", 1)[1]
            if not k.isdigit() or int(k) < 1:
                raise ConfigError(f"layers {layers!r}: every:K needs a positive integer K")
            return f"every:{int(k)}"
        try:
            return sorted({int(x) for x in text.split(",") if x.strip()})
        except ValueError:
            raise ConfigError(f"layers {layers!r} must be all, none, every:K or a comma list of indices") from None
    if isinstance(layers, (list, tuple)):
        try:
            return sorted({int(x) for x in layers})
        except (TypeError, ValueError):
            raise ConfigError(f"layers {layers!r} must be integers") from None
    raise ConfigError(f"layers {layers!r} must be all, none, every:K or a list of indices")


def select_layers(selection: str | list[int], specs: Sequence[LayerSpec]) -> list[int]:
    """Positions in `specs` of the selected layers (by LayerSpec.index)."""
    if selection == "all":
        return list(range(len(specs)))
    if selection == "none":
        return []
    if isinstance(selection, str):
        k = int(selection.split(":")[1])
        return list(range(0, len(specs), k))
    by_index = {s.index: i for i, s in enumerate(specs)}
    bad = [i for i in selection if i not in by_index]
    if bad:
        raise ValueError(f"layers {bad} do not exist; this upstream has layer indices "
                         f"{[s.index for s in specs]}")
    return [by_index[i] for i in selection]


def weighted_sum_layers(specs: Sequence[LayerSpec]) -> list[int]:
    """The layers s3prl's featurizer sums: its hidden states, i.e. the largest set of one width
    among the layers marked `weighted_sum` (not CNN layers, not MR-HuBERT's sampling modules),
    ties to the deepest. Their strides may differ only by integer factors of the finest (MR-HuBERT:
    frames are repeated up to the finest rate, `align_frames`); otherwise one stride is kept."""
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(specs):
        if s.weighted_sum:
            groups.setdefault(s.dim, []).append(i)
    if not groups:  # nothing marked (a custom model): every layer is a candidate
        groups = {s.dim: [] for s in specs}
        for i, s in enumerate(specs):
            groups[s.dim].append(i)
    ids = max(groups.values(), key=lambda ids: (len(ids), max(ids)))
    finest = min(specs[i].stride for i in ids)
    if all(specs[i].stride % finest == 0 for i in ids):
        return ids
    by_stride: dict[int, list[int]] = {}
    for i in ids:
        by_stride.setdefault(specs[i].stride, []).append(i)
    return max(by_stride.values(), key=lambda ids: (len(ids), max(ids)))


def weighted_sum_stride(specs: Sequence[LayerSpec], ids: Sequence[int]) -> int:
    """The rate the weighted sum runs at: the finest stride among its layers."""
    return min(specs[i].stride for i in ids)


def _spec(upstream: str | Upstream) -> str:
    """The canonical spec (options included, sorted): the upstream's part of a unit's identity."""
    import upstreams

    return upstreams.canonical(upstream) if isinstance(upstream, str) else upstream.spec


def plan_probe(upstream: str | Upstream, task: str, corpus: str | Path | Corpus, *, preset: str = "quick",
               overrides: dict | None = None, layers: Any = None, out_dir: str | os.PathLike = "runs",
               seed: int = 0) -> tuple[Path, dict[str, Any], str]:
    """Result path, resolved config and config hash of one unit; loads no model and no audio."""
    spec = _spec(upstream)
    root = corpus.root if isinstance(corpus, Corpus) else corpus
    params = resolve_params(task, preset, overrides)
    config = {
        "upstream": spec,
        "task": task,
        "preset": preset,
        "params": params,
        "layers": normalize_layers(layers),
        "corpus": str(Path(root).resolve()),
        "seed": int(seed),
    }
    return result_path(out_dir, "probe", spec, task, seed), config, config_hash(config)


# ---------------------------------------------------------------- the bank


def seed_everything(seed: int) -> None:
    """Seeds alone make CPU runs repeatable; on CUDA, cuDNN (the ASR LSTMs) must also be asked
    for its deterministic kernels. CTC's CUDA backward stays nondeterministic in torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def build_groups(task, space, specs: Sequence[LayerSpec], selected: Sequence[int], params: ProbeParams,
                 seed: int, device: torch.device, rates: Mapping[str, Sequence[float]] | None = None
                 ) -> list[HeadGroup]:
    """Stacked single-layer heads per (dim, stride); the weighted-sum head joins its shape's stack.

    `rates` (head name -> K learning rates, the same K for every head) stacks K copies of
    every head, copy c of head h training at `rates[h][c]`; without it one copy trains at
    `params.lr`.
    """
    gen = torch.Generator().manual_seed(seed)
    clip = params.clip
    copies = len(next(iter(rates.values()))) if rates else 1
    if rates and any(len(r) != copies for r in rates.values()):
        raise ValueError("build_groups: every head needs the same number of learning rates")
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i in selected:
        by_shape.setdefault((specs[i].dim, specs[i].stride), []).append(i)
    ws_cfg = params.weighted_sum
    ws_ids = weighted_sum_layers(specs) if ws_cfg.enabled else None
    ws_shape = (specs[ws_ids[0]].dim, weighted_sum_stride(specs, ws_ids)) if ws_ids else None
    if ws_shape is not None:
        by_shape.setdefault(ws_shape, [])
    groups: list[HeadGroup] = []
    for shape, ids in by_shape.items():
        with_ws = shape == ws_shape
        names = [specs[i].name for i in ids] + ([WS] if with_ws else [])
        per = len(names)
        lrs = [float(rates[n][c]) if rates else params.lr for c in range(copies) for n in names]
        module = tile_heads(task.make_heads(per, shape[0], space, params, gen), copies).to(device)
        featurizers = [WeightedSum(len(ws_ids)).to(device) for _ in range(copies)] if with_ws else []
        # Each weighted sum's layer weights belong to its copy's last slice.
        owned = {(c + 1) * per - 1: f for c, f in enumerate(featurizers)}
        if owned and hasattr(module, "trained_inputs"):  # the single layers' inputs are fixed features
            module.trained_inputs(torch.tensor(sorted(owned), dtype=torch.long, device=device))
        if getattr(module, "stacked", False):
            opt = StackedAdam(list(module.parameters()), per * copies, lrs, clip,
                              extra={g: list(f.parameters()) for g, f in owned.items()})
        else:
            heads = list(module.heads)
            for g, f in owned.items():
                heads[g] = nn.ModuleList([heads[g], f])
            opt = ModuleAdam(heads, lrs, clip)
        factors = [specs[i].stride // ws_shape[1] for i in ws_ids] if with_ws else None
        groups.append(HeadGroup(names, ids, module, opt, ws_ids if with_ws else None, factors, featurizers,
                                ws_cfg.layer_norm, copies))
    if not groups:
        raise ConfigError("nothing to train: no layer selected and weighted_sum.enabled is false")
    return groups


class Bank:
    """Trains, evaluates and tests a set of HeadGroups on batches of `Features`."""

    def __init__(self, task, space, groups: list[HeadGroup], params: ProbeParams, device: torch.device, seed: int):
        self.task, self.space, self.groups, self.params, self.device = task, space, groups, params, device
        self.aug_gen = torch.Generator().manual_seed(seed + 1)
        self.specaug = params.specaug
        self.skip_nonfinite = params.nonfinite == "skip"

    @property
    def any_active(self) -> bool:
        return any(bool(g.active.any()) for g in self.groups)

    def train_step(self, micro: Iterator[tuple[Features, Any]], step: int) -> None:
        """One optimiser step of every head over `accumulate` micro-batches."""
        accum = self.params.accumulate
        for grp in self.groups:
            grp.train()
            grp.opt.zero_grad()
        for _ in range(accum):
            feats, batch = next(micro)
            batch = batch.to(self.device)
            for grp in self.groups:
                if not bool(grp.active.any()):
                    continue
                rows = grp.running()
                x, lens = grp.gather(feats, self.device, rows)
                if lens is not None and self.specaug is not None:
                    x = spec_augment(x, lens, self.specaug, self.aug_gen)
                losses = self.task.losses(grp.run(x, lens, rows), lens, batch, self.space)
                if not self.skip_nonfinite:  # skip mode: a NaN loss gives a NaN gradient norm below
                    bad = ~torch.isfinite(losses.detach()).cpu()
                    if rows is not None:
                        bad = torch.zeros(grp.size, dtype=torch.bool).index_fill_(0, rows[bad], True)
                    grp.stop(bad, step)
                act = (grp.active if rows is None else grp.active[rows]).to(losses.device)
                if bool(act.any()):
                    (torch.where(act, losses, torch.zeros_like(losses)).sum() / accum).backward()
        for grp in self.groups:
            if bool(grp.active.any()):
                bad = ~torch.isfinite(grp.opt.step(grp.active))  # the optimisers never step those heads
                if self.skip_nonfinite:
                    grp.skip(bad)
                else:
                    grp.stop(bad, step)

    @torch.no_grad()
    def evaluate(self, batches: Iterator[tuple[Features, Any]]) -> list[list[float | None]]:
        """Every active head's metric on a split (None for stopped heads)."""
        refs, preds = self._predict(batches)
        return [[self.task.score(refs, preds[k][g]) if bool(grp.active[g]) else None for g in range(grp.size)]
                for k, grp in enumerate(self.groups)]

    @torch.no_grad()
    def _predict(self, batches: Iterator[tuple[Features, Any]]) -> tuple[list[Any], list[list[list[Any]]]]:
        """References of a split and every head's predictions."""
        preds: list[list[list[Any]]] = [[[] for _ in range(g.size)] for g in self.groups]
        refs: list[Any] = []
        for grp in self.groups:
            grp.train(False)
        for feats, batch in batches:
            refs.extend(self.task.references(batch, self.space))
            for k, grp in enumerate(self.groups):
                if not bool(grp.active.any()):
                    continue
                rows = grp.running()
                x, lens = grp.gather(feats, self.device, rows)
                out = self.task.predict(grp.run(x, lens, rows), lens, self.space)
                for g, o in zip(range(grp.size) if rows is None else rows.tolist(), out):
                    preds[k][g].extend(o)
        return refs, preds

    def record_dev(self, scores: list[list[float | None]], step: int) -> None:
        for grp, sc in zip(self.groups, scores):
            for g, s in enumerate(sc):
                if s is not None and better(s, grp.best_dev[g], self.task.higher_is_better):
                    grp.best_dev[g], grp.best_step[g] = s, step
                    grp.best_state[g] = grp.opt.snapshot(g)

    def restore_best(self) -> None:
        """Load every head's best-dev checkpoint; heads without one are left out of testing."""
        for grp in self.groups:
            for g in range(grp.size):
                if grp.best_state[g] is not None:
                    grp.opt.restore(g, grp.best_state[g])
                    grp.active[g] = True
                else:
                    grp.active[g] = False

    @torch.no_grad()
    def record_test(self, batches: Iterator[tuple[Features, Any]]) -> None:
        """Every active head's test metric, and the task's secondary metrics (ASR: CER)."""
        refs, preds = self._predict(batches)
        for k, grp in enumerate(self.groups):
            grp.test = [self.task.score(refs, preds[k][g]) if bool(grp.active[g]) else None for g in range(grp.size)]
            grp.test_extra = [self.task.extra_metrics(refs, preds[k][g]) if bool(grp.active[g]) else {}
                              for g in range(grp.size)]


# ---------------------------------------------------------------- data feeding


def _shuffled_batches(n: int, batch_size: int, seed: int,
                      balance: tuple[list[str], list[str]] | None) -> Iterator[list[int]]:
    """Endless training batches: epochs of a seeded permutation, the last batch of an epoch
    partial (s3prl's IC loader), or of a class-balanced draw (`balance` = labels and s3prl
    items, see BalancedSampler) in full batches only (KS's loader has drop_last)."""
    epoch = 0
    if balance is not None:
        from bench.data.sampler import BalancedSampler

        sampler = BalancedSampler(*balance, seed=seed)
    while True:
        order = sampler.indices(epoch) if balance is not None else np.random.default_rng([seed, epoch]).permutation(n)
        size = min(batch_size, len(order))
        for s in range(0, len(order) - size + 1 if balance is not None else len(order), size):
            yield [int(i) for i in order[s:s + size]]
        epoch += 1


def _dev_draws(task, dev: Sequence[Utterance], sampler: str, seed: int):
    """`dev_sampler: balanced` (s3prl's KS): each evaluation scores a fresh class-balanced draw
    of the dev set, with replacement (s3prl's WeightedRandomSampler on its dev loader), so the
    kept checkpoint is the best on balanced accuracy; `all`: every dev utterance once."""
    if sampler == "all":
        return None
    balance = task.balanced_draw(dev)
    if balance is None:
        raise ConfigError(f"dev_sampler: balanced needs a class-balanced task; {task.name} is not one")
    from bench.data.sampler import BalancedSampler

    return BalancedSampler(*balance, seed=seed, stream=1)


def _pooled_batches(pooled, targets, indices: Iterator[list[int]]) -> Iterator[tuple[Features, Any]]:
    for idx in indices:
        ix = torch.tensor(idx, dtype=torch.long)
        feats = Features([m[ix] for m in pooled.mean], None, [m[ix] for m in pooled.ln_mean])
        yield feats, Batch(targets.y[ix])


def _frames(out: UpstreamOutput) -> Features:
    # Outputs of inference_mode cannot be saved for backward: clone them into normal tensors.
    return Features([h.clone() for h in out.hidden], [n.clone() for n in out.lengths])


def train_epochs(durs: Sequence[float], params: ProbeParams, seed: int) -> Iterator[list[list[int]]]:
    """Endless epochs, each the shuffled length buckets of `batch_size`; with `half_batch_over_s`, a
    bucket whose longest utterance is longer is cut in two (s3prl: ASR's HALF_BATCHSIZE_TIME, PR's
    300000 samples), both halves used."""
    half = params.half_batch_over_s
    if params.max_batch_seconds is None:
        raise ConfigError("frame-level tasks bucket their training batches: give max_batch_seconds in the preset")
    epoch = 0
    while True:
        batches = []
        for idx in length_buckets(durs, params.max_batch_seconds, params.batch_size):
            if half is not None and len(idx) > 1 and max(durs[i] for i in idx) > half:
                batches += [idx[: len(idx) // 2], idx[len(idx) // 2:]]
            else:
                batches.append(idx)
        random.Random(seed * 100003 + epoch).shuffle(batches)
        yield batches
        epoch += 1


def train_batches(durs: Sequence[float], params: ProbeParams, seed: int) -> Iterator[list[int]]:
    """The batches of `train_epochs`, one after the other."""
    return itertools.chain.from_iterable(train_epochs(durs, params, seed))


class FrameFeeder:
    """Length-bucketed batches of a split through the upstream (one forward per batch); audio
    loads ahead in `bench.extract.audio_batches` workers."""

    def __init__(self, upstream: Upstream, task, space, device: torch.device, params: ProbeParams):
        self.upstream, self.task, self.space, self.device, self.params = upstream, task, space, device, params
        self.forward_s = 0.0  # waiting for audio + upstream forward
        self.kept: dict[int, list[tuple[Features, Any]]] = {}

    def stream(self, utts: Sequence[Utterance], batches: Iterable[list[int]]) -> Iterator[tuple[Features, Any]]:
        loaded = audio_batches(utts, batches, pin=self.device.type == "cuda")
        bf16 = self.params.extract.bf16
        while True:
            t0 = time.perf_counter()
            item = next(loaded, None)
            if item is None:
                return
            idx, wavs, lens = item
            feats = _frames(forward(self.upstream, wavs, lens, self.device, bf16=bf16))
            self.forward_s += time.perf_counter() - t0
            yield feats, self.task.targets([utts[i] for i in idx], self.space)

    def train(self, utts: Sequence[Utterance], seed: int) -> Iterator[tuple[Features, Any]]:
        epochs = train_epochs([u.duration for u in utts], self.params, seed)
        if not self.params.extract.keep_train:
            return self.stream(utts, itertools.chain.from_iterable(epochs))
        return self._kept_train(utts, epochs)

    def _kept_train(self, utts: Sequence[Utterance], epochs: Iterator[list[list[int]]]
                    ) -> Iterator[tuple[Features, Any]]:
        """extract.keep_train (small corpora): the first epoch goes through the upstream and each
        utterance's frames are kept (float32, CPU); later epochs re-pad the kept frames into the
        same batches. The frozen upstream would give the same frames again (exactly so where its
        batched padding is exact, `upstream_info.padding`), so only the forwards are saved."""
        kept: dict[int, list[torch.Tensor]] = {}
        first = next(epochs)
        for item, idx in zip(self.stream(utts, first), first):
            feats = item[0]
            for j, i in enumerate(idx):
                kept[i] = [h[j, :int(n[j])].cpu() for h, n in zip(feats.layers, feats.lengths)]
            yield item
        for epoch in epochs:
            for idx in epoch:
                layers = [nn.utils.rnn.pad_sequence([kept[i][k] for i in idx], batch_first=True).to(self.device)
                          for k in range(len(kept[idx[0]]))]
                lengths = [torch.tensor([len(kept[i][k]) for i in idx], device=self.device)
                           for k in range(len(layers))]
                yield Features(layers, lengths), self.task.targets([utts[i] for i in idx], self.space)

    def split(self, utts: Sequence[Utterance]) -> Iterator[tuple[Features, Any]]:
        """Evaluation batches; with extract.keep_eval the first pass is kept in memory (small corpora)."""
        ex = self.params.extract
        if id(utts) in self.kept:
            yield from self.kept[id(utts)]
            return
        kept = []
        buckets = length_buckets([u.duration for u in utts], ex.max_seconds, ex.max_size)
        for item in self.stream(utts, buckets):
            if ex.keep_eval:
                kept.append((Features([h.cpu() for h in item[0].layers], [n.cpu() for n in item[0].lengths]),
                             item[1]))
            yield item
        if ex.keep_eval:
            self.kept[id(utts)] = kept


# ---------------------------------------------------------------- one unit


def _load_corpus(corpus: str | Path | Corpus, kind: str) -> Corpus:
    if isinstance(corpus, Corpus):
        if corpus.kind != kind:
            raise ValueError(f"corpus {corpus.root} is {corpus.kind}, the task needs {kind}")
        return corpus
    from bench.data import open_corpus

    return open_corpus(corpus, kind)


@dataclass
class ProbeData:
    """What every bank of one (upstream, task) trains on: built once, shared by every bank.

    `train()` starts a fresh seeded stream of training batches (the tuner trains one bank
    per round of learning rates, each on the same batches); `split(name, k)` gives dev or test
    batches, `k` numbering a run's dev evaluations (with `dev_sampler: balanced` each draws its
    own balanced sample); `forward_s()` is the upstream time spent inside them so far.
    """

    task: Any
    params: ProbeParams
    space: Any
    upstream: Upstream
    specs: list[LayerSpec]
    corpus: Corpus
    device: torch.device
    train: Callable[[], Iterator[tuple[Features, Any]]]
    split: Callable[..., Iterator[tuple[Features, Any]]]
    forward_s: Callable[[], float]
    extract_s: float = 0.0  # pooled-cache extraction (utterance-level tasks)


def open_data(upstream: str | Upstream, task: str, corpus: str | Path | Corpus, config: dict[str, Any], *,
              out_dir: str | os.PathLike, seed: int, device: torch.device, progress: bool) -> ProbeData:
    """Load the corpus and the upstream, fit the task's label space, and set up the batch sources
    (utterance-level tasks: the pooled cache, extracted now if missing)."""
    import tasks

    t = tasks.get(task)
    params = typed_params(task, config["params"])
    data = _load_corpus(corpus, t.corpus_kind)
    train_u, dev_u, test_u = (data.split(s) for s in (t.splits.train, t.splits.dev, t.splits.test))
    if isinstance(upstream, str):
        import upstreams

        up = upstreams.load(upstream)
    else:
        up = upstream
    up = up.to(device)
    if isinstance(up, nn.Module):
        up.eval()
    space = t.fit(train_u, params, data.root)
    if t.level == "frame":
        feeder = FrameFeeder(up, t, space, device, params)
        return ProbeData(t, params, space, up, list(up.layers), data, device, lambda: feeder.train(train_u, seed),
                         lambda name, k=0: feeder.split({"dev": dev_u, "test": test_u}[name]),
                         lambda: feeder.forward_s)
    from bench import pooled as pooled_mod

    cache_dir = params.cache_dir or Path(out_dir) / "cache" / "pooled"
    ex = params.extract
    t0 = time.perf_counter()
    feats = {}
    for name, utts in (("train", train_u), ("dev", dev_u), ("test", test_u)):
        feats[name], _ = pooled_mod.load_or_extract(
            up, utts, split=getattr(t.splits, name), corpus_root=config["corpus"], cache_dir=cache_dir,
            device=device, max_seconds=ex.max_seconds, max_size=ex.max_size, bf16=ex.bf16,
            progress=progress)
    extract_s = time.perf_counter() - t0
    tg = {name: t.targets(u, space) for name, u in (("train", train_u), ("dev", dev_u), ("test", test_u))}
    bs = params.batch_size
    balance = t.balanced_draw(train_u)
    dev_draws = _dev_draws(t, dev_u, params.dev_sampler, seed)

    def train():
        return _pooled_batches(feats["train"], tg["train"], _shuffled_batches(len(train_u), bs, seed, balance))

    def split(name, k=0):
        rows = (dev_draws.indices(k).tolist() if name == "dev" and dev_draws is not None
                else list(range(len(feats[name].ids))))
        return _pooled_batches(feats[name], tg[name], iter([rows[s:s + 512] for s in range(0, len(rows), 512)]))

    return ProbeData(t, params, space, up, list(up.layers), data, device, train, split, lambda: 0.0, extract_s)


def open_unit(upstream: str | Upstream, task: str, corpus: str | Path | Corpus, config: dict[str, Any], *,
              out_dir: str | os.PathLike, seed: int, device: str, progress: bool) -> tuple[ProbeData, list[int]]:
    """Seeds, device, data and the selected layers' positions of one probe or tune unit."""
    seed_everything(seed)
    data = open_data(upstream, task, corpus, config, out_dir=out_dir, seed=seed, device=pick_device(device),
                     progress=progress)
    return data, select_layers(config["layers"], data.specs)


def train_bank(bank: Bank, data: ProbeData, *, desc: str, progress: bool = True,
               on_dev: Callable[[int], None] | None = None) -> dict[str, float]:
    """Train every active head for `steps`, keep each head's best-dev checkpoint, then test it.

    `on_dev(step)` runs after each dev evaluation has been recorded (the tuner reports the
    scores to its studies there and stops pruned heads). Returns train_s and eval_s; upstream
    time inside them is left out (it is `data.forward_s()`).
    """
    train_s = eval_s = 0.0
    steps, every = data.params.steps, data.params.eval_every
    fwd = data.forward_s
    batches = data.train()
    evals = itertools.count()  # dev evaluations so far (each balanced dev draw is a new one)
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress, leave=False)
    for step in range(1, steps + 1):
        t0, f0 = time.perf_counter(), fwd()
        bank.train_step(batches, step)
        train_s += time.perf_counter() - t0 - (fwd() - f0)
        bar.update(1)
        if step % every == 0 or step == steps or not bank.any_active:
            t0, f0 = time.perf_counter(), fwd()
            bank.record_dev(bank.evaluate(data.split("dev", next(evals))), step)
            eval_s += time.perf_counter() - t0 - (fwd() - f0)
            if on_dev is not None:
                on_dev(step)
            bar.set_postfix_str(_postfix(bank))
        if not bank.any_active:
            break
    bar.close()
    t0, f0 = time.perf_counter(), fwd()
    bank.restore_best()
    bank.record_test(data.split("test"))
    eval_s += time.perf_counter() - t0 - (fwd() - f0)
    return {"train_s": train_s, "eval_s": eval_s}


def run_probe(upstream: str | Upstream, task: str, corpus: str | Path | Corpus, *, preset: str = "quick",
              overrides: dict | None = None, layers: Any = None, out_dir: str | os.PathLike = "runs", seed: int = 0,
              device: str = "auto", force: bool = False, label: str | None = None,
              progress: bool = True) -> UnitOutcome:
    """Train and test the whole bank of one (upstream, task) and write its result file.

    `upstream` is a spec (loaded through `upstreams.load`) or an already built Upstream;
    `corpus` a folder (opened with `bench.data.open_corpus`) or a Corpus.
    """
    path, config, chash = plan_probe(upstream, task, corpus, preset=preset, overrides=overrides, layers=layers,
                                     out_dir=out_dir, seed=seed)
    if not force and is_done(path, chash):
        return UnitOutcome(path, True, read_record(path, ProbeResult))
    t_start = time.perf_counter()
    data, selected = open_unit(upstream, task, corpus, config, out_dir=out_dir, seed=seed, device=device,
                               progress=progress)
    dev = data.device
    groups = build_groups(data.task, data.space, data.specs, selected, data.params, seed, dev)
    bank = Bank(data.task, data.space, groups, data.params, dev, seed)
    trained = train_bank(bank, data, desc=f"probe {label or config['upstream']} {task}", progress=progress)
    timings = {"extract_s": data.extract_s + data.forward_s(), **trained, "total_s": time.perf_counter() - t_start}
    result = _result(config, chash, data.task, data.space, bank, data.specs, data.upstream, data.corpus, label, dev, timings)
    write_record(path, result)
    return UnitOutcome(path, False, read_record(path, ProbeResult))  # what a resumed run would read


def _postfix(bank: Bank) -> str:
    scored = [(g.slot(k)[1], s) for g in bank.groups for k, s in enumerate(g.best_dev) if s is not None]
    best = [s for n, s in scored if n != WS]
    ws = [s for n, s in scored if n == WS]
    parts = []
    if best:
        parts.append(f"best layer {(max if bank.task.higher_is_better else min)(best):.1f}")
    if ws:
        parts.append(f"ws {(max if bank.task.higher_is_better else min)(ws):.1f}")
    return ", ".join(parts)


def _flags(grp: HeadGroup, g: int, steps: int, eval_every: int) -> list[str]:
    """diverged: loss went NaN/inf and the head stopped; nonfinite_steps: some steps were
    skipped for a NaN/inf gradient (s3prl's behaviour); untrained: stopped before its first dev
    evaluation; not_converged: its best dev score came at the last of several evaluations of a
    full run, so it was still improving when the step budget ran out."""
    flags = []
    if grp.diverged[g] >= 0:
        flags.append("diverged")
    if grp.skipped[g] > 0:
        flags.append("nonfinite_steps")
    if grp.best_dev[g] is None:
        flags.append("untrained")
    elif grp.best_step[g] == steps and steps > eval_every:
        flags.append("not_converged")
    return flags


def _extra(grp, g: int) -> dict[str, Any]:
    """`test_<metric>` entries of the task's secondary metrics (ASR: test_cer)."""
    return {f"test_{k}": v for k, v in grp.test_extra[g].items()}


def _result(config, chash, task, space, bank: Bank, specs, up, data: Corpus, label, device,
            timings) -> ProbeResult:
    per_layer, ws, best_steps, stopped, skipped = [], None, {}, {}, {}
    budget = (int(config["params"]["steps"]), int(config["params"]["eval_every"]))
    for grp in bank.groups:
        for g, name in enumerate(grp.names):
            best_steps[name] = grp.best_step[g]
            if grp.diverged[g] >= 0:
                stopped[name] = grp.diverged[g]
            if grp.skipped[g]:
                skipped[name] = grp.skipped[g]
            if name == WS:
                ws = WeightedSumScore(dev=grp.best_dev[g], test=grp.test[g], extra=_extra(grp, g),
                                      weights=grp.featurizers[0].normalized().detach().cpu().tolist(),
                                      layers=[specs[i].index for i in grp.ws_ids],
                                      layer_names=[specs[i].name for i in grp.ws_ids], repeat=grp.ws_factors,
                                      layer_norm=grp.layer_norm, flags=_flags(grp, g, *budget))
            else:
                i = grp.layer_ids[g]
                per_layer.append(LayerScore(layer=specs[i].index, name=specs[i].name, dev=grp.best_dev[g],
                                            test=grp.test[g], extra=_extra(grp, g), flags=_flags(grp, g, *budget)))
    per_layer.sort(key=lambda r: r.layer)
    return ProbeResult(
        upstream=config["upstream"], label=label, task=task.name, metric=task.metric,
        higher_is_better=task.higher_is_better, targets=task.target_info(space), per_layer=per_layer,
        weighted_sum=ws, corpus=corpus_info(config, data, task), upstream_info=upstream_info(up), config=config,
        config_hash=chash, seed=config["seed"], timings={k: round(v, 3) for k, v in timings.items()},
        device=str(device), best_steps=best_steps, diverged_at=stopped, skipped_steps=skipped)


def corpus_info(config: dict[str, Any], data: Corpus, task) -> dict[str, Any]:
    """What a probe or tuned result records about its corpus: path, kind, utterances per split."""
    return {"path": config["corpus"], "kind": data.kind,
            "splits": {s: len(data.split(s)) for s in task.splits.as_dict().values()}}


def format_table(result: ProbeResult) -> str:
    """Per-layer dev/test with the best dev layer marked and the weighted sum beside it."""
    from bench.compare import best_probed_layer

    best, _, _ = best_probed_layer(result)
    metric = result.metric.upper() if result.metric != "accuracy" else "ACC"
    fmt = lambda v: "   -  " if v is None else f"{v:6.2f}"
    lines = [f"{result.upstream} x {result.task} ({metric} %, {'higher' if result.higher_is_better else 'lower'} "
             "is better)", f"{'layer':>6} {'name':<12} {'dev':>6} {'test':>6}  flags"]
    for r in result.per_layer:
        mark = " <- best" if r.layer == best else ""
        lines.append(f"{r.layer:>6} {r.name[:12]:<12} {fmt(r.dev)} {fmt(r.test)}  {','.join(r.flags)}{mark}")
    ws = result.weighted_sum
    if ws:
        lines.append(f"{'ws':>6} {'weighted sum':<12} {fmt(ws.dev)} {fmt(ws.test)}  {','.join(ws.flags)}")
        w = ", ".join(f"{n}:{x:.2f}" for n, x in zip(ws.layer_names, ws.weights))
        lines.append(f"       weights: {w}")
    return "\n".join(lines)
