#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one prepared run (one CUDA device; about 5-8 minutes on an
# H200): extraction throughput of the harness against the bare forward for Base-size random-init
# wav2vec2 / HuBERT / WavLM in fp32 and bf16 (with the full pass from FLAC through the loader
# workers), then the PWCCA benchmark with LayerBench's part on CUDA, then the learning-rate
# search: 4 stacked rates against 4 separate probe runs (KS and IC from the pooled cache, PR with
# every batch forwarded) on the tiny synthetic corpus, which the script synthesises first.
#
#     scripts/bench_gpu.sh [OUT_DIR]        # default OUT_DIR: bench-gpu
#
# Figures: OUT_DIR/extract.json + extract.log (Markdown table at the end), OUT_DIR/pwcca.json + pwcca.log,
# OUT_DIR/tune.md + tune.log (on a GPU read the wall-time column: the CPU time is the host's).
set -euo pipefail
out="${1:-bench-gpu}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
"$py" scripts/bench_extract.py --device cuda --precision fp32,bf16 \
    --models randinit:wav2vec2-base,randinit:hubert-base,randinit:wavlm-base \
    --batches 20 --max-seconds 400 --max-size 32 --with-loading \
    --out "$out/extract.json" 2>&1 | tee "$out/extract.log"
"$py" scripts/bench_pwcca.py --device cuda --threads 1 --out "$out/pwcca.json" 2>&1 | tee "$out/pwcca.log"
"$py" -c 'from bench.cli import main; raise SystemExit(main())' synth --out "$out/synth-tiny" --size tiny
"$py" scripts/bench_tune.py --device cuda --corpus "$out/synth-tiny" \
    --upstreams hf:layerbench/hubert-small-it2,randinit:hubert-base --tasks ks:300,ic:300,pr:40 \
    --frame-modes forward --report "$out/tune.md" 2>&1 | tee "$out/tune.log"
echo "GPU figures written to $out/"
