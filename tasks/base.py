"""What a task is, and the head building blocks every task shares.

A task says which corpus and splits it reads, how an utterance becomes a target, which head
sits on a layer, the loss, the decoding and the metric. Heads come *stacked*: one module
holds the heads of G layers with the same width so the probe bank can train all of them
with one batched matmul per batch while every head keeps its own parameters (slice g of
each stacked tensor is head g's, nothing is shared).
"""

from __future__ import annotations

import copy
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import jiwer
import torch
import torch.nn.functional as F
from torch import nn

from bench.config import CONFIG_DIR, load_presets
from bench.data.lexicon import Lexicon
from bench.data.manifest import Utterance
from bench.featurize import masked_mean
from bench.params import ProbeParams
from bench.types import Batch

Level = Literal["utterance", "frame"]


@dataclass(frozen=True)
class Splits:
    """Published split names of the corpus the task reads."""

    train: str
    dev: str
    test: str

    def as_dict(self) -> dict[str, str]:
        return {"train": self.train, "dev": self.dev, "test": self.test}


# ---------------------------------------------------------------- head building blocks


class _StackedAffine(torch.autograd.Function):
    """baddbmm(bias, x, weight) whose input gradient is computed for the slices `rows` only.

    The other slices' gradient is zero: the caller vouches that nothing before them is trained
    (the probe bank's single-layer features are fixed; only a weighted sum's slice carries
    trained layer weights), so the input-gradient matmul of every other slice is skipped.
    The weight and bias gradients are baddbmm's own.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, rows):
        ctx.save_for_backward(x, weight, rows)
        return torch.baddbmm(bias, x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight, rows = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.zeros_like(x)
            gx.index_copy_(0, rows, torch.bmm(grad.index_select(0, rows), weight.index_select(0, rows).transpose(1, 2)))
        if ctx.needs_input_grad[1]:
            gw = torch.bmm(x.transpose(1, 2), grad)
        if ctx.needs_input_grad[2]:
            gb = grad.sum(1, keepdim=True)
        return gx, gw, gb, None


class StackedLinear(nn.Module):
    """G independent Linear(din, dout) layers applied to a [G, ..., din] input in one bmm.

    `input_grad` (slice indices, or None for all) limits the input gradient to the slices
    whose input depends on trained parameters (see `_StackedAffine`).
    """

    def __init__(self, groups: int, din: int, dout: int, generator: torch.Generator | None = None):
        super().__init__()
        bound = 1.0 / math.sqrt(din)  # nn.Linear's default init (kaiming_uniform a=sqrt(5))
        w = (torch.rand(groups, din, dout, generator=generator) * 2 - 1) * bound
        b = (torch.rand(groups, 1, dout, generator=generator) * 2 - 1) * bound
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b)
        self.input_grad: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stacked_affine(x, self.weight, self.bias, self.input_grad)


def stacked_affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                   input_grad: torch.Tensor | None = None) -> torch.Tensor:
    """[G, ..., din] @ weight [G, din, dout] + bias [G, 1, dout]; the input gradient only for the
    `input_grad` slices when given (`_StackedAffine`)."""
    g, *mid, d = x.shape
    flat = x.reshape(g, -1, d)
    if input_grad is not None and flat.requires_grad:
        out = _StackedAffine.apply(flat, weight, bias, input_grad.to(flat.device))
    else:
        out = torch.baddbmm(bias, flat, weight)
    return out.reshape(g, *mid, out.shape[-1])


class _ProjectedHeads(nn.Module):
    """G heads Linear(D,H) -> ... -> Linear(H,outputs); subclasses say what happens in between.

    `forward(x, lens, heads)` runs the slices `heads` only (x holds exactly those slices, in
    that order): a stopped head (pruned, diverged) costs nothing more.
    """

    stacked = True
    selectable = True

    def __init__(self, groups: int, dim: int, hidden: int, outputs: int, generator: torch.Generator | None = None):
        super().__init__()
        self.proj = StackedLinear(groups, dim, hidden, generator)
        self.out = StackedLinear(groups, hidden, outputs, generator)

    def trained_inputs(self, slices: torch.Tensor) -> None:
        """Only these slices' inputs need a gradient (the bank's weighted sums): the first Linear
        skips the input gradient of every other slice (half of its backward)."""
        self.proj.input_grad = slices

    def affine(self, heads: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """W1, b1, W2, b2 of the slices `heads` (all when None), and which of them need an input gradient."""
        tensors = (self.proj.weight, self.proj.bias, self.out.weight, self.out.bias)
        grad_rows = self.proj.input_grad
        if heads is None:
            return (*tensors, grad_rows)
        heads = heads.to(self.proj.weight.device)
        if grad_rows is not None:
            grad_rows = torch.nonzero(torch.isin(heads, grad_rows.to(heads.device))).flatten()
        return (*(t.index_select(0, heads) for t in tensors), grad_rows)


class PooledHeads(_ProjectedHeads):
    """SUPERB's utterance-level head for G layers: Linear(D,H) -> masked mean -> Linear(H,C).

    The first Linear is affine, so it commutes with the mean: `forward` takes cached pooled
    means [G, B, D]; `forward_frames` takes frames [G, B, T, D] and gives the same logits.
    """

    def forward(self, pooled: torch.Tensor, lens: torch.Tensor | None = None,
                heads: torch.Tensor | None = None) -> torch.Tensor:
        w1, b1, w2, b2, grad_rows = self.affine(heads)
        return stacked_affine(stacked_affine(pooled, w1, b1, grad_rows), w2, b2)

    def forward_frames(self, frames: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return self.out(masked_mean(self.proj(frames), lens))


class FrameLinearHeads(_ProjectedHeads):
    """SUPERB's PR head for G layers: Linear(D,H) -> Linear(H,V) on every frame.

    Two affine maps in a row are one: the logits are computed as x (W1 W2) + (b1 W2 + b2),
    the same function with the same gradients for W1, b1, W2 and b2 (autograd through the
    product), up to float rounding. The frames then cost N·D·V multiply-adds forward and as
    many for the gradient, instead of N·(D·H + H·V) and twice that: over the thousands of
    frames of a batch (N >> H), the products W1 W2 (D·H·V, once per step) are what is left.
    """

    def forward(self, frames: torch.Tensor, lens: torch.Tensor | None = None,
                heads: torch.Tensor | None = None) -> torch.Tensor:
        w1, b1, w2, b2, grad_rows = self.affine(heads)
        weight = torch.bmm(w1, w2)  # [G, D, V]
        bias = torch.baddbmm(b2, b1, w2)  # [G, 1, V]
        return stacked_affine(frames, weight, bias, grad_rows)


class BiLSTMHead(nn.Module):
    """SUPERB's ASR head: Linear(D,P) -> BiLSTM stack (H per direction, dropout) -> Linear(2H,V)."""

    def __init__(self, dim: int, proj: int, hidden: int, layers: int, dropout: float, vocab: int):
        super().__init__()
        self.proj = nn.Linear(dim, proj)
        self.lstm = nn.LSTM(proj, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, vocab)
        self.shape = (dim, proj, hidden, layers, dropout, vocab)

    def forward(self, frames: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        x = self.proj(frames)
        packed = nn.utils.rnn.pack_padded_sequence(x, lens.cpu().clamp(min=1), batch_first=True,
                                                   enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.out(self.drop(y))


LSTM_PATH_ENV = "LAYERBENCH_LSTM"
LSTM_PATHS = ("auto", "fused", "per-head")


def lstm_path(device: torch.device) -> str:
    """`fused` or `per-head` for BiLSTM heads on `device`, from $LAYERBENCH_LSTM (default `auto`).

    `auto` fuses on the CPU, where one LSTM's cost is per-timestep overhead, not FLOPs, and keeps
    cuDNN's per-head kernels elsewhere (the fused loop is not measured on a GPU). `per-head` is
    the reference path (nn.LSTM on packed sequences); both give the same numbers up to float
    rounding and dropout draws.
    """
    path = os.environ.get(LSTM_PATH_ENV, "auto") or "auto"
    if path not in LSTM_PATHS:
        raise ValueError(f"${LSTM_PATH_ENV}={path!r}: must be one of {', '.join(LSTM_PATHS)}")
    if path == "auto":
        return "fused" if device.type == "cpu" else "per-head"
    return path


def _reverse_within(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Time-major [N, T, B, F] with every sequence b reversed over its first lens[b] frames (the
    rest stays in place): where nn.LSTM's reverse direction of a packed sequence starts."""
    n, t, b, f = x.shape
    steps = torch.arange(t, device=x.device)[:, None]
    src = torch.where(steps < lens, lens - 1 - steps, steps)  # [T, B]; an involution
    flat = (src * b + torch.arange(b, device=x.device)).reshape(-1)
    return x.reshape(n, t * b, f).index_select(1, flat).reshape(n, t, b, f)


def _stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """G Linear layers in one bmm: x [G, N, in], weight [G, out, in] (nn.Linear's), bias [G, out]."""
    return torch.baddbmm(bias[:, None], x, weight.transpose(1, 2))


def fused_bilstm(heads: Sequence[BiLSTMHead], x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """G BiLSTMHeads of one shape on [G, B, T, D] in one pass: `torch.stack` of each head's output.

    Each head's parameters stay its own modules' (stacked here, so gradients reach them); every
    LSTM layer runs all G heads and both directions as one time loop of batched matmuls, which
    on a CPU costs about what one nn.LSTM does. Semantics are nn.LSTM's on packed sequences
    (`BiLSTMHead.forward`): the reverse direction of each sequence starts at its own last frame,
    outputs past a sequence's length are zeros, dropout between LSTM layers and before the output
    Linear in training mode only.
    """
    first = heads[0]
    hid, layers, training = first.lstm.hidden_size, first.lstm.num_layers, first.training
    g, b, t, d = x.shape
    lens = lens.to(x.device).clamp(min=1)  # as BiLSTMHead.forward packs them
    steps = int(lens.max())
    valid = (torch.arange(steps, device=x.device)[:, None] < lens)[None, :, :, None]  # [1, T', B, 1]
    # nn.LSTM's gate rows are i, f, g, o; taken here as i, f, o, g (one sigmoid over the first 3H).
    order = torch.cat([torch.arange(2 * hid), torch.arange(3 * hid, 4 * hid), torch.arange(2 * hid, 3 * hid)]
                      ).to(x.device)

    def stack(name: str) -> torch.Tensor:
        return torch.stack([h.get_parameter(name) for h in heads])

    def both(name: str) -> torch.Tensor:  # [2G, 4H, ...]: every head's forward, then every head's reverse
        return torch.cat([stack(f"lstm.{name}{sfx}") for sfx in ("", "_reverse")])[:, order]

    # Time-major [G, T', B, F] from here: the loop reads one contiguous [2G, B, 4H] block per step.
    frames = x.transpose(1, 2)[:, :steps].reshape(g, steps * b, d)
    y = _stacked_linear(frames, stack("proj.weight"), stack("proj.bias")).reshape(g, steps, b, -1)
    for layer in range(layers):
        w_ih, w_hh = both(f"weight_ih_l{layer}"), both(f"weight_hh_l{layer}")
        bias = both(f"bias_ih_l{layer}") + both(f"bias_hh_l{layer}")
        inp = torch.cat([y, _reverse_within(y, lens)]).reshape(2 * g, steps * b, -1)
        gates_in = _stacked_linear(inp, w_ih, bias).reshape(2 * g, steps, b, 4 * hid)
        w_hh_t = w_hh.transpose(1, 2).contiguous()
        h = c = x.new_zeros(2 * g, b, hid)
        outs = []
        # unbind: one gradient buffer for all steps in backward (indexing would allocate one per step)
        for step_in in gates_in.transpose(0, 1).contiguous().unbind(0):
            gates = torch.baddbmm(step_in, h, w_hh_t)
            sig, cell = gates.split([3 * hid, hid], -1)
            i, f, o = sig.sigmoid().chunk(3, -1)
            c = torch.addcmul(f * c, i, cell.tanh())
            h = o * c.tanh()
            outs.append(h)
        out = torch.stack(outs, 1)  # [2G, T', B, H]
        y = torch.cat([out[:g], _reverse_within(out[g:], lens)], -1) * valid
        if layer < layers - 1:
            y = F.dropout(y, first.lstm.dropout, training)
    y = F.dropout(y, first.drop.p, training)
    out_w, out_b = stack("out.weight"), stack("out.bias")
    logits = _stacked_linear(y.reshape(g, steps * b, -1), out_w, out_b).reshape(g, steps, b, -1).transpose(1, 2)
    if steps < t:  # frames past every length: zeros through the output Linear, as pad_packed_sequence gives
        logits = torch.cat([logits, out_b[:, None, None].expand(g, b, t - steps, -1)], 2)
    return logits


class ModuleHeads(nn.Module):
    """G heads that cannot be stacked into one tensor each (LSTMs), with the same [G, B, ...] interface.

    The heads keep separate modules (own state_dict, own Adam); BiLSTMHeads of one shape run as
    one fused pass on the CPU (`fused_bilstm`, see `lstm_path`).
    """

    stacked = False
    selectable = True

    def __init__(self, heads: Sequence[nn.Module]):
        super().__init__()
        self.heads = nn.ModuleList(heads)
        first = self.heads[0] if len(self.heads) else None
        self.fusable = isinstance(first, BiLSTMHead) and all(
            type(h) is BiLSTMHead and h.shape == first.shape for h in self.heads)

    def forward(self, x: torch.Tensor, lens: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        """x holds the slices `heads` (all when None), in that order."""
        run = list(self.heads) if heads is None else [self.heads[g] for g in heads.tolist()]
        if self.fusable and lstm_path(x.device) == "fused":
            return fused_bilstm(run, x, lens)
        return torch.stack([h(x[g], lens) for g, h in enumerate(run)])


def tile_heads(proto: nn.Module, copies: int) -> nn.Module:
    """`copies` copies of G heads in one module of copies x G: slice c * G + g starts as head g.

    The tuner's K rates of a head then start from the weights a probe run of the same seed
    starts from, so a trial at rate r is that probe run at r (and rates are compared on the
    same initialisation, not on K different draws).
    """
    if copies == 1:
        return proto
    if getattr(proto, "stacked", False):
        module = copy.deepcopy(proto)
        for p in module.parameters():
            p.data = p.data.repeat(copies, *([1] * (p.dim() - 1)))
        return module
    return ModuleHeads([copy.deepcopy(h) for _ in range(copies) for h in proto.heads])


def ctc_greedy(logits: torch.Tensor, lens: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. logits [B, T, V]."""
    best = logits.argmax(-1).cpu()
    out = []
    for i in range(best.shape[0]):
        seq = best[i, : int(lens[i])].tolist()
        toks, prev = [], None
        for s in seq:
            if s != prev and s != blank:
                toks.append(s)
            prev = s
        out.append(toks)
    return out


def ctc_losses(logits: torch.Tensor, lens: torch.Tensor, targets: torch.Tensor, target_lens: torch.Tensor,
               blank: int = 0) -> torch.Tensor:
    """Per-head CTC loss of [G, B, T, V] logits: s3prl's mean reduction (per target length), zero_infinity."""
    g, b, t, v = logits.shape
    logp = F.log_softmax(logits.float(), dim=-1).reshape(g * b, t, v).transpose(0, 1)
    loss = F.ctc_loss(logp, targets.repeat(g, 1), lens.repeat(g), target_lens.repeat(g),
                      blank=blank, reduction="none", zero_infinity=True)
    return (loss / target_lens.repeat(g).clamp(min=1)).reshape(g, b).mean(1)


def error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """jiwer WER in percent over space-separated token strings (empty references skipped)."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    if not pairs:
        raise ValueError("no non-empty reference to score")
    return 100.0 * jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])


def char_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """jiwer CER in percent (spaces count as characters; empty references skipped)."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    if not pairs:
        raise ValueError("no non-empty reference to score")
    return 100.0 * jiwer.cer([r for r, _ in pairs], [h for _, h in pairs])


# ---------------------------------------------------------------- the task interface


class Task(ABC):
    """One downstream task. `space` is what `fit` learnt from the training split.

    The declarations below are what the harness reads without running anything: the corpus
    kind and splits it loads, the level (utterance tasks train from the pooled cache, frame
    tasks from upstream passes), the metric and its direction, the YAML file of its presets
    and the typed form of their values (`params_type`: `ProbeParams`, subclassed when its head
    or targets take other values), and the CCA properties expected to predict it (the
    comparator's default mapping; the first one picks the "CCA-recommended" layer).
    """

    name: str
    corpus_kind: str  # a kind of bench.data.corpus.LOADERS
    splits: Splits
    level: Level
    metric: str
    higher_is_better: bool
    preset_file: Path
    params_type: type[ProbeParams] = ProbeParams  # its presets' values, typed
    cca_properties: tuple[str, ...] = ()

    @abstractmethod
    def fit(self, train: Sequence[Utterance], params: ProbeParams, root: Path) -> Any:
        """Label maps or vocabulary: from the training split, the preset values `params`, and the
        corpus folder `root` (relative paths in `params` are resolved beside it)."""

    @abstractmethod
    def target_info(self, space: Any) -> dict[str, Any]:
        """What the result file records about the targets: scheme, number of outputs, sources."""

    @abstractmethod
    def targets(self, utts: Sequence[Utterance], space: Any) -> Batch: ...

    @abstractmethod
    def make_heads(self, groups: int, dim: int, space: Any, params: ProbeParams,
                   generator: torch.Generator) -> nn.Module:
        """G heads over layers of width `dim`; forward [G, B, ...] -> [G, B, ...] logits."""

    @abstractmethod
    def losses(self, logits: torch.Tensor, lens: torch.Tensor | None, batch: Batch, space: Any) -> torch.Tensor:
        """One loss per head: [G]."""

    @abstractmethod
    def predict(self, logits: torch.Tensor, lens: torch.Tensor | None, space: Any) -> list[list[Any]]:
        """Per head, one prediction per utterance (hashable / string)."""

    @abstractmethod
    def references(self, batch: Batch, space: Any) -> list[Any]: ...

    @abstractmethod
    def score(self, refs: Sequence[Any], preds: Sequence[Any]) -> float:
        """The metric in percent."""

    def extra_metrics(self, refs: Sequence[Any], preds: Sequence[Any]) -> dict[str, float]:
        """Secondary test metrics in percent, reported beside the main one (none by default)."""
        return {}

    def balanced_draw(self, utts: Sequence[Utterance]) -> tuple[list[str], list[str]] | None:
        """(class, item) of each utterance for a class-balanced sampler; None = plain shuffling."""
        return None

    def presets(self) -> dict[str, dict[str, Any]]:
        """Preset name -> training values (`superb`: the published recipe; `quick`: CPU scale)."""
        return load_presets(self.preset_file)


# ---------------------------------------------------------------- utterance classification


@dataclass(frozen=True)
class SlotSpace:
    """Class names of each slot (IC: action, object, location), in output order."""

    slots: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.classes]


class ClassificationTask(Task):
    """Utterance classification with one softmax per slot; correct = every slot right.

    IC has three slots (sum of three cross-entropies); SLURP scenario/action and KS one.
    """

    level: Level = "utterance"
    metric = "accuracy"
    higher_is_better = True
    cca_properties = ("word",)  # Pasad et al.: semantic / utterance-level tasks follow CCA-word

    def __init__(self, name: str, corpus_kind: str, splits: Splits, slots: Sequence[str], balanced: bool = False,
                 preset_file: Path | None = None):
        self.name, self.corpus_kind, self.splits = name, corpus_kind, splits
        self.slots = tuple(slots)
        self.balanced = balanced
        self.preset_file = preset_file or CONFIG_DIR / "tasks" / "utterance.yaml"

    def fit(self, train: Sequence[Utterance], params=None, root=None) -> SlotSpace:
        classes = []
        for slot in self.slots:
            missing = [u.id for u in train if slot not in u.labels]
            if missing:
                raise ValueError(f"task {self.name}: {len(missing)} training utterances lack label {slot!r} "
                                 f"(first: {missing[0]})")
            classes.append(tuple(sorted({u.labels[slot] for u in train})))
        return SlotSpace(self.slots, tuple(classes))

    def targets(self, utts: Sequence[Utterance], space: SlotSpace) -> Batch:
        rows = []
        for u in utts:
            row = []
            for slot, names in zip(space.slots, space.classes):
                label = u.labels.get(slot)
                # A class never seen in training can never be predicted: -1 counts as wrong.
                row.append(names.index(label) if label in names else -1)
            rows.append(row)
        return Batch(torch.tensor(rows, dtype=torch.long).reshape(len(utts), len(space.slots)))

    def target_info(self, space: SlotSpace) -> dict[str, Any]:
        return {"scheme": "classes", "outputs": sum(space.sizes),
                "classes": {slot: list(names) for slot, names in zip(space.slots, space.classes)}}

    def make_heads(self, groups, dim, space: SlotSpace, params, generator) -> PooledHeads:
        return PooledHeads(groups, dim, params.head.hidden, sum(space.sizes), generator)

    def _slices(self, space: SlotSpace) -> list[slice]:
        out, start = [], 0
        for n in space.sizes:
            out.append(slice(start, start + n))
            start += n
        return out

    def losses(self, logits, lens, batch, space: SlotSpace) -> torch.Tensor:
        g, b, _ = logits.shape
        total = logits.new_zeros(g)
        for k, sl in enumerate(self._slices(space)):
            part = logits[..., sl].reshape(g * b, -1)
            y = batch.y[:, k].repeat(g)
            ce = F.cross_entropy(part, y.clamp(min=0), reduction="none").reshape(g, b)
            valid = (batch.y[:, k] >= 0).to(ce.dtype)
            total = total + (ce * valid).sum(1) / valid.sum().clamp(min=1)
        return total

    def predict(self, logits, lens, space: SlotSpace) -> list[list[tuple[int, ...]]]:
        ids = torch.stack([logits[..., sl].argmax(-1) for sl in self._slices(space)], -1).cpu()  # [G, B, S]
        return [[tuple(r) for r in head.tolist()] for head in ids]

    def references(self, batch: Batch, space) -> list[tuple[int, ...]]:
        return [tuple(r) for r in batch.y.tolist()]

    def score(self, refs, preds) -> float:
        if not refs:
            raise ValueError(f"task {self.name}: nothing to score")
        return 100.0 * sum(r == p for r, p in zip(refs, preds)) / len(refs)

    def balanced_draw(self, utts):
        """s3prl weighs list entries by class; an entry is a file, so the crops of one file
        (Speech Commands `_silence_`) are one item, drawn whole and then cropped at random."""
        if not self.balanced:
            return None
        return ["/".join(u.labels[s] for s in self.slots) for u in utts], [str(u.path) for u in utts]


# ---------------------------------------------------------------- CTC sequence tasks


@dataclass(frozen=True)
class Vocab:
    """CTC outputs in the recipe's order: output i is `symbols[i]`, `blank` the CTC blank.

    `eos`, when set, is appended to every target (s3prl's text encoders do) and dropped from
    hypotheses before scoring, as s3prl does. `lexicon` maps words to pronunciations for
    lexicon-based phone targets. `info` is what the result file records about the targets.
    """

    symbols: tuple[str, ...]
    blank: int = 0
    eos: int | None = None
    lexicon: Lexicon | None = field(default=None, compare=False, repr=False)
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def size(self) -> int:
        return len(self.symbols)

    def encode(self, toks: Sequence[str]) -> list[int]:
        index = {t: i for i, t in enumerate(self.symbols)}
        return [index[t] for t in toks]

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.symbols[i] for i in ids if i != self.eos]


class CTCTask(Task):
    """Frame-level CTC over a fixed symbol set, greedy decoding, jiwer error rate in percent."""

    level: Level = "frame"
    higher_is_better = False
    cca_properties = ("phone", "word")  # Pasad et al.: PR and ASR follow CCA-phone, then CCA-word

    @abstractmethod
    def tokens(self, utt: Utterance, space: Vocab) -> list[str]:
        """The target symbol sequence of one utterance (without the eos)."""

    @abstractmethod
    def render(self, toks: Sequence[str]) -> str:
        """Symbols -> the space-separated string the error rate is computed over."""

    def targets(self, utts, space: Vocab) -> Batch:
        toks = [self.tokens(u, space) for u in utts]
        eos = [] if space.eos is None else [space.eos]
        seqs = [space.encode(t) + eos for t in toks]
        lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        y = torch.zeros(len(seqs), max(1, int(lens.max()) if len(seqs) else 1), dtype=torch.long)
        for i, s in enumerate(seqs):
            y[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return Batch(y, lens, [self.render(t) for t in toks])

    def losses(self, logits, lens, batch, space: Vocab) -> torch.Tensor:
        return ctc_losses(logits, lens, batch.y, batch.y_lens, blank=space.blank)

    def predict(self, logits, lens, space: Vocab) -> list[list[str]]:
        return [[self.render(space.decode(ids)) for ids in ctc_greedy(logits[g], lens, space.blank)]
                for g in range(logits.shape[0])]

    def references(self, batch, space) -> list[str]:
        return list(batch.refs or [])

    def score(self, refs, preds) -> float:
        return error_rate(refs, preds)

    def target_info(self, space: Vocab) -> dict[str, Any]:
        """`eos`: the symbol appended to every target (None: targets end with their last token)."""
        return {**space.info, "outputs": space.size, "blank": space.symbols[space.blank],
                "eos": None if space.eos is None else space.symbols[space.eos], "symbols": list(space.symbols)}
