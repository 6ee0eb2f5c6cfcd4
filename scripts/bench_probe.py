#!/usr/bin/env python
"""Wall time of the probe bank against a weighted-sum-only run and one run per layer.

For each task, on the same machine and in one process, with the same steps:
  bank      all single-layer heads + the weighted-sum head, trained together (one upstream
            pass per batch, or one pooled cache for utterance-level tasks)
  ws-only   the weighted-sum head alone (`--layers none`)
  per-layer one run per layer, one after another (single head, no weighted sum)
Utterance-level tasks read a pooled cache: by default it is filled once before timing (warm:
head training only); with --cold each configuration starts from an empty cache, as a user's
first run would (the per-layer sweep fills it once and reuses it). Frame-level runs forward
the upstream every time.

    .venv/bin/python scripts/bench_probe.py --upstream randinit:hubert-tiny --corpus /tmp/synth_small \
        --tasks ks,pr --steps 100

Prints a Markdown table (paste into BENCHMARKS.md) and writes it to --report when given.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bench.probe import run_probe


CPU_S: list[float] = []  # CPU time of each timed() call (this process + its finished workers)


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(**kw) -> float:
    """Wall seconds of one run; its CPU seconds go to CPU_S (the robust figure on a shared CPU)."""
    t0, c0 = time.perf_counter(), cpu_now()
    run_probe(force=True, progress=False, **kw)
    CPU_S.append(cpu_now() - c0)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", default="randinit:hubert-tiny")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tasks", default="ks,pr")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cold", action="store_true", help="utterance-level: each configuration extracts its own cache")
    ap.add_argument("--no-per-layer", action="store_true", help="skip the one-run-per-layer sweep (Base/Large upstreams)")
    ap.add_argument("--report", default=None, help="also write the Markdown table to this file")
    args = ap.parse_args()

    import tasks
    import upstreams

    up = upstreams.load(args.upstream)
    n_layers = len(up.layers)
    work = Path(tempfile.mkdtemp(prefix="bench_probe_"))
    cache = work / "cache"
    rows = []
    try:
        for task in args.tasks.split(","):
            base = dict(upstream=up, task=task, corpus=args.corpus, preset=args.preset, device=args.device)
            common = {"steps": args.steps, "eval_every": args.steps}
            if args.batch_size:
                common["batch_size"] = args.batch_size
            utt = tasks.get(task).level == "utterance"
            if utt and not args.cold:  # fill the pooled cache once, untimed
                timed(out_dir=work / "warm", overrides={**common, "steps": 1, "eval_every": 1, "cache_dir": str(cache)},
                      **base)

            def cached(name: str) -> dict:
                return {"cache_dir": str(work / f"cache-{task}-{name}" if args.cold else cache)} if utt else {}

            bank = timed(out_dir=work / "bank", overrides={**common, **cached("bank")}, **base)
            ws = timed(out_dir=work / "ws", layers="none", overrides={**common, **cached("ws")}, **base)
            cpu_ratio = CPU_S[-2] / CPU_S[-1]
            per = [timed(out_dir=work / f"l{l}", layers=[up.layers[l].index],
                         overrides={**common, **cached("per"), "weighted_sum": {"enabled": False, "layer_norm": False}},
                         **base)
                   for l in range(0 if args.no_per_layer else n_layers)]
            rows.append((task, bank, ws, sum(per) if per else None, cpu_ratio))
            print(f"{task}: bank {bank:.1f}s, ws-only {ws:.1f}s, per-layer total {sum(per):.1f}s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    cache_note = " Pooled cache: cold (each configuration extracts)." if args.cold else ""
    batch = f", batch {args.batch_size}" if args.batch_size else ""
    lines = [f"Upstream `{args.upstream}` ({n_layers} layers), preset `{args.preset}`, {args.steps} steps{batch}, {dev}."
             + cache_note, "",
             "| task | bank (all layers + ws) | ws only | one run per layer | bank / ws | bank / ws (CPU time) "
             "| per-layer / bank |",
             "|---|---|---|---|---|---|---|"]
    for task, bank, ws, per, cpu_ratio in rows:
        sweep = ("-", "-") if per is None else (f"{per:.1f} s", f"{per / bank:.2f}")
        lines.append(f"| {task} | {bank:.1f} s | {ws:.1f} s | {sweep[0]} | {bank / ws:.2f} | {cpu_ratio:.2f} "
                     f"| {sweep[1]} |")
    table = "\n".join(lines)
    print(table)
    if args.report:
        Path(args.report).write_text(table + "\n")
        print(f"table written to {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
