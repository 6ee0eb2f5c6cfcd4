"""A JSON-able summary of a loaded corpus (what `layerbench corpus info` prints)."""

from __future__ import annotations

from collections import Counter

from bench.data.manifest import Corpus, Utterance


def split_info(utts: list[Utterance]) -> dict:
    """Counts, hours, speakers, label counts and alignment coverage of one split."""
    aligned = [u for u in utts if u.words is not None]
    labels: dict[str, Counter] = {}
    for u in utts:
        for key, value in u.labels.items():
            labels.setdefault(key, Counter())[value] += 1
    speakers = {u.speaker for u in utts if u.speaker}
    seconds = sum(u.duration for u in utts)
    return {
        "utterances": len(utts),
        "seconds": round(seconds, 3),
        "hours": round(seconds / 3600.0, 4),
        "speakers": len(speakers),
        "with_text": sum(1 for u in utts if u.text),
        "labels": {k: dict(sorted(c.items())) for k, c in sorted(labels.items())},
        "alignment": {
            "aligned": len(aligned),
            "coverage": round(len(aligned) / len(utts), 4) if utts else 0.0,
            "words": sum(len(u.words) for u in aligned),
            "phones": sum(len(u.phones or []) for u in aligned),
        },
    }


def corpus_info(corpus: Corpus) -> dict:
    """Per-split summary plus the problems met while loading (skipped examples)."""
    return {
        "kind": corpus.kind,
        "root": str(corpus.root),
        "splits": {name: split_info(utts) for name, utts in corpus.splits.items()},
        "problems": list(corpus.problems),
    }
