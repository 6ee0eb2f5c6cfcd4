"""HuBERT-style pre-training of a small model on a LibriSpeech-layout corpus (CPU or CUDA).

The recipe (Hsu et al. 2021, scaled down): a conv encoder + transformer predicts, for masked
20-ms frames, the k-means cluster of that frame. Iteration 1 clusters 39-d Kaldi MFCC
(13 + deltas + delta-deltas, standardised, every second 10-ms frame so frame i covers samples
[320i, 320i+400) exactly as the model's frame i does); iteration 2 clusters a middle layer of
the iteration-1 model. The model is an HF `HubertModel` built from a `randinit` preset or a
config.json, with weights drawn under `torch.manual_seed(seed)` exactly as `randinit:` draws
them, so `randinit:<arch>` with the same seed is the untrained twin of every checkpoint.

Deviations from the paper, all for CPU scale: a linear prediction head over the last layer
(HuBERT projects and scores cosine similarity against code embeddings), a 0.2-weighted
cross-entropy on unmasked frames beside the masked one (the paper's alpha = 1 uses masked
frames only; at minutes of training the unmasked term keeps the lower layers moving),
bf16 autocast, crops of at most `max_crop_s`, k = 100 clusters in both iterations, and
optionally (`init`) iteration 2 starting from iteration 1's weights instead of from scratch.

Determinism and resume: every step draws its crops, masks and dropout from generators seeded
by (seed, step) and the batch order of an epoch from (seed, epoch), so a run resumed from its
`state.pt` (model, head, optimizer, step, cluster model; written atomically) continues
exactly as the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.data import Utterance, open_corpus

HOP = 320  # samples per model frame (the conv stack's total stride), 20 ms at 16 kHz
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pre-training run (recorded in every checkpoint)."""

    corpus: str
    arch: str = "hubert-small"  # randinit preset name or a config.json path
    iteration: int = 1  # 1: targets from MFCC k-means; 2: from k-means of `teacher`'s layer
    teacher: str | None = None  # iteration 2: folder of an iteration-1 checkpoint (save_pretrained)
    teacher_layer: int | None = None  # default: the middle transformer layer of the teacher
    init: str | None = None  # start from these weights (a checkpoint folder) instead of the seeded init
    clusters: int = 100
    kmeans_frames: int = 200_000  # frames sampled (seeded) to fit k-means; all frames get labels
    steps: int = 1000
    batch_size: int = 8
    max_crop_s: float = 3.0
    lr: float = 3e-3
    warmup: float = 0.05  # fraction of steps with a linear warm-up, then linear decay to 0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    clip: float = 5.0
    mask_prob: float = 0.65
    mask_length: int = 10
    unmasked_weight: float = 0.2
    precision: str = "bf16"  # bf16 autocast or fp32
    seed: int = 0
    splits: tuple[str, ...] = ()  # LibriSpeech split folders to train on; () = every train-* split
    snapshot_every: int = 0  # also save an HF checkpoint-<step>/ every N steps (0: only the final one)
    state_every: int = 100  # write the resumable state.pt every N steps
    log_every: int = 50

    def __post_init__(self):
        if self.iteration not in (1, 2):
            raise ValueError(f"--iteration must be 1 or 2, got {self.iteration}")
        if self.iteration == 2 and not self.teacher:
            raise ValueError("--iteration 2 needs --teacher DIR (an iteration-1 checkpoint folder)")
        if self.iteration == 1 and self.teacher:
            raise ValueError("--teacher is for --iteration 2 (iteration 1 clusters MFCC)")
        for name in ("steps", "batch_size", "clusters", "mask_length", "state_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"--mask-prob must be in (0, 1), got {self.mask_prob}")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"--precision must be bf16 or fp32, got {self.precision!r}")

    def to_json(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- data and targets

def train_utterances(cfg: PretrainConfig) -> list[Utterance]:
    """The LibriSpeech train split(s) of `cfg.corpus`, longest first (ties by id)."""
    from bench.data.librispeech import _split_folders, find

    root = Path(cfg.corpus).expanduser()
    folder = find(root)
    if folder is None:
        raise FileNotFoundError(f"--corpus {root}: no LibriSpeech-layout folder found (expected LibriSpeech/ "
                                "with split folders such as train-clean-100/)")
    splits = list(cfg.splits) or [s for s in _split_folders(folder) if s.startswith("train")]
    if not splits:
        raise FileNotFoundError(f"--corpus {folder}: no train-* split folder; name the splits with --splits")
    corpus = open_corpus(folder, "librispeech", splits=splits, alignments=False)
    utts = [u for s in splits for u in corpus.split(s)]
    min_s = 2 * 400 / SAMPLE_RATE
    utts = [u for u in utts if u.duration >= min_s]
    return sorted(utts, key=lambda u: (-u.duration, u.id))


def model_frames(num_samples: int) -> int:
    """Frames of the 320-stride conv stack (kernel 400 in total) for `num_samples` samples."""
    return max(0, (num_samples - 400) // HOP + 1)


def mfcc_features(wav: np.ndarray) -> np.ndarray:
    """39-d Kaldi MFCC (+ deltas, delta-deltas) at the model's 20-ms frames, [T, 39]."""
    import torchaudio

    x = torch.from_numpy(wav).float()[None] * 32768.0
    m = torchaudio.compliance.kaldi.mfcc(x, sample_frequency=SAMPLE_RATE, num_ceps=13, dither=0.0)
    d1 = torchaudio.functional.compute_deltas(m.T[None])[0].T
    d2 = torchaudio.functional.compute_deltas(d1.T[None])[0].T
    feats = torch.cat([m, d1, d2], dim=1)[::2]  # 10-ms frame 2i covers samples [320i, 320i+400)
    return feats[: model_frames(len(wav))].numpy()


def teacher_features(model_dir: str, layer: int | None, device: torch.device) -> tuple[Callable, int]:
    """(wav -> [T, D] features of `layer` of the checkpoint, the layer used)."""
    import upstreams

    up = upstreams.load(f"hf:{model_dir}").to(device).eval()
    n_tf = max(spec.index for spec in up.layers)
    layer = n_tf // 2 if layer is None else layer
    if not 0 <= layer <= n_tf:
        raise ValueError(f"--teacher-layer {layer} is out of range for {model_dir} (layers 0..{n_tf})")
    pos = [spec.index for spec in up.layers].index(layer)

    @torch.no_grad()
    def feats(wav: np.ndarray) -> np.ndarray:
        w = torch.from_numpy(wav).float()[None].to(device)
        out = up(w, torch.tensor([w.shape[1]], device=device))
        return out.hidden[pos][0, : model_frames(len(wav))].float().cpu().numpy()

    return feats, layer


def fit_targets(cfg: PretrainConfig, utts: list[Utterance], device: torch.device, log: Callable[[str], None]):
    """K-means cluster ids per utterance (list of int16 arrays) and the cluster model's description."""
    from sklearn.cluster import MiniBatchKMeans

    if cfg.iteration == 1:
        featurize, source = mfcc_features, "mfcc39"
    else:
        featurize, layer = teacher_features(cfg.teacher, cfg.teacher_layer, device)
        source = f"{cfg.teacher}#layer{layer}"
    t0 = time.time()
    feats = []
    for i, u in enumerate(utts):
        feats.append(featurize(u.load()).astype(np.float32))
        if (i + 1) % 200 == 0 or i + 1 == len(utts):
            log(f"  features ({source}): {i + 1}/{len(utts)} utterances, {time.time() - t0:.0f} s")
    allf = np.concatenate(feats)
    mean, std = allf.mean(0), allf.std(0) + 1e-5
    rng = np.random.default_rng(cfg.seed)
    pick = rng.choice(len(allf), size=min(cfg.kmeans_frames, len(allf)), replace=False)
    km = MiniBatchKMeans(n_clusters=cfg.clusters, random_state=cfg.seed, batch_size=4096, n_init=3,
                         max_iter=100).fit((allf[pick] - mean) / std)
    targets = [km.predict((f - mean) / std).astype(np.int16) for f in feats]
    counts = np.bincount(np.concatenate(targets), minlength=cfg.clusters)
    log(f"  k-means k={cfg.clusters} on {len(pick)} of {len(allf)} frames of {source}: "
        f"{int((counts > 0).sum())} clusters used, {time.time() - t0:.0f} s")
    return targets, {"source": source, "frames": int(len(allf)), "fit_frames": int(len(pick)),
                     "inertia": float(km.inertia_), "centers": km.cluster_centers_.astype(np.float32),
                     "mean": mean, "std": std}


def epoch_batches(utts: list[Utterance], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-grouped batches (neighbours in duration), in an order drawn from (seed, epoch)."""
    groups = [list(range(i, min(i + batch_size, len(utts)))) for i in range(0, len(utts), batch_size)]
    order = np.random.default_rng([seed, epoch]).permutation(len(groups))
    return [groups[i] for i in order]


def span_mask(num: int, frames: int, prob: float, length: int, gen: torch.Generator) -> torch.Tensor:
    """[num, frames] bool: about prob * frames / length spans of `length` frames per row (may overlap)."""
    mask = torch.zeros(num, frames, dtype=torch.bool)
    starts_max = max(1, frames - length + 1)
    n_spans = max(1, int(prob * frames / length + torch.rand(1, generator=gen).item()))
    for b in range(num):
        starts = torch.randperm(starts_max, generator=gen)[:n_spans]
        for s in starts.tolist():
            mask[b, s: s + length] = True
    return mask


def make_batch(utts: list[Utterance], idx: list[int], targets: list[np.ndarray], max_crop: int,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms cropped to the batch's shortest (<= max_crop, a multiple of HOP) at frame-aligned
    random offsets, normalised per utterance, and their [B, T] cluster targets."""
    wavs = [utts[i].load() for i in idx]
    crop = min(min(len(w) for w in wavs), max_crop) // HOP * HOP
    n_frames = model_frames(crop)
    xs, ys = [], []
    for w, i in zip(wavs, idx):
        tgt = targets[i]
        max_start = min((len(w) - crop) // HOP, len(tgt) - n_frames)
        a = int(torch.randint(0, max_start + 1, (1,), generator=gen)) if max_start > 0 else 0
        x = torch.from_numpy(w[a * HOP: a * HOP + crop]).float()
        xs.append((x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7))
        ys.append(torch.from_numpy(tgt[a: a + n_frames].astype(np.int64)))
    return torch.stack(xs), torch.stack(ys)


# ----------------------------------------------------------------------------- model and state

def build_model(cfg: PretrainConfig) -> tuple[torch.nn.Module, torch.nn.Linear]:
    """The HuBERT model drawn exactly as `randinit:<arch>` seed `cfg.seed` draws it, and its head."""
    from transformers import AutoModel

    from upstreams.randinit import _config_from_file, preset_config

    if cfg.arch.endswith(".json") or Path(cfg.arch).is_dir():
        config, _ = _config_from_file(cfg.arch, f"randinit:{cfg.arch}")
    else:
        config = preset_config(cfg.arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = AutoModel.from_config(config)
        head = torch.nn.Linear(config.hidden_size, cfg.clusters)
    if cfg.init:
        init = AutoModel.from_pretrained(cfg.init, dtype=torch.float32)
        missing = model.load_state_dict(init.state_dict(), strict=False)
        if missing.missing_keys:
            raise ValueError(f"--init {cfg.init}: architecture differs from --arch {cfg.arch} "
                             f"(missing {missing.missing_keys[:3]})")
    return model, head


def lr_at(cfg: PretrainConfig, step: int) -> float:
    """Linear warm-up over `warmup` of the steps, then linear decay to 0 at `steps`."""
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - warm))


def _atomic_torch_save(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(model: torch.nn.Module, folder: Path, info: dict) -> Path:
    """HF folder (save_pretrained, fp32) + feature-extractor config + pretrain.json; atomic rename."""
    from transformers import Wav2Vec2FeatureExtractor

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    model.save_pretrained(tmp)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(tmp)
    (tmp / "pretrain.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


@dataclass
class PretrainReport:
    out: Path
    final: Path
    snapshots: list[Path] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


def pretrain(cfg: PretrainConfig, out: str | os.PathLike, device: str = "cpu", threads: int | None = None,
             stop_after: int | None = None, log: Callable[[str], None] = print) -> PretrainReport:
    """Run (or resume) pre-training into `out`; `stop_after` ends early at that step (tests, budgets)."""
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    state_path = out / "state.pt"
    state = torch.load(state_path, map_location="cpu", weights_only=False) if state_path.exists() else None
    if state is not None and state["config"] != cfg.to_json():
        diff = sorted(k for k, v in cfg.to_json().items() if state["config"].get(k) != v)
        raise ValueError(f"{state_path} was written by a run with a different config (differs in: "
                         f"{', '.join(diff)}); use another --out or the same options")
    (out / "config.json").write_text(json.dumps(cfg.to_json(), indent=2) + "\n")

    utts = train_utterances(cfg)
    hours = sum(u.duration for u in utts) / 3600
    log(f"pretrain iteration {cfg.iteration}: {len(utts)} utterances ({hours:.2f} h) from {cfg.corpus}, "
        f"{cfg.steps} steps of {cfg.batch_size}, device {dev}, {torch.get_num_threads()} threads")
    model, head = build_model(cfg)
    if state is None:
        targets, kmeans = fit_targets(cfg, utts, dev, log)
        step = 0
    else:
        targets, kmeans, step = state["targets"], state["kmeans"], state["step"]
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        log(f"  resumed from {state_path} at step {step}")
    model.to(dev).train()
    head.to(dev).train()
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    history: list[dict] = state["history"] if state is not None else []
    n_params = sum(p.numel() for p in model.parameters())
    info = {"config": cfg.to_json(), "kmeans_source": kmeans["source"], "parameters": n_params}
    per_epoch = math.ceil(len(utts) / cfg.batch_size)
    max_crop = int(cfg.max_crop_s * SAMPLE_RATE)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    snapshots: list[Path] = []

    def save_state() -> None:
        _atomic_torch_save({"config": cfg.to_json(), "step": step, "model": model.state_dict(),
                            "head": head.state_dict(), "optimizer": opt.state_dict(), "targets": targets,
                            "kmeans": kmeans, "history": history}, state_path)

    if state is None:
        save_state()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    t0, s0, window = time.time(), step, []
    while step < end:
        epoch, pos = divmod(step, per_epoch)
        idx = epoch_batches(utts, cfg.batch_size, cfg.seed, epoch)[pos]
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        torch.manual_seed(cfg.seed * 1_000_003 + step)  # dropout / layerdrop, if the arch has any
        x, y = make_batch(utts, idx, targets, max_crop, gen)
        mask = span_mask(x.shape[0], y.shape[1], cfg.mask_prob, cfg.mask_length, gen)
        x, y, mask = x.to(dev), y.to(dev), mask.to(dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        with autocast:
            hidden = model(x, mask_time_indices=mask).last_hidden_state
            logits = head(hidden).float()
        t = min(logits.shape[1], y.shape[1])
        logits, y, mask = logits[:, :t], y[:, :t], mask[:, :t]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.clusters), y.reshape(-1), reduction="none")
        ce = ce.view_as(y)
        masked = ce[mask].mean()
        unmasked = ce[~mask].mean() if (~mask).any() else ce.new_zeros(())
        loss = masked + cfg.unmasked_weight * unmasked
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        step += 1
        acc = (logits.argmax(-1)[mask] == y[mask]).float().mean().item()
        window.append((loss.item(), masked.item(), acc))
        if step % cfg.log_every == 0 or step == end:
            loss_m, masked_m, acc_m = (float(np.mean(c)) for c in zip(*window))
            rate = (step - s0) / max(1e-9, time.time() - t0)
            history.append({"step": step, "loss": loss_m, "masked_ce": masked_m, "masked_acc": acc_m,
                            "lr": lr_at(cfg, step - 1), "epoch": epoch})
            log(f"  step {step}/{cfg.steps}  epoch {epoch}  loss {loss_m:.3f}  masked ce {masked_m:.3f}  "
                f"masked acc {acc_m:.3f}  lr {lr_at(cfg, step - 1):.2e}  {rate:.2f} steps/s  "
                f"eta {(end - step) / max(rate, 1e-9) / 60:.1f} min")
            window = []
        if cfg.snapshot_every and step % cfg.snapshot_every == 0 and step < cfg.steps:
            snapshots.append(save_checkpoint(model, out / f"checkpoint-{step}", dict(info, step=step)))
        if step % cfg.state_every == 0 or step == end:
            save_state()
    final = out / "final"
    if step >= cfg.steps:
        final = save_checkpoint(model, final, dict(info, step=step, history=history))
    snapshots = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return PretrainReport(out=out, final=final, snapshots=snapshots, history=history)
