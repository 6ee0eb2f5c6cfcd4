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
# Iteration 1 was stopped at step 1050 of its 1400-step schedule (the session's deadline); a
# snapshot does not depend on where the run stops, so checkpoint-1050 is reproducible as is.
IT1_STOP = 1050
IT1_SHIP = {"hubert-small-it1-step350": "checkpoint-350", "hubert-small-it1": f"checkpoint-{IT1_STOP}"}
IT2_STEPS = 150
IT2_SHIP = {"hubert-small-it2": "final"}


def it1_args(corpus: str, work: Path) -> list[str]:
    return ["pretrain", "--corpus", corpus, "--out", str(work / "iter1"), "--iteration", "1",
            "--steps", str(IT1_STEPS), "--snapshot-every", "350", "--state-every", "50", "--log-every", "25",
            "--seed", "0", "--threads", "2", "--device", "cpu"]


def it2_args(corpus: str, work: Path) -> list[str]:
    teacher = str(work / "iter1" / f"checkpoint-{IT1_STOP}")
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
    from bench.pretrain import PretrainConfig, pretrain

    it1 = it1_args(args.corpus, work)
    if not (work / "iter1" / f"checkpoint-{IT1_STOP}").is_dir():
        # `layerbench <it1 args>` run until step IT1_STOP: the same state as the full command there
        cfg = PretrainConfig(corpus=args.corpus, steps=IT1_STEPS, snapshot_every=350, state_every=50, log_every=25)
        pretrain(cfg, work / "iter1", device="cpu", threads=2, stop_after=IT1_STOP,
                 log=lambda m: print(m, flush=True))
    print("iteration 1 = the first", IT1_STOP, "steps of: layerbench", " ".join(it1))
    it2 = it2_args(args.corpus, work)
    if cli(it2) != 0:
        raise SystemExit(f"`layerbench {' '.join(it2)}` failed")
    for run, ship in (("iter1", IT1_SHIP), ("iter2", IT2_SHIP)):
        for name, folder in ship.items():
            export_fp16(work / run / folder, SHIP / name)
            print(f"shipped {work / run / folder} -> {SHIP / name}")


if __name__ == "__main__":
    main()
