#!/usr/bin/env python
"""Time of tuning K learning rates with the stacked bank against K separate bank runs.

For each upstream and task, in one process, on the same data, with the same steps and the same
K rates:
  stacked   `bench.tune.run_tune` with a grid of K rates and stack K: one bank of K x (L+2)
            heads, one upstream pass (or pooled-cache gather) per batch, no pruning
            (`--stack S --pruner median`: rounds of S rates as `layerbench tune` runs them, the
            pruner stopping rates mid-round; then the two sides no longer train the same steps)
  separate  K `bench.probe.run_probe` runs, one per rate, one after another (what a user
            running `layerbench probe` once per rate does)
Both sides load the upstream from its spec, as K separate `layerbench probe` runs would;
optuna is imported before timing (a process's one-time cost). Utterance-level tasks fill the
pooled cache once before timing (both sides then read it). Frame-level tasks run in the
`--frame-modes` given: `kept` is the preset as shipped (the quick presets' extract.keep_train:
the first epoch goes through the upstream and later epochs re-use its frames, on both sides);
`forward` sets extract.keep_train false, so every training batch is forwarded, as on a corpus
too large to hold in memory (the superb presets). Wall time and CPU time (all threads of the
process) are measured; on a shared machine the CPU-time ratio is the robust one.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_tune.py --upstreams randinit:hubert-tiny \\
        --corpus /tmp/synth-tiny --tasks ks:300,ic:300,pr:40 --frame-modes kept,forward

Prints a Markdown table (paste into BENCHMARKS.md) and writes it to --report when given.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import optuna  # noqa: F401  (imported before timing: see the docstring)
import torch

from bench.probe import run_probe
from bench.tune import run_tune

MODES = {"kept": "first epoch forwarded, then kept", "forward": "every batch forwarded"}


def timed(fn, **kw) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn(force=True, progress=False, **kw)
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstreams", default="randinit:hubert-tiny", help="upstream specs, comma-separated")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tasks", default="ks:300,ic:300,pr:40", help="TASK[:STEPS], comma-separated")
    ap.add_argument("--steps", type=int, default=300, help="steps of a task given without :STEPS")
    ap.add_argument("--frame-modes", default="kept", help=f"frame-level tasks: {', '.join(MODES)} (comma-separated)")
    ap.add_argument("--rates", default="1e-4,1e-3,1e-2,1e-1", help="the K rates, comma-separated")
    ap.add_argument("--stack", type=int, default=0, help="rates per round on the stacked side (default: all K)")
    ap.add_argument("--pruner", default="none", choices=("none", "median", "halving"),
                    help="the stacked side's pruner (configs/tune.yaml's start-up and warm-up)")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--report", default=None, help="also write the Markdown table to this file")
    args = ap.parse_args()

    import tasks
    import upstreams

    rates = [float(r) for r in args.rates.split(",")]
    stack = args.stack or len(rates)
    modes = [m for m in args.frame_modes.split(",") if m]
    if any(m not in MODES for m in modes):
        ap.error(f"--frame-modes: each one of {', '.join(MODES)}, got {args.frame_modes!r}")
    work = Path(tempfile.mkdtemp(prefix="bench_tune_"))
    rows = []
    try:
        for spec in args.upstreams.split(","):
            n_layers = len(upstreams.load(spec).layers)
            for item in args.tasks.split(","):
                task, _, n = item.partition(":")
                steps = int(n) if n else args.steps
                common = {"steps": steps, "eval_every": max(1, steps // 4)}
                frame = tasks.get(task).level == "frame"
                if not frame:
                    common["cache_dir"] = str(work / "cache" / spec.replace("/", "_"))
                    timed(run_probe, upstream=spec, task=task, corpus=args.corpus, preset=args.preset,
                          device=args.device, out_dir=work / "warm", overrides={**common, "steps": 1, "eval_every": 1})
                base = dict(upstream=spec, task=task, corpus=args.corpus, preset=args.preset, device=args.device)
                for mode in modes if frame else ["pooled"]:
                    over = {**common, "extract": {"keep_train": False}} if mode == "forward" else common
                    stacked = timed(run_tune, out_dir=work / "stacked", overrides=over,
                                    tune={"grid": rates, "stack": stack, "trials": len(rates), "pruner": args.pruner},
                                    **base)
                    separate = [timed(run_probe, out_dir=work / f"lr{k}", overrides={**over, "lr": r}, **base)
                                for k, r in enumerate(rates)]
                    sep = (sum(w for w, _ in separate), sum(c for _, c in separate))
                    what = "pooled cache" if mode == "pooled" else MODES[mode]
                    rows.append((spec, n_layers, task, what, steps, stacked, sep))
                    print(f"{spec} {task} ({what}): stacked {stacked[0]:.1f}s wall / {stacked[1]:.1f}s cpu, "
                          f"{len(rates)} separate {sep[0]:.1f}s wall / {sep[1]:.1f}s cpu", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    rounds = f"rounds of {stack}, {args.pruner} pruner" if (stack, args.pruner) != (len(rates), "none") else \
        "one stacked round, no pruning"
    lines = [f"Preset `{args.preset}`, K = {len(rates)} rates ({args.rates}; {rounds}), {dev}.", "",
             "| upstream | task | training features | steps | stacked / separate (CPU time) | (wall) |",
             "|---|---|---|---|---|---|"]
    for spec, n_layers, task, what, steps, (sw, sc), (pw, pc) in rows:
        lines.append(f"| `{spec}` ({n_layers} layers) | {task} | {what} | {steps} | **{sc / pc:.2f}** | {sw / pw:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.report:
        Path(args.report).write_text(table + "\n")
        print(f"table written to {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
