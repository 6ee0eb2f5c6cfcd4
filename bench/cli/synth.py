"""`layerbench synth`: write the synthetic corpus (LibriSpeech / Speech Commands / FSC / SLURP layouts)."""

from __future__ import annotations

import argparse

ORDER = 25


def register(sub: argparse._SubParsersAction) -> None:
    from bench.synth.corpora import SIZES

    p = sub.add_parser(
        "synth",
        help="write the offline synthetic corpus (espeak-ng) in the four real layouts",
        description=(
            "Synthesize a small deterministic speech corpus with espeak-ng and write it as "
            "LibriSpeech (with MFA-style TextGrid alignments), Speech Commands v0.01 (+ test set), "
            "Fluent Speech Commands and SLURP, so the real-layout loaders read it unchanged. "
            "Needs the `synth` extra (pip install -e .[synth]). Re-running on a finished folder "
            "with the same size and seed does nothing; an interrupted run is redone."
        ),
    )
    p.add_argument("--out", required=True, help="folder to write the corpora into (created if missing)")
    p.add_argument("--size", default="small", choices=sorted(SIZES),
                   help="tiny (CI, seconds) or small (demo, about 2 hours of audio); default small")
    p.add_argument("--seed", type=int, default=0, help="seed for texts, speakers and noise (default 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel synthesis processes (default: CPU count); the output does not depend on it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.synth.corpora import generate, is_complete, read_info
    from bench.synth.espeak import EspeakUnavailable

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    root = Path(args.out).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root} exists and is not a folder")
    if is_complete(root, args.size, args.seed):
        info = read_info(root)
        print(f"Synthetic corpus already complete in {root} (size {info.size}, seed {info.seed}, "
              f"{sum(info.utterances.values())} utterances, {info.hours:.2f} hours); nothing to do")
        return 0
    try:
        info = generate(root, args.size, args.seed, args.workers, progress=not args.no_progress)
    except EspeakUnavailable as e:
        raise ValueError(str(e)) from None
    print(f"Synthetic corpus written to {root} ({sum(info.utterances.values())} utterances, {info.hours:.2f} hours)")
    return 0
