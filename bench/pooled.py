"""Per-layer masked means over valid frames, computed once per split and cached on disk.

The SUPERB utterance-level heads (IC, SLURP, KS) are affine before their mean pooling, so
mean(Linear(x)) == Linear(mean(x)): training every layer's head from these means is exact,
and the upstream never runs inside the training loop. The mean of the layer-normalised
frames is kept beside it, so the weighted-sum head's layer-norm option stays exact too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from bench.data.manifest import Utterance
from bench.extract import forward_batches
from bench.locks import exclusive, sweep_dead_temps, temp_path
from bench.featurize import masked_mean
from bench.results import slug
from bench.types import Upstream, UpstreamOutput

# Bump whenever what is stored changes (pooling rule, dtype, layout): old files stop matching.
CODE_VERSION = 1


@dataclass
class Pooled:
    """Pooled features of one split: `mean[l]` and `ln_mean[l]` are [N, D_l], rows in `ids` order."""

    ids: list[str]
    layer_names: list[str]
    mean: list[torch.Tensor]
    ln_mean: list[torch.Tensor]


def pool_output(out: UpstreamOutput) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Masked means of each layer (plain and layer-normalised frames), each [B, D_l]."""
    means, ln_means = [], []
    for h, n in zip(out.hidden, out.lengths):
        means.append(masked_mean(h, n))
        ln_means.append(masked_mean(F.layer_norm(h, h.shape[-1:]), n))
    return means, ln_means


def files_hash(utts: Sequence[Utterance]) -> str:
    """Identity of a split's file list: ids, paths, crops, gains, in order."""
    h = hashlib.sha256()
    for u in utts:
        gain = f"\t{u.gain_db:g}dB" if u.gain_db else ""
        h.update(f"{u.id}\t{u.path}\t{u.offset:.6f}\t{u.duration:.6f}{gain}\n".encode())
    return h.hexdigest()


def cache_key(upstream: Upstream, corpus_root: str | os.PathLike, split: str, utts: Sequence[Utterance],
              precision: str = "fp32") -> str:
    """`precision` is what the upstream ran in ("bf16" only under CUDA autocast): features made
    in bf16 must never be served to a run that asked for fp32, or the other way round."""
    blob = json.dumps({
        "upstream": upstream.spec,
        "revision": str(getattr(upstream, "revision", None)),
        "num_params": getattr(upstream, "num_params", None),
        "layers": [(l.name, l.index, l.dim, l.stride) for l in upstream.layers],
        "corpus": str(Path(corpus_root).resolve()),
        "split": split,
        "files": files_hash(utts),
        "code_version": CODE_VERSION,
        "precision": precision,
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_file(cache_dir: str | os.PathLike, upstream: Upstream, corpus_root, split: str, utts,
               precision: str = "fp32") -> Path:
    key = cache_key(upstream, corpus_root, split, utts, precision)
    return Path(cache_dir) / slug(upstream.spec) / f"{slug(split)}-{key}.pt"


def extract_pooled(upstream: Upstream, utts: Sequence[Utterance], device: torch.device, *, max_seconds: float = 160.0,
                   max_size: int = 32, bf16: bool = False, desc: str | bool | None = None) -> Pooled:
    """One forward per length bucket; every layer's masked means gathered back in `utts` order."""
    n = len(utts)
    mean: list[torch.Tensor | None] = [None] * len(upstream.layers)
    ln_mean: list[torch.Tensor | None] = [None] * len(upstream.layers)
    for idx, out in forward_batches(upstream, utts, device, max_seconds=max_seconds, max_size=max_size,
                                    bf16=bf16, desc=desc):
        m, lm = pool_output(out)
        rows = torch.tensor(idx, dtype=torch.long)
        for l, (a, b) in enumerate(zip(m, lm)):
            if mean[l] is None:
                mean[l] = torch.zeros(n, a.shape[-1])
                ln_mean[l] = torch.zeros(n, b.shape[-1])
            mean[l][rows] = a.float().cpu()
            ln_mean[l][rows] = b.float().cpu()
    return Pooled([u.id for u in utts], [l.name for l in upstream.layers], mean, ln_mean)  # type: ignore[arg-type]


def load_or_extract(upstream: Upstream, utts: Sequence[Utterance], *, split: str, corpus_root: str | os.PathLike,
                    cache_dir: str | os.PathLike | None, device: torch.device, max_seconds: float = 160.0,
                    max_size: int = 32, bf16: bool = False, progress: bool = True) -> tuple[Pooled, bool]:
    """The split's pooled features from the cache when the key matches, else extracted and stored.

    Returns (features, True when they came from the cache). `cache_dir=None` disables caching.
    The file is written atomically (temporary file, fsync, rename) under a lock beside it, so
    tasks that need the same split compute it once and never see a half-written cache.
    """
    precision = "bf16" if bf16 and device.type == "cuda" else "fp32"
    path = cache_file(cache_dir, upstream, corpus_root, split, utts, precision) if cache_dir is not None else None
    if path is None:
        return _extract(upstream, utts, split, device, max_seconds, max_size, bf16, progress), False
    path.parent.mkdir(parents=True, exist_ok=True)
    # One process extracts a split at a time; the others wait and then read its file.
    with exclusive(path.with_name(f".{path.name}.lock")):
        cached = _load(path, utts)
        if cached is not None:
            return cached, True
        pooled = _extract(upstream, utts, split, device, max_seconds, max_size, bf16, progress)
        sweep_dead_temps(path.parent, f".{path.name}~*.tmp", recursive=False)
        tmp = temp_path(path)
        try:
            with open(tmp, "wb") as f:
                torch.save({"ids": pooled.ids, "layer_names": pooled.layer_names, "mean": pooled.mean,
                            "ln_mean": pooled.ln_mean, "code_version": CODE_VERSION}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return pooled, False


def _load(path: Path, utts: Sequence[Utterance]) -> Pooled | None:
    """The cached features when the file is there, readable and for these utterances."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if data["ids"] == [u.id for u in utts]:
            return Pooled(data["ids"], data["layer_names"], data["mean"], data["ln_mean"])
    except (OSError, RuntimeError, KeyError, EOFError):
        pass  # unreadable or stale file: recompute and overwrite
    return None


def _extract(upstream: Upstream, utts: Sequence[Utterance], split: str, device: torch.device, max_seconds: float,
             max_size: int, bf16: bool, progress: bool) -> Pooled:
    return extract_pooled(upstream, utts, device, max_seconds=max_seconds, max_size=max_size, bf16=bf16,
                          desc=f"pool {upstream.spec} {split}" if progress else False)
