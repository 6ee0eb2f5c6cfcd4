"""`layerbench corpus info PATH`: what corpora a folder holds, as the loaders see them."""

from __future__ import annotations

import argparse
import json

ORDER = 20
MAX_SHOWN = 24  # label values printed per key (most frequent first); --json has them all


def _print_text(path: str, infos: dict[str, dict]) -> None:
    for kind, info in infos.items():
        print(f"{kind}: {info['root']}")
        for name, s in info["splits"].items():
            print(f"  {name}: {s['utterances']} utterances, {s['hours']:.3f} h, {s['speakers']} speakers")
            for key, counts in s["labels"].items():
                top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_SHOWN]
                more = f", ... {len(counts) - MAX_SHOWN} more" if len(counts) > MAX_SHOWN else ""
                print(f"    {key} ({len(counts)} labels): " + ", ".join(f"{v}={n}" for v, n in top) + more)
            a = s["alignment"]
            if a["aligned"] or kind == "librispeech":
                print(f"    alignments: {a['aligned']}/{s['utterances']} utterances ({100 * a['coverage']:.1f}%), "
                      f"{a['words']} words, {a['phones']} phones")
        if info["problems"]:
            print(f"  problems ({len(info['problems'])} skipped):")
            for p in info["problems"][:10]:
                print(f"    {p}")
            if len(info["problems"]) > 10:
                print(f"    ... and {len(info['problems']) - 10} more")
        else:
            print("  problems: none")


def run_info(args: argparse.Namespace) -> int:
    from bench.data import corpus_info, detect_kinds, open_corpus

    found = detect_kinds(args.path)
    if args.kind:
        found = {k: v for k, v in found.items() if k == args.kind}
    if not found:
        what = f"{args.kind} corpus" if args.kind else "corpus"
        raise FileNotFoundError(f"no {what} found under {args.path}")
    infos = {}
    for kind in found:
        options = {"alignments": args.alignments} if kind == "librispeech" and args.alignments else {}
        corpus = open_corpus(args.path, kind, skip_bad=args.skip_bad, **options)
        infos[kind] = corpus_info(corpus)
    if args.json:
        print(json.dumps({"path": str(args.path), "corpora": infos}, indent=2))
    else:
        _print_text(args.path, infos)
        print(f"summarised {len(infos)} corpus(es) under {args.path} ({', '.join(infos)}); nothing written")
    return 0


def register(subparsers) -> None:
    from bench.data.corpus import KINDS

    p = subparsers.add_parser("corpus", help="inspect corpora on disk")
    sub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="detect the corpus kind(s) under PATH and summarise splits, labels, alignments")
    info.add_argument("path", metavar="PATH", help="a corpus folder, or a folder holding several (the synthetic root)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    info.add_argument("--kind", choices=KINDS,
                      help="only this corpus kind")
    info.add_argument("--alignments", metavar="DIR", help="LibriSpeech TextGrid folder (default: librispeech_alignments/ beside it)")
    info.add_argument("--skip-bad", action="store_true", help="skip bad examples (listed under problems) instead of failing")
    info.set_defaults(func=run_info)
