#!/usr/bin/env python
"""ASR BiLSTM heads on the CPU: the fused pass against one nn.LSTM per head, side by side in one process.

Two measurements, each taking turns between the two paths ($LAYERBENCH_LSTM=per-head / fused)
and reporting CPU-time ratios (per-head / fused; the robust figure on a shared CPU):

  step   one ASR probe-bank train step (`Bank.train_step`: SpecAugment, the heads' forward,
         CTC losses, backward, each head's Adam + clipping) and one no-grad evaluation forward,
         for G = --layers single-layer heads + the weighted-sum head on random frames shaped
         like --dim-wide layers at 50 Hz;
  probe  a whole `layerbench probe --task asr` (`run_probe`: extraction, training, dev and test)
         of --upstream on --corpus with --steps steps.

Both use the --preset's head unless --head PROJ,HIDDEN,LAYERS names another.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_lstm.py step --dim 192 --layers 7 --head 32,32,2
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_lstm.py probe --upstream hf:layerbench/hubert-small-it2 \\
        --corpus /tmp/tiny --steps 20

Prints a Markdown table (paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_probe import cpu_now  # noqa: E402

from bench.probe import Bank, Features, build_groups, resolve_params, run_probe, typed_params  # noqa: E402
from bench.types import Batch, LayerSpec  # noqa: E402
from tasks.base import LSTM_PATH_ENV  # noqa: E402

PATHS = ("per-head", "fused")


@contextmanager
def lstm_path(path: str):
    before = os.environ.get(LSTM_PATH_ENV)
    os.environ[LSTM_PATH_ENV] = path
    try:
        yield
    finally:
        if before is None:
            del os.environ[LSTM_PATH_ENV]
        else:
            os.environ[LSTM_PATH_ENV] = before


def cpu_of(fn, clock=time.process_time) -> float:
    """CPU seconds of fn(): this process's (fine-grained) clock, or `cpu_now` with audio workers."""
    c0 = clock()
    fn()
    return clock() - c0


def head_override(args) -> dict:
    if not args.head:
        return {}
    proj, hidden, layers = (int(v) for v in args.head.split(","))
    return {"head": {"proj": proj, "hidden": hidden, "layers": layers}}


def head_label(args) -> str:
    h = resolve_params("asr", args.preset, head_override(args))["head"]
    return f"head {h['proj']} -> {h['layers']} x BiLSTM {h['hidden']}"


def bench_step(args) -> list[tuple[str, float, float]]:
    """Median CPU seconds of a train step and an eval forward per path, and the median per-repeat ratio."""
    import tasks

    task = tasks.get("asr")
    space = task.fit([])
    params = typed_params("asr", resolve_params("asr", args.preset, {"steps": 1, **head_override(args)}))
    specs = [LayerSpec(f"layer{i}", i, args.dim, 320) for i in range(args.layers)]
    frames = int(args.seconds * 50)
    gen = torch.Generator().manual_seed(0)
    lens = torch.randint(int(frames * 0.85), frames + 1, (args.batch,), generator=gen)
    lens[0] = frames
    feats = Features([torch.randn(args.batch, frames, args.dim, generator=gen) for _ in specs],
                     [lens.clone() for _ in specs])
    chars = int(args.seconds * 14)  # ~14 characters per second of read speech
    batch = Batch(torch.randint(4, space.size, (args.batch, chars), generator=gen),
                  torch.full((args.batch,), chars))
    dev = torch.device("cpu")
    banks = {p: Bank(task, space, build_groups(task, space, specs, range(len(specs)), params, 0, dev), params, dev, 0)
             for p in PATHS}
    heads = sum(g.size for g in banks[PATHS[0]].groups)

    def train(p):
        banks[p].train_step(iter([(feats, batch)]), 0)

    def evaluate(p):
        with torch.no_grad():
            for grp in banks[p].groups:
                grp.train(False)
                x, l = grp.gather(feats, dev)
                grp.module(x, l)

    rows = []
    for name, fn in ((f"train step ({heads} heads)", train), (f"eval forward ({heads} heads)", evaluate)):
        times = {p: [] for p in PATHS}
        for p in PATHS:  # warm-up, untimed
            with lstm_path(p):
                fn(p)
        for r in range(args.repeats):
            for p in (PATHS if r % 2 == 0 else PATHS[::-1]):
                with lstm_path(p):
                    times[p].append(cpu_of(lambda: fn(p)))
        ratios = [a / b for a, b in zip(times["per-head"], times["fused"])]
        rows.append((name, statistics.median(times["per-head"]) / statistics.median(times["fused"]),
                     statistics.median(ratios)))
        print(f"{name}: per-head {statistics.median(times['per-head']):.3f} s, "
              f"fused {statistics.median(times['fused']):.3f} s CPU (median of {args.repeats})", flush=True)
    return rows


def bench_probe(args) -> list[tuple[str, float, float]]:
    """CPU seconds of whole ASR probe runs, per-head and fused taking turns."""
    import upstreams

    up = upstreams.load(args.upstream)
    overrides = {"steps": args.steps, "eval_every": args.steps, **head_override(args)}
    times = {p: [] for p in PATHS}
    with tempfile.TemporaryDirectory(prefix="bench_lstm_") as work:
        for r in range(args.repeats):
            for p in (PATHS if r % 2 == 0 else PATHS[::-1]):
                with lstm_path(p):
                    times[p].append(cpu_of(lambda: run_probe(up, "asr", args.corpus, preset=args.preset,
                                                             overrides=overrides, out_dir=Path(work) / p,
                                                             force=True, progress=False), cpu_now))
                print(f"probe {p}: {times[p][-1]:.1f} s CPU", flush=True)
    ratios = [a / b for a, b in zip(times["per-head"], times["fused"])]
    name = f"`probe --task asr` ({len(up.layers)} layers + ws, {args.steps} steps)"
    return [(name, statistics.median(times["per-head"]) / statistics.median(times["fused"]),
             statistics.median(ratios))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("step", "probe"))
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--head", default=None, help="PROJ,HIDDEN,LAYERS of the BiLSTM heads (default: the preset's)")
    ap.add_argument("--repeats", type=int, default=None, help="turns per path (step: 7, probe: 1)")
    ap.add_argument("--dim", type=int, default=192, help="step: layer width")
    ap.add_argument("--layers", type=int, default=7, help="step: single-layer heads (the weighted sum adds one)")
    ap.add_argument("--batch", type=int, default=8, help="step: utterances per batch")
    ap.add_argument("--seconds", type=float, default=2.3, help="step: longest utterance of the batch")
    ap.add_argument("--upstream", default="hf:layerbench/hubert-small-it2", help="probe: upstream spec")
    ap.add_argument("--corpus", help="probe: corpus folder (e.g. `layerbench synth --out DIR --size tiny`)")
    ap.add_argument("--steps", type=int, default=20, help="probe: training steps")
    args = ap.parse_args()
    if args.mode == "probe" and not args.corpus:
        ap.error("probe needs --corpus")
    args.repeats = args.repeats or (7 if args.mode == "step" else 1)
    rows = bench_step(args) if args.mode == "step" else bench_probe(args)
    print(f"\n{torch.get_num_threads()} CPU thread(s), preset `{args.preset}`, {head_label(args)}, "
          f"{args.repeats} turn(s) per path\n")
    print("| what | per-head / fused (median CPU times) | per-head / fused (median of per-turn ratios) |")
    print("|---|---|---|")
    for name, ratio, per_turn in rows:
        print(f"| {name} | {ratio:.2f} | {per_turn:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
