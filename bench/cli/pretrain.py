"""`layerbench pretrain`: HuBERT-style masked-prediction pre-training on a LibriSpeech-layout corpus."""

from __future__ import annotations

import argparse

ORDER = 27


def register(sub: argparse._SubParsersAction) -> None:
    from bench.pretrain import PretrainConfig

    d = PretrainConfig(corpus="")
    p = sub.add_parser(
        "pretrain",
        help="pre-train a small HuBERT (masked prediction of k-means clusters) on a LibriSpeech-layout corpus",
        description=(
            "HuBERT's recipe at small scale: iteration 1 predicts, for masked frames, k-means clusters "
            "of MFCC frames; iteration 2 (--iteration 2 --teacher DIR) clusters a middle layer of the "
            "iteration-1 model instead. Trains on the corpus's train-* split folders. Writes "
            "<out>/final/ (and <out>/checkpoint-<step>/ with --snapshot-every) as HF folders that load "
            "with --upstream hf:<folder>; the untrained twin is randinit:<arch> with the same seed. "
            "Rerunning the same command resumes from <out>/state.pt."
        ),
    )
    p.add_argument("--corpus", required=True, help="corpus folder holding LibriSpeech/ (or the LibriSpeech folder)")
    p.add_argument("--out", required=True, help="output folder (state.pt, final/, checkpoint-<step>/)")
    p.add_argument("--arch", default=d.arch, help=f"randinit preset or HF config.json (default {d.arch})")
    p.add_argument("--iteration", type=int, default=d.iteration, choices=[1, 2],
                   help="1: MFCC k-means targets; 2: k-means of --teacher's --teacher-layer (default 1)")
    p.add_argument("--teacher", default=None, help="iteration 2: an iteration-1 checkpoint folder")
    p.add_argument("--teacher-layer", type=int, default=None, help="teacher layer to cluster (default: middle)")
    p.add_argument("--init", default=None,
                   help="start from this checkpoint folder's weights instead of the seeded random init")
    p.add_argument("--clusters", type=int, default=d.clusters, help=f"k-means clusters (default {d.clusters})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"utterances per step (default {d.batch_size})")
    p.add_argument("--max-crop-s", type=float, default=d.max_crop_s,
                   help=f"longest crop per utterance in seconds (default {d.max_crop_s})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--mask-prob", type=float, default=d.mask_prob, help=f"masking probability (default {d.mask_prob})")
    p.add_argument("--mask-length", type=int, default=d.mask_length, help=f"mask span in frames (default {d.mask_length})")
    p.add_argument("--unmasked-weight", type=float, default=d.unmasked_weight,
                   help=f"weight of the unmasked-frame loss (default {d.unmasked_weight}; HuBERT: 0)")
    p.add_argument("--precision", default=d.precision, choices=["bf16", "fp32"], help="autocast precision (default bf16)")
    p.add_argument("--splits", default="", help="comma-separated split folders (default: every train-* folder)")
    p.add_argument("--snapshot-every", type=int, default=0, help="also save checkpoint-<step>/ every N steps")
    p.add_argument("--state-every", type=int, default=d.state_every, help=f"write state.pt every N steps (default {d.state_every})")
    p.add_argument("--log-every", type=int, default=d.log_every, help=f"print the loss every N steps (default {d.log_every})")
    p.add_argument("--seed", type=int, default=d.seed, help="init, k-means, batch order, crops, masks (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from bench.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        corpus=args.corpus, arch=args.arch, iteration=args.iteration, teacher=args.teacher,
        teacher_layer=args.teacher_layer, init=args.init, clusters=args.clusters, steps=args.steps,
        batch_size=args.batch_size, max_crop_s=args.max_crop_s, lr=args.lr, mask_prob=args.mask_prob,
        mask_length=args.mask_length, unmasked_weight=args.unmasked_weight, precision=args.precision,
        seed=args.seed, splits=tuple(s for s in args.splits.split(",") if s),
        snapshot_every=args.snapshot_every, state_every=args.state_every, log_every=args.log_every,
    )
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    report = pretrain(cfg, args.out, device=device, threads=args.threads, log=lambda m: print(m, flush=True))
    print(f"Pre-training done: model in {report.final} (load with --upstream hf:{report.final}), "
          f"{len(report.snapshots)} snapshot(s), resumable state in {report.out / 'state.pt'}")
    return 0
