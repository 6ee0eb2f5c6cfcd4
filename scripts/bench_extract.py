#!/usr/bin/env python
"""Extraction throughput of the harness against a bare `model(wavs)` forward, side by side.

Same process, same padded batches, same weights; methods take turns on every batch:
  bare      `up.model(wavs)`: the transformers model on the padded batch, nothing else
            (no input normalisation, no mask, hidden states not requested)
  harness   `bench.extract.forward(up, wavs, lens)`: what every probe / pooled / CCA pass runs
            (valid-sample normalisation, padding=exact masks, every layer, float32 copies)
  s3prl     the same with padding=s3prl (one plain padded call with the padding mask)
  grouped   the previous equal-length path: one forward per distinct valid length
            (`upstreams.base.run_in_length_groups`), i.e. batch-1 forwards on these lengths
  loading   (--with-loading) `harness` fed by `bench.extract.audio_batches` from FLAC files
            (decoding and collation in worker processes), i.e. the full extraction pass

Utterance lengths are LibriSpeech-like: log-normal around --median seconds (sigma --sigma),
clipped to 1-35 s, a pool of --pool utterances bucketed as the harness buckets them
(`bench.extract.length_buckets`, --max-seconds / --max-size); --batches of those buckets,
drawn with --seed, are timed. Audio is seeded noise with a slow envelope. The padding
fraction (padded samples / all samples) is reported for the timed batches and for the pool.
Before timing, the script checks that `harness` and `grouped` agree on every valid frame.

CPU (short, for ratios):
    .venv/bin/python scripts/bench_extract.py --device cpu --threads 1 --batches 2 --max-size 4 \\
        --max-seconds 60
GPU (both precisions, longer; scripts/bench_gpu.sh runs this and the PWCCA benchmark):
    .venv/bin/python scripts/bench_extract.py --device cuda --precision fp32,bf16 --batches 20 \\
        --max-seconds 400 --max-size 32 --with-loading --out bench_extract.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

import upstreams
from bench.data.manifest import Utterance
from bench.extract import audio_batches, forward, length_buckets, loader_workers, pick_device
from upstreams.base import normalize_valid, run_in_length_groups

SR = 16000


def librispeech_like(n: int, median: float, sigma: float, seed: int) -> np.ndarray:
    """Durations in seconds: log-normal around `median`, clipped to LibriSpeech's 1-35 s."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(math.log(median), sigma, n), 1.0, 35.0)


def batch_audio(durations: list[float], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded noise with a 3 Hz envelope; [B, S] float32 and lengths [B]."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([int(d * SR) for d in durations])
    wavs = torch.zeros(len(durations), int(lens.max()))
    for i, n in enumerate(lens.tolist()):
        env = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * torch.arange(n) / SR + i)
        wavs[i, :n] = 0.1 * env * torch.randn(n, generator=g)
    return wavs, lens


def padding_fraction(batches: list[list[int]], durs: np.ndarray) -> float:
    valid = sum(float(durs[b].sum()) for b in batches)
    total = sum(len(b) * float(durs[b].max()) for b in batches)
    return 1.0 - valid / total


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def grouped(up, wavs: torch.Tensor, lens: torch.Tensor):
    """The equal-length path the hf adapter used before exact batching."""
    wavs, lens = wavs.to(lens.device), lens
    if up.do_normalize:
        wavs = normalize_valid(wavs, lens)
    return run_in_length_groups(lambda w: up._run(w, torch.ones_like(w, dtype=torch.long)), wavs, lens)


def max_valid_gap(a, b) -> float:
    gap = 0.0
    for ha, hb, n in zip(a.hidden, b.hidden, a.lengths):
        for i, t in enumerate(n.tolist()):
            gap = max(gap, (ha[i, :t].float() - hb[i, :t].float()).abs().max().item())
    return gap


def write_flac(folder: Path, batches, durs, audio) -> list[Utterance]:
    import soundfile as sf

    utts: dict[int, Utterance] = {}
    for b, (wavs, lens) in zip(batches, audio):
        for j, i in enumerate(b):
            path = folder / f"u{i}.flac"
            sf.write(path, wavs[j, : int(lens[j])].numpy(), SR, subtype="PCM_16")
            utts[i] = Utterance(f"u{i}", path, float(lens[j]) / SR)
    return [utts[i] for i in sorted(utts)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="randinit:wav2vec2-base,randinit:hubert-base,randinit:wavlm-base")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", help="comma list of fp32, bf16 (bf16: CUDA autocast)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--pool", type=int, default=4000, help="utterances bucketed")
    ap.add_argument("--median", type=float, default=12.0)
    ap.add_argument("--sigma", type=float, default=0.35)
    ap.add_argument("--max-seconds", type=float, default=160.0)
    ap.add_argument("--max-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=8, help="timed batches")
    ap.add_argument("--with-loading", action="store_true", help="also time the full pass from FLAC files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    precisions = args.precision.split(",")
    if any(p not in ("fp32", "bf16") for p in precisions) or ("bf16" in precisions and device.type != "cuda"):
        ap.error(f"--precision {args.precision!r}: fp32 and/or bf16, and bf16 needs --device cuda")

    durs = librispeech_like(args.pool, args.median, args.sigma, args.seed)
    buckets = length_buckets(durs.tolist(), args.max_seconds, args.max_size)
    pick = np.random.default_rng(args.seed).choice(len(buckets), size=min(args.batches, len(buckets)), replace=False)
    batches = [buckets[int(k)] for k in pick]
    audio = [batch_audio(durs[b].tolist(), args.seed + k) for k, b in enumerate(batches)]
    audio_s = sum(float(lens.sum()) / SR for _, lens in audio)
    pad_timed, pad_pool = padding_fraction(batches, durs), padding_fraction(buckets, durs)
    print(f"{len(batches)} batches, {audio_s:.0f} s of audio, mean batch {np.mean([len(b) for b in batches]):.1f} "
          f"utterances; padding {100 * pad_timed:.2f} % (timed), {100 * pad_pool:.2f} % (pool of {args.pool})",
          flush=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench_extract_") if args.with_loading else None
    utts = write_flac(Path(tmp.name), batches, durs, audio) if tmp else []
    position = {u.id: k for k, u in enumerate(utts)}
    disk_batches = [[position[f"u{i}"] for i in b] for b in batches] if tmp else []

    rows = []
    for spec in args.models.split(","):
        up = upstreams.load(spec).to(device)
        s3 = upstreams.load(spec, padding="s3prl").to(device)
        for prec in precisions:
            bf16 = prec == "bf16"
            amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

            def run_bare(w, n):
                with torch.inference_mode(), amp:
                    return up.model(w.to(device, non_blocking=True))

            def run_grouped(w, n):
                with torch.inference_mode(), amp:
                    return grouped(up, w.to(device), n.to(device))

            methods = {
                "bare": run_bare,
                "harness": lambda w, n: forward(up, w, n, device, bf16=bf16),
                "s3prl": lambda w, n: forward(s3, w, n, device, bf16=bf16),
                "grouped": run_grouped,
            }
            gap = max_valid_gap(forward(up, *audio[0], device, bf16=bf16), run_grouped(*audio[0]))
            warm = (audio[0][0][:, : 2 * SR], audio[0][1].clamp(max=2 * SR))
            for name, fn in methods.items():  # warm-up on 2 s (kernels, lazy hooks)
                fn(*warm)
            sync(device)
            wall = dict.fromkeys(methods, 0.0)
            cpu = dict.fromkeys(methods, 0.0)
            names = list(methods)
            for k, (w, n) in enumerate(audio):
                for name in names[k % len(names):] + names[: k % len(names)]:  # rotate who goes first
                    t0, c0 = time.perf_counter(), time.process_time()
                    methods[name](w, n)
                    sync(device)
                    wall[name] += time.perf_counter() - t0
                    cpu[name] += time.process_time() - c0
            if args.with_loading:
                t0, c0 = time.perf_counter(), time.process_time()
                for idx, w, n in audio_batches(utts, disk_batches, pin=device.type == "cuda"):
                    forward(up, w, n, device, bf16=bf16)
                sync(device)
                wall["loading"], cpu["loading"] = time.perf_counter() - t0, time.process_time() - c0
            row = {"model": spec, "precision": prec, "wall_s": wall, "cpu_s": cpu, "audio_s": audio_s,
                   "max_gap_harness_vs_grouped": gap}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del up, s3
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if tmp:
        tmp.cleanup()

    # ratios: throughput of each method over bare's (= bare time / method time)
    absolute = device.type == "cuda"
    dev = torch.cuda.get_device_name(device) if absolute else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    clock = "wall" if absolute else "CPU time of the process"
    others = [m for m in ("harness", "s3prl", "grouped", "loading") if m in rows[0]["wall_s"]]
    head = "| model | precision | " + " | ".join(f"{m} / bare" for m in others) + " | harness vs grouped |"
    if absolute:
        head += " bare (audio s / s) | harness (audio s / s) |"
    lines = [f"{dev}; {len(batches)} batches of <= {args.max_size} utterances / {args.max_seconds:.0f} s, "
             f"{audio_s:.0f} s of audio; padding {100 * pad_timed:.2f} % (timed batches), {100 * pad_pool:.2f} % "
             f"(all {len(buckets)} buckets of the {args.pool}-utterance pool); throughput ratios from {clock}.", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        t = r["wall_s"] if absolute else r["cpu_s"]
        cells = [f"{t['bare'] / t[m]:.2f}" for m in others]
        cells.append(f"{t['grouped'] / t['harness']:.2f}x" if "grouped" in t else "-")
        if absolute:
            cells += [f"{r['audio_s'] / t['bare']:.0f}", f"{r['audio_s'] / t['harness']:.0f}"]
        lines.append(f"| {r['model']} | {r['precision']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "device": dev, "padding_timed": pad_timed,
                                              "padding_pool": pad_pool, "workers": loader_workers(), "rows": rows,
                                              "table": table}, indent=1))
        print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
