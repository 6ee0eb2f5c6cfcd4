"""The second views of layer-wise CCA (mel frames, phone and word segments) and their samplers.

Everything here is fed from ONE upstream pass: the gatherers take every layer of one
utterance at once (`add(key, hidden, lengths)`), so a layer never costs a forward of its
own. Each layer keeps its own stride; frame and segment indices are computed per layer
with integer arithmetic on sample offsets, so a boundary that falls exactly on a frame edge
is never moved by floating-point error.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from bench.data.manifest import Utterance
from bench.types import SAMPLE_RATE, LayerSpec

MEL_HOP = 160  # 10 ms at 16 kHz


# --------------------------------------------------------------------------- mel


@dataclass(frozen=True)
class MelRecipe:
    """The paper's CCA-mel features (the reference code's feature extraction).

    Its defaults are the one home of the recipe's values: configs/cca.yaml's `mel` section
    takes them from here (and may override any, e.g. `--set mel.n_mels=40`). Before the mel:
    the wave is scaled to a peak of 0.999 and pre-emphasised with 0.97, as the reference does;
    dB is librosa's `amplitude_to_db(S, ref=1.0, top_db=80)`.
    """

    n_mels: int = 80
    n_fft: int = 2048
    win_length: int = 400
    hop_length: int = MEL_HOP
    f_min: float = 50.0
    top_db: float = 80.0
    peak_normalize: bool = True  # scale each wave to a peak of 0.999 first (reference code)
    preemphasis: float = 0.97  # then pre-emphasis (reference code); 0 turns it off


class LogMel:
    """80 Slaney log-mel bands as `dB / top_db + 1` (librosa's recipe).

    Magnitude (power 1) spectrogram, centred frames with zero padding (as librosa >= 0.9),
    periodic Hann window of `win_length` centred in `n_fft`; dB is `20 log10(max(S, 1e-5))`
    (reference 1.0, not the utterance maximum: a per-utterance offset would change the CCA),
    floored at `top_db` below the utterance's largest value.
    """

    def __init__(self, recipe: MelRecipe = MelRecipe()):
        self.recipe = recipe
        self.transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=recipe.n_fft,
            win_length=recipe.win_length,
            hop_length=recipe.hop_length,
            f_min=recipe.f_min,
            n_mels=recipe.n_mels,
            power=1.0,
            norm="slaney",
            mel_scale="slaney",
            center=True,
            pad_mode="constant",
        )

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """[T, n_mels] float32 with T = 1 + len(wave) // hop."""
        x = np.asarray(wave, dtype=np.float64)
        peak = np.abs(x).max() if len(x) else 0.0
        if self.recipe.peak_normalize and peak > 0:
            x = x / peak * 0.999
        if self.recipe.preemphasis:
            x = np.concatenate([x[:1], x[1:] - self.recipe.preemphasis * x[:-1]])
        spec = self.transform(torch.as_tensor(x, dtype=torch.float32)).to(torch.float64)  # [n_mels, T]
        return to_unit_db(spec, self.recipe.top_db).T.contiguous().numpy().astype(np.float32)


def to_unit_db(magnitude: torch.Tensor, top_db: float = 80.0) -> torch.Tensor:
    """Magnitude -> dB re. 1.0, floored `top_db` below its maximum, then /top_db + 1."""
    db = 20.0 * torch.log10(magnitude.clamp(min=1e-5))
    db = torch.maximum(db, db.max() - top_db)
    return db / top_db + 1.0


def frame_pairs(n_layer: int, stride: int, n_mel: int, hop: int = MEL_HOP) -> tuple[np.ndarray, np.ndarray]:
    """Row indices pairing a layer's frames with mel frames on a common time grid.

    The grid step is the coarser of the two rates: a 20 ms layer meets every second mel
    frame (the mel decimated by 2), a 10 ms layer meets every mel frame, and a layer finer
    than 10 ms (early CNN layers) is read at 10 ms. Frame k of the grid starts at sample
    `k * step`; both indices are that start divided (floor) by their own stride.
    """
    step = max(int(stride), hop)
    n = max(0, min(int(n_layer) * int(stride), int(n_mel) * hop) // step)
    k = np.arange(n, dtype=np.int64) * step
    return k // int(stride), k // hop


class FrameGatherer:
    """Sampled (layer frame, mel frame) rows for every layer, gathered utterance by utterance.

    Frames are capped by keeping a fixed fraction of each utterance's paired frames, chosen
    by a generator seeded with (seed, utterance number, grid step): layers sharing a frame
    rate keep exactly the same frames, and a rerun keeps the same frames.
    """

    def __init__(self, layers: Sequence[LayerSpec], keep: dict[int, float], seed: int, mel: LogMel):
        self.layers = list(layers)
        self.keep = keep
        self.seed = seed
        self.mel = mel
        self.x: list[list[np.ndarray]] = [[] for _ in self.layers]
        self.y: list[list[np.ndarray]] = [[] for _ in self.layers]
        self.n_utterances = 0

    @staticmethod
    def keep_fractions(layers: Sequence[LayerSpec], seconds: float, max_frames: int | None) -> dict[int, float]:
        """Fraction of frames to keep per grid step so about `max_frames` rows come out per layer."""
        out = {}
        for spec in layers:
            step = max(spec.stride, MEL_HOP)
            total = seconds * SAMPLE_RATE / step
            out[step] = 1.0 if not max_frames or total <= max_frames else max_frames / total
        return out

    def add(self, number: int, wave: np.ndarray, hidden: Sequence[torch.Tensor], lengths: Sequence[int]) -> None:
        """Take one utterance: its 16 kHz samples, `hidden[l]` [T_l, D_l] for layer l and
        `lengths[l]` its valid frames."""
        mel = self.mel(wave)
        chosen: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        for li, spec in enumerate(self.layers):
            n_valid = int(lengths[li])
            key = (spec.stride, n_valid, len(mel))
            if key not in chosen:
                li_idx, mel_idx = frame_pairs(n_valid, spec.stride, len(mel))
                step = max(spec.stride, MEL_HOP)
                frac = self.keep[step]
                if frac < 1.0 and len(li_idx):
                    rng = np.random.default_rng([self.seed, number, step])
                    take = np.sort(rng.choice(len(li_idx), size=int(round(len(li_idx) * frac)), replace=False))
                    li_idx, mel_idx = li_idx[take], mel_idx[take]
                chosen[key] = (li_idx, mel[mel_idx])
            li_idx, mel_rows = chosen[key]
            h = hidden[li]
            if h.device.type == "cpu":
                rows = h.detach().numpy()[li_idx]
            else:
                rows = h[torch.as_tensor(li_idx, device=h.device)].cpu().numpy()
            self.x[li].append(rows.astype(np.float32, copy=False))
            self.y[li].append(mel_rows)
        self.n_utterances += 1

    def layer(self, li: int) -> tuple[np.ndarray, np.ndarray]:
        """(layer frames [n, D], mel frames [n, n_mels]) for layer number `li`."""
        spec = self.layers[li]
        if not self.x[li]:
            return np.zeros((0, spec.dim), np.float32), np.zeros((0, self.mel.recipe.n_mels), np.float32)
        return np.concatenate(self.x[li]), np.concatenate(self.y[li])


# --------------------------------------------------------------------------- segments


def segment_frames(
    starts: Sequence[float] | np.ndarray,
    ends: Sequence[float] | np.ndarray,
    stride: int,
    n_valid: int,
    middle_third: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame ranges [lo, hi) of segments for a layer of `stride` samples with `n_valid` frames.

    The segment covers frames floor(start / frame_dur) .. ceil(end / frame_dur) (computed on
    sample offsets, exactly), clipped to the valid frames. `middle_third` keeps the middle
    third: with n frames, n // 3 are dropped from each end (a segment of 1 or 2 frames keeps
    them all). A range with hi <= lo has no frames.
    """
    s_samp = np.rint(np.asarray(starts, dtype=np.float64) * SAMPLE_RATE).astype(np.int64)
    e_samp = np.rint(np.asarray(ends, dtype=np.float64) * SAMPLE_RATE).astype(np.int64)
    lo = np.minimum(s_samp // stride, n_valid)
    hi = np.minimum(-(-e_samp // stride), n_valid)
    if middle_third:
        cut = np.maximum(hi - lo, 0) // 3
        lo, hi = lo + cut, hi - cut
    return lo, hi


def segment_means(hidden: torch.Tensor, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of frames lo..hi-1 of `hidden` [T, D] for every segment at once: [S, D] float32.

    One float64 cumulative sum per utterance and layer; rows of empty ranges are zero. On
    CPU it runs in numpy (torch's thread pool costs more than the work on tensors this
    small); on an accelerator it stays there and only the [S, D] means come back.
    """
    lo = np.clip(np.asarray(lo, dtype=np.int64), 0, hidden.shape[0])
    hi = np.clip(np.asarray(hi, dtype=np.int64), 0, hidden.shape[0])
    ok = hi > lo
    count = np.maximum(hi - lo, 1)[:, None]
    if hidden.device.type == "cpu":
        a = hidden.detach().numpy().astype(np.float64)
        cs = np.zeros((a.shape[0] + 1, a.shape[1]))
        np.cumsum(a, axis=0, out=cs[1:])
        means = (cs[hi] - cs[lo]) / count
    else:
        h = hidden.to(torch.float64)
        cs = torch.cat([h.new_zeros(1, h.shape[1]), h.cumsum(0)])
        lo_t, hi_t = torch.as_tensor(lo, device=h.device), torch.as_tensor(hi, device=h.device)
        means = ((cs[hi_t] - cs[lo_t]) / torch.as_tensor(count, device=h.device)).cpu().numpy()
    means[~ok] = 0.0
    return means.astype(np.float32)


@dataclass(frozen=True)
class SegmentSample:
    """One sampled segment: the utterance it sits in (`key`), its label and times in seconds."""

    key: Hashable
    label: str
    start: float
    end: float


def phone_pool(
    utts: dict[Hashable, Utterance], normalize: Callable[[str], str | None]
) -> dict[str, list[SegmentSample]]:
    """Every phone segment by its 39-class label; silences (normalize -> None) are left out."""
    pool: dict[str, list[SegmentSample]] = defaultdict(list)
    for key, u in utts.items():
        for seg in u.phones or []:
            label = normalize(seg.label)
            if label is not None and seg.end > seg.start:
                pool[label].append(SegmentSample(key, label, seg.start, seg.end))
    return dict(pool)


def word_pool(utts: dict[Hashable, Utterance]) -> dict[str, list[SegmentSample]]:
    """Every word segment by its lower-cased label; empty labels and silence marks are left out."""
    pool: dict[str, list[SegmentSample]] = defaultdict(list)
    for key, u in utts.items():
        for seg in u.words or []:
            label = seg.label.strip().lower()
            if label and label not in {"sil", "sp", "spn", "<unk>", "<eps>"} and seg.end > seg.start:
                pool[label].append(SegmentSample(key, label, seg.start, seg.end))
    return dict(pool)


def frequent_labels(pool: dict[str, list[SegmentSample]], top: int, min_count: int = 1) -> list[str]:
    """The `top` most frequent labels with at least `min_count` segments (ties by label)."""
    counts = Counter({k: len(v) for k, v in pool.items()})
    ranked = sorted((k for k, c in counts.items() if c >= min_count), key=lambda k: (-counts[k], k))
    return ranked[:top]


def sample_segments(
    pool: dict[str, list[SegmentSample]],
    labels: Sequence[str],
    per_label: int | Sequence[int],
    seed: int,
) -> list[SegmentSample]:
    """Up to `per_label` segments of each label, drawn without replacement, seeded.

    `per_label` may be a [low, high] range (the reference's training-split rule): each label
    then gets a random count in that range, clipped to what the pool has.
    """
    rng = np.random.default_rng(seed)
    out: list[SegmentSample] = []
    for label in labels:
        segs = pool.get(label, [])
        if isinstance(per_label, (list, tuple)):
            low, high = (min(int(v), len(segs)) for v in per_label)
            n = int(rng.integers(low, high + 1)) if high > low else high
        else:
            n = min(int(per_label), len(segs))
        take = rng.choice(len(segs), size=n, replace=False) if n else []
        out.extend(segs[i] for i in sorted(take))
    return out


def sample_segment_sets(
    pool: dict[str, list[SegmentSample]],
    labels: Sequence[str],
    per_label: int,
    seed: Sequence[int],
    num_sets: int,
) -> tuple[list[SegmentSample], list[list[int]]]:
    """`num_sets` independent draws of `sample_segments` (the paper repeats CCA on three
    sample sets "where the data allow"), as one de-duplicated list to gather in one pass and,
    per set, the indices of its samples in that list. When no label has more segments than
    the cap every draw is the same set, so only one is returned."""
    union: dict[SegmentSample, int] = {}
    sets: list[list[int]] = []
    for r in range(max(1, int(num_sets))):
        draw = sample_segments(pool, labels, per_label, [*seed, r])
        sets.append([union.setdefault(smp, len(union)) for smp in draw])
    if all(sorted(st) == sorted(sets[0]) for st in sets):
        sets = sets[:1]
    return list(union), sets


class SegmentGatherer:
    """Per-layer means of sampled segments, filled utterance by utterance from the one pass.

    A segment that has no frames in ANY layer (an alignment past the end of the audio, a
    segment shorter than a coarse layer's frame at the clip edge) is dropped from every
    layer, so all layers always describe exactly the same segments.
    """

    def __init__(self, samples: Sequence[SegmentSample], layers: Sequence[LayerSpec], middle_third: bool):
        self.samples = list(samples)
        self.layers = list(layers)
        self.middle_third = middle_third
        self.rows = [np.zeros((len(self.samples), spec.dim), np.float32) for spec in self.layers]
        self.ok = np.zeros(len(self.samples), dtype=bool)
        self.by_key: dict[Hashable, list[int]] = defaultdict(list)
        for i, s in enumerate(self.samples):
            self.by_key[s.key].append(i)

    @property
    def keys(self) -> set[Hashable]:
        return set(self.by_key)

    def add(self, key: Hashable, hidden: Sequence[torch.Tensor], lengths: Sequence[int]) -> None:
        idx = self.by_key.get(key)
        if not idx:
            return
        starts = [self.samples[i].start for i in idx]
        ends = [self.samples[i].end for i in idx]
        ok = np.ones(len(idx), dtype=bool)
        for li, spec in enumerate(self.layers):
            lo, hi = segment_frames(starts, ends, spec.stride, int(lengths[li]), self.middle_third)
            ok &= hi > lo
            self.rows[li][idx] = segment_means(hidden[li], lo, hi)
        self.ok[idx] = ok

    def result(self, subset: Sequence[int] | None = None) -> tuple[list[np.ndarray], list[str], int]:
        """(per-layer [n, D] means, the n labels, number of segments skipped for having no frames),
        of every sample or of the samples at `subset` (one sample set)."""
        idx = np.arange(len(self.samples)) if subset is None else np.asarray(subset, dtype=np.int64)
        keep = idx[self.ok[idx]]
        labels = [self.samples[i].label for i in keep]
        return [r[keep] for r in self.rows], labels, int(len(idx) - len(keep))


def one_hot(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """[n, C] float64 indicator matrix over the classes present, and the class order (sorted)."""
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=np.float64)
    out[np.arange(len(labels)), [index[c] for c in labels]] = 1.0
    return out, classes
