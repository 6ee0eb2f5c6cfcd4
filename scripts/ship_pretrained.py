"""Remake the models shipped in upstreams/pretrained/layerbench/ (the demo's learned upstreams).

    python scripts/ship_pretrained.py --corpus data/synth-small --work runs/pretrain

Runs exactly the two `layerbench pretrain` commands that made them (seed 0, small synthetic
corpus of `layerbench synth --size small --seed 0`), then stores the chosen checkpoints in
fp16 under upstreams/pretrained/layerbench/<name>/ (safetensors + config + feature-extractor
config + pretrain.json, which records the full config and the loss history). Both runs
resume from their state.pt when interrupted. Their untrained twin is `randinit:hubert-small`
(seed 0): the exact weights every run starts from.

On a 2-core CPU shared with other jobs iteration 1 took about 50 minutes; the result is the
same bit for bit on any machine with the same torch build and thread count (2 threads).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIP = ROOT / "upstreams" / "pretrained" / "layerbench"

IT1_STEPS = 1400
IT1_SHIP = {"hubert-small-it1-step350": "checkpoint-350", "hubert-small-it1": "final"}
IT2_STEPS = 300
IT2_SHIP = {"hubert-small-it2": "final"}


def it1_args(corpus: str, work: Path) -> list[str]:
    return ["pretrain", "--corpus", corpus, "--out", str(work / "iter1"), "--iteration", "1",
            "--steps", str(IT1_STEPS), "--snapshot-every", "350", "--seed", "0", "--threads", "2", "--device", "cpu"]


def it2_args(corpus: str, work: Path) -> list[str]:
    teacher = str(work / "iter1" / "final")
    return ["pretrain", "--corpus", corpus, "--out", str(work / "iter2"), "--iteration", "2",
            "--teacher", teacher, "--teacher-layer", "3", "--init", teacher, "--steps", str(IT2_STEPS),
            "--lr", "1e-3", "--seed", "0", "--threads", "2", "--device", "cpu"]


def export_fp16(src: Path, dst: Path) -> None:
    """Copy a checkpoint folder with its weights cast to fp16 (the loader upcasts to fp32)."""
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    model = AutoModel.from_pretrained(src, dtype=torch.float32).half()
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    Wav2Vec2FeatureExtractor.from_pretrained(src).save_pretrained(tmp)
    info = json.loads((src / "pretrain.json").read_text())
    (tmp / "pretrain.json").write_text(json.dumps(dict(info, stored_dtype="float16"), indent=2) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def main() -> None:
    from bench.cli import main as cli

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="data/synth-small", help="the small synthetic corpus (seed 0)")
    ap.add_argument("--work", default="runs/pretrain", help="training folders (state, checkpoints)")
    args = ap.parse_args()
    work = Path(args.work)
    for argv in (it1_args(args.corpus, work), it2_args(args.corpus, work)):
        if cli(argv) != 0:
            raise SystemExit(f"`layerbench {' '.join(argv)}` failed")
    for run, ship in (("iter1", IT1_SHIP), ("iter2", IT2_SHIP)):
        for name, folder in ship.items():
            export_fp16(work / run / folder, SHIP / name)
            print(f"shipped {work / run / folder} -> {SHIP / name}")


if __name__ == "__main__":
    main()
