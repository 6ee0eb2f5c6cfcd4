"""Layer-wise CCA (mel, phone, word, per-word embeddings) and cluster MI of one upstream.

Flow: sample the utterances and segments every pending property needs (from alignments
only, no audio) -> ONE pass of the upstream over the union of those utterances
(`bench.extract.forward_batches`), where each batch feeds every property's gatherer for
every layer -> per-layer PWCCA (`bench.cca.layer_score`) or k-means MI -> one result JSON
per property. Properties already done with the same config hash are skipped, so a rerun
only pays for what is missing.

What each property samples and how it scores is its own business (`bench.cca_properties`,
the registry of property names); this module owns the config, the plan, the pass and the files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench import cca_properties as registry
from bench.cca_config import CCAConfig, load_config
from bench.data.manifest import Corpus
from bench.records import CCALayer, CCAResult, upstream_info
from bench.results import UnitOutcome, config_hash, is_done, read_record, result_path, write_record
from bench.types import Upstream


def _corpus_root(corpus: str | os.PathLike | Corpus) -> Path:
    return Path(corpus.root if isinstance(corpus, Corpus) else corpus).resolve()


def _spec(upstream: str | Upstream) -> str:
    """The canonical spec (options included, sorted): the upstream's part of a unit's identity."""
    import upstreams

    return upstreams.canonical(upstream) if isinstance(upstream, str) else upstream.spec


def unit_config(prop: str, cfg: dict[str, Any], upstream: str, corpus_root: Path, seed: int) -> dict[str, Any]:
    """The config a property's result is hashed on: only what changes its numbers."""
    out: dict[str, Any] = {
        "kind": "cca",
        "upstream": upstream,
        "property": prop,
        "corpus": str(corpus_root),
        "corpus_kind": cfg["corpus_kind"],
        "split": cfg["split"],
        "bf16": bool(cfg["batch"]["bf16"]),
        "seed": seed,
    }
    p = registry.get(prop)
    if p.labels:
        out["shuffle_labels"] = bool(cfg["shuffle_labels"])
    for section in p.sections:
        out[section] = cfg[section]
    out.update(p.identity(cfg))
    return out


def plan_cca(
    upstream: str | Upstream,
    corpus: str | os.PathLike | Corpus,
    properties: list[str],
    *,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    out_dir: str | os.PathLike = "runs",
    seed: int = 0,
) -> list[tuple[str, Path, dict[str, Any], str]]:
    """(property, result path, config, config hash) per property; loads no model and no audio."""
    props = registry.expand(properties)
    cfg = load_config(preset, overrides, props)
    root = _corpus_root(corpus)
    spec = _spec(upstream)
    planned = []
    for prop in props:
        config = unit_config(prop, cfg, spec, root, seed)
        planned.append((prop, result_path(out_dir, "cca", spec, prop, seed), config, config_hash(config)))
    return planned


# --------------------------------------------------------------------------- run


def run_cca(
    upstream: str | Upstream,
    corpus: str | os.PathLike | Corpus,
    properties: list[str],
    *,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    out_dir: str | os.PathLike = "runs",
    seed: int = 0,
    device: str = "auto",
    force: bool = False,
    label: str | None = None,
    progress: bool = True,
) -> list[UnitOutcome]:
    """Run every pending property with ONE upstream pass; write one result file per property.

    `upstream` is a spec for `upstreams.load` (or an already-built Upstream, e.g. in tests);
    finished properties with the same config hash are skipped unless `force`.
    """
    from bench.extract import forward_batches, pick_device

    t_start = time.perf_counter()
    planned = plan_cca(upstream, corpus, properties, preset=preset, overrides=overrides,
                       out_dir=out_dir, seed=seed)
    outcomes: dict[str, UnitOutcome] = {}
    todo = []
    for prop, path, config, chash in planned:
        if not force and is_done(path, chash):
            outcomes[prop] = UnitOutcome(path=path, skipped=True, result=read_record(path, CCAResult))
        else:
            todo.append((prop, path, config, chash))
    if todo:
        props = [t[0] for t in todo]
        cfg = load_config(preset, overrides, props)
        typed = CCAConfig.of(cfg)
        if isinstance(corpus, Corpus):
            corp = corpus
        else:
            from bench.data import open_corpus

            corp = open_corpus(corpus, typed.corpus_kind)
        dev = pick_device(device)
        up = _load_upstream(upstream)
        up = up.to(dev) or up
        samples = registry.Samples(cfg, corp, list(up.layers), seed)
        reads = {prop: registry.get(prop).prepare(samples) for prop in props}
        utts = samples.utterances()
        t_pass = time.perf_counter()
        b = typed.batch
        for idx, out, waves in forward_batches(up, [u for _, u in utts], dev, max_seconds=b.max_seconds,
                                               max_size=b.max_size, bf16=b.bf16, audio=True,
                                               desc=f"cca pass {_spec(upstream)}" if progress else False):
            for j, i in enumerate(idx):
                key, utt = utts[i]
                samples.feed(key, utt, waves[j], [h[j] for h in out.hidden], [int(n[j]) for n in out.lengths])
        pass_s = time.perf_counter() - t_pass
        info = upstream_info(up)
        failed: list[Exception] = []
        for prop, path, config, chash in todo:
            t0 = time.perf_counter()
            try:
                per_layer, details = registry.get(prop).score(prop, samples, progress, str(dev))
            except Exception as e:  # score the other properties first: their results are not lost
                e.args = (f"CCA property {prop!r} of {_spec(upstream)}: {e.args[0] if e.args else e}", *e.args[1:])
                failed.append(e)
                continue
            record = CCAResult(
                upstream=_spec(upstream), label=label, property=prop,
                per_layer=[CCALayer.from_json(e, f"CCA property {prop!r}") for e in per_layer], details=details,
                corpus={"path": str(_corpus_root(corp)), "kind": corp.kind, "split": registry.get(prop).split(cfg),
                        "n_utterances": len(reads[prop])},
                upstream_info=info, config=config, config_hash=chash, seed=seed,
                timings={"pass_s": round(pass_s, 3), "pass_shared_with": props, "pass_utterances": len(utts),
                         "score_s": round(time.perf_counter() - t0, 3),
                         "total_s": round(time.perf_counter() - t_start, 3)},
                device=str(dev))
            write_record(path, record)  # read back: the outcome holds what a resumed run would read
            outcomes[prop] = UnitOutcome(path=Path(path), skipped=False, result=read_record(path, CCAResult))
        if failed:
            raise failed[0]
    return [outcomes[p[0]] for p in planned]


def _load_upstream(upstream: str | Upstream) -> Upstream:
    import upstreams

    return upstreams.load(upstream) if isinstance(upstream, str) else upstream
