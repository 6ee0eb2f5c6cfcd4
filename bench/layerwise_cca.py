"""Layer-wise CCA (mel, phone, word, per-word embeddings) and cluster MI of one upstream.

Flow: sample the utterances and segments every pending property needs (from alignments
only, no audio) -> ONE pass of the upstream over the union of those utterances
(`bench.extract.forward_batches`), where each batch feeds every property's gatherer for
every layer -> per-layer PWCCA (`bench.cca.layer_score`) or k-means MI -> one result JSON
per property. Properties already done with the same config hash are skipped, so a rerun
only pays for what is missing.

Property names: `mel`, `phone`, `word`, `mi_phone`, `mi_word`, `glove:<name-or-path>`;
`mi` is shorthand for both MI properties (each gets its own result file).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bench.config import CONFIG_DIR, ConfigError, load_preset_config
from bench.data.manifest import Corpus, Utterance
from bench.results import UnitOutcome, config_hash, is_done, read_result, result_path, write_result
from bench.types import Upstream

PROPERTIES = ("mel", "phone", "word", "mi_phone", "mi_word")
ALIASES = {"mi": ("mi_phone", "mi_word")}
EMBED_PREFIX = "glove:"
CONFIG_FILE = CONFIG_DIR / "cca.yaml"

# Which config sections decide each property's numbers (and so its hash); a change to the
# word caps does not invalidate a finished mel result.
_SECTIONS = {
    "mel": ("mel", "cca"),
    "phone": ("phone", "cca"),
    "word": ("word", "cca"),
    "embed": ("word", "cca"),
    "mi_phone": ("phone", "mi"),
    "mi_word": ("word", "mi", "cca"),  # the word list's minimum count is max(min_count, cca.num_parts)
}


# --------------------------------------------------------------------------- config


def load_config(preset: str = "default", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`default` of configs/cca.yaml, then the named preset, then the overrides (unknown keys are errors)."""
    return load_preset_config(CONFIG_FILE, preset, overrides, "CCA")


def expand_properties(properties: Sequence[str] | str) -> list[str]:
    """Validate and expand property names (`mi` -> mi_phone, mi_word), keeping order, no repeats."""
    if isinstance(properties, str):
        properties = [p for p in properties.split(",")]
    out: list[str] = []
    for raw in properties:
        p = raw.strip()
        if p in ALIASES:
            names = list(ALIASES[p])
        elif p in PROPERTIES:
            names = [p]
        elif p.startswith(EMBED_PREFIX) and len(p) > len(EMBED_PREFIX):
            names = [p]
        else:
            valid = ", ".join([*PROPERTIES, *ALIASES, EMBED_PREFIX + "<name-or-path>"])
            raise ConfigError(f"unknown CCA property {raw!r}; valid properties: {valid}")
        out.extend(n for n in names if n not in out)
    if not out:
        raise ConfigError("no CCA property given; valid properties: " + ", ".join([*PROPERTIES, *ALIASES]))
    return out


def embedding_file(prop: str, cfg: dict[str, Any]) -> Path:
    """The vector file of `glove:<name>` (a key of `embeddings`) or `glove:<path>`."""
    ref = prop[len(EMBED_PREFIX):]
    named = cfg.get("embeddings") or {}
    path = Path(named[ref]) if ref in named else Path(ref)
    if not path.is_file():
        hint = f"; named embeddings: {', '.join(named)}" if named else ""
        raise FileNotFoundError(f"property {prop!r}: word-vector file {path} does not exist{hint}")
    return path.resolve()


def _kind(prop: str) -> str:
    return "embed" if prop.startswith(EMBED_PREFIX) else prop


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
    if prop != "mel":
        out["shuffle_labels"] = bool(cfg["shuffle_labels"])
    for section in _SECTIONS[_kind(prop)]:
        out[section] = cfg[section]
    if prop.startswith(EMBED_PREFIX):
        path = embedding_file(prop, cfg)
        st = path.stat()
        out["embedding_file"] = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
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
    cfg = load_config(preset, overrides)
    root = _corpus_root(corpus)
    spec = _spec(upstream)
    planned = []
    for prop in expand_properties(properties):
        config = unit_config(prop, cfg, spec, root, seed)
        planned.append((prop, result_path(out_dir, "cca", spec, prop, seed), config, config_hash(config)))
    return planned


# --------------------------------------------------------------------------- sampling


def _sample_utterances(utts: dict[Hashable, Utterance], n: int, seed: Sequence[int]) -> list[Hashable]:
    keys = sorted(utts, key=str)
    if n >= len(keys):
        return keys
    rng = np.random.default_rng(list(seed))
    return [keys[i] for i in sorted(rng.choice(len(keys), size=n, replace=False))]


class _Samples:
    """The segment and utterance samples of every pending property, built before the pass."""

    def __init__(self, props: list[str], cfg: dict[str, Any], corpus: Corpus, layers, seed: int):
        from bench import views
        from bench.data.arpabet import normalize_phone

        split = cfg["split"]
        # Keys are (split, id): when MI trains on the evaluation split, each file is read once.
        self.eval_utts = {(split, u.id): u for u in corpus.split(split)}
        kinds = {_kind(p) for p in props}
        self.mel_keys: list[Hashable] = []
        self.frames: views.FrameGatherer | None = None
        self.segments: dict[str, views.SegmentGatherer] = {}
        self.sets: dict[str, list[list[int]]] = {}  # sample sets (indices into a gatherer's samples)
        self.vocab: list[str] = []

        if "mel" in kinds:
            m = cfg["mel"]
            self.mel_keys = _sample_utterances(self.eval_utts, int(m["num_utterances"]), [seed, 0])
            recipe = views.MelRecipe(n_mels=m["n_mels"], n_fft=m["n_fft"], win_length=m["win_length"],
                                     hop_length=m["hop_length"], f_min=float(m["f_min"]), top_db=float(m["top_db"]),
                                     peak_normalize=bool(m["peak_normalize"]), preemphasis=float(m["preemphasis"]))
            if recipe.hop_length != views.MEL_HOP:
                raise ConfigError(f"mel.hop_length must be {views.MEL_HOP} (10 ms), got {recipe.hop_length}")
            seconds = sum(self.eval_utts[k].duration for k in self.mel_keys)
            keep = views.FrameGatherer.keep_fractions(layers, seconds, m["max_frames"])
            self.frames = views.FrameGatherer(layers, keep, seed, views.LogMel(recipe))
        if kinds & {"phone", "mi_phone"}:
            pool = views.phone_pool(self.eval_utts, normalize_phone)
            _need_pool(pool, "phone", split)
            samples, self.sets["phone"] = views.sample_segment_sets(
                pool, sorted(pool), int(cfg["phone"]["per_label"]), [seed, 1], int(cfg["cca"]["sample_sets"]))
            self.segments["phone"] = views.SegmentGatherer(samples, layers, bool(cfg["phone"]["middle_third"]))
        if kinds & {"word", "embed", "mi_word"}:
            w = cfg["word"]
            pool = views.word_pool(self.eval_utts)
            _need_pool(pool, "word", split)
            # A word must reach every cross-validation part, so it needs num_parts segments.
            min_count = max(int(w["min_count"]), int(cfg["cca"]["num_parts"]))
            self.vocab = views.frequent_labels(pool, int(w["num_words"]), min_count)
            if len(self.vocab) < 2:
                raise ValueError(f"split {split!r} has {len(self.vocab)} word(s) with at least {min_count} "
                                 f"occurrences (max of word.min_count and cca.num_parts); CCA-word needs 2")
            samples, self.sets["word"] = views.sample_segment_sets(
                pool, self.vocab, int(w["per_label"]), [seed, 2], int(cfg["cca"]["sample_sets"]))
            self.segments["word"] = views.SegmentGatherer(samples, layers, False)
        self.train_utts: dict[Hashable, Utterance] = {}
        if kinds & {"mi_phone", "mi_word"}:
            mi = cfg["mi"]
            train = {(mi["train_split"], u.id): u for u in corpus.split(mi["train_split"])}
            if mi["train_utterances"]:  # bound the pass: draw training segments from a subset
                train = {k: train[k] for k in _sample_utterances(train, int(mi["train_utterances"]), [seed, 5])}
            self.train_utts = train
            if "mi_phone" in kinds:
                pool = views.phone_pool(self.train_utts, normalize_phone)
                _need_pool(pool, "phone", mi["train_split"])
                samples = views.sample_segments(pool, sorted(pool), list(mi["train_per_phone"]), [seed, 3])
                self.segments["mi_phone_train"] = views.SegmentGatherer(samples, layers,
                                                                        bool(cfg["phone"]["middle_third"]))
            if "mi_word" in kinds:
                pool = views.word_pool(self.train_utts)
                _need_pool(pool, "word", mi["train_split"])
                samples = views.sample_segments(pool, self.vocab, list(mi["train_per_word"]), [seed, 4])
                self.segments["mi_word_train"] = views.SegmentGatherer(samples, layers, False)

    def utterances(self) -> list[tuple[Hashable, Utterance]]:
        """The union of all utterances any gatherer needs, in a fixed order."""
        keys = set(self.mel_keys)
        for g in self.segments.values():
            keys |= g.keys
        every = {**self.eval_utts, **self.train_utts}
        return [(k, every[k]) for k in sorted(keys, key=str)]


def _need_pool(pool: dict, tier: str, split: str) -> None:
    if not pool:
        raise ValueError(f"split {split!r} has no {tier} alignments; CCA-{tier} and MI need "
                         f"{tier} segments (MFA TextGrids or the synthetic corpus)")


# --------------------------------------------------------------------------- scoring


def _cca_layers(view: Callable[[int], tuple[Any, Any]], labels: Sequence[Any] | None, layers,
                seed: int, cfg: dict[str, Any], desc: str, progress: bool, device: str) -> list[dict[str, Any]]:
    """PWCCA of every layer: `view(li)` gives (layer rows, other view rows) for layer number li,
    either one sample set (arrays, `labels` a list of str) or several (lists of arrays, `labels`
    a list of lists); the layer's score is the mean test score over all sets' splits."""
    from bench import cca

    out = []
    for li, spec in enumerate(tqdm(layers, desc=desc, disable=not progress, leave=False)):
        x, y = view(li)
        many = isinstance(x, list)
        xs = [np.asarray(a, np.float64) for a in x] if many else np.asarray(x, np.float64)
        ys = [np.asarray(a, np.float64) for a in y] if many else np.asarray(y, np.float64)
        res = cca.layer_score(xs, ys, labels=labels, seed=seed,
                              num_parts=int(cfg["cca"]["num_parts"]), num_pairs=int(cfg["cca"]["num_pairs"]),
                              device=device)
        out.append({"layer": spec.index, "name": spec.name, "stride": spec.stride,
                    "score": float(res["score"]), "score_std": float(res["score_std"]), "splits": res["splits"],
                    "n_samples": int(len(x[0]) if many else len(x)), "n_sample_sets": len(x) if many else 1})
    return out


def _score_property(prop: str, s: _Samples, cfg: dict[str, Any], layers, seed: int,
                    progress: bool, device: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-layer entries and property details (sample counts) for one property."""
    from bench import views

    desc = f"{prop} layers"
    if prop == "mel":
        fg = s.frames
        per_layer = _cca_layers(fg.layer, None, layers, seed, cfg, desc, progress, device)
        return per_layer, {"n_utterances": fg.n_utterances, "keep_fraction": {str(k): v for k, v in fg.keep.items()}}
    if prop in ("phone", "word"):
        sets, skipped, rare = [], 0, set()  # per sample set: (per-layer rows, one-hot view, labels)
        for r, subset in enumerate(s.sets[prop]):
            xs, labels, n_skipped = s.segments[prop].result(subset)
            keep, dropped = _labels_in_every_part(labels, cfg)
            skipped, rare = max(skipped, n_skipped), rare | set(dropped)
            labels = _maybe_shuffled([labels[i] for i in keep], cfg, seed + r)
            sets.append(([x[keep] for x in xs], views.one_hot(labels)[0], labels))
        per_layer = _cca_layers(lambda li: ([st[0][li] for st in sets], [st[1] for st in sets]),
                                [st[2] for st in sets], layers, seed, cfg, desc, progress, device)
        return per_layer, {"n_segments": len(sets[0][2]), "n_sample_sets": len(sets),
                           "n_skipped_no_frames": skipped, "n_classes": len(set(sets[0][2])),
                           "rare_labels_dropped": sorted(rare)}
    if prop.startswith(EMBED_PREFIX):
        from bench.embeddings import read_word_vectors

        path = embedding_file(prop, cfg)
        xs, labels, skipped = s.segments["word"].result(s.sets["word"][0])
        vectors = read_word_vectors(path, words=set(labels))
        keep = [i for i, w in enumerate(labels) if w in vectors]
        sub, rare = _labels_in_every_part([labels[i] for i in keep], cfg)
        keep = [keep[i] for i in sub]
        missing = sorted(set(labels) - set(vectors))
        if len({labels[i] for i in keep}) < 2:
            raise ValueError(f"property {prop!r}: only {len({labels[i] for i in keep})} of the {len(set(labels))} "
                             f"sampled words are in {path}")
        kept_labels = _maybe_shuffled([labels[i] for i in keep], cfg, seed)
        raw = np.stack([vectors[w] for w in kept_labels])
        y = _full_rank_word_view(raw, len(set(kept_labels)))
        per_layer = _cca_layers(lambda li: (xs[li][keep], y), kept_labels, layers, seed, cfg, desc, progress, device)
        return per_layer, {"file": str(path), "n_segments": len(keep), "n_skipped_no_frames": skipped,
                           "n_words": len(set(kept_labels)), "n_missing_words": len(missing),
                           "n_missing_segments": sum(w not in vectors for w in labels), "missing_words": missing[:50],
                           "rare_labels_dropped": rare, "vector_dims_in_file": int(raw.shape[1]),
                           "vector_dims_used": int(y.shape[1])}
    if prop in ("mi_phone", "mi_word"):
        from bench.mi import cluster_mi

        tier = prop[3:]
        mi = cfg["mi"]
        x_tr, _, skipped_tr = s.segments[f"{prop}_train"].result()
        x_ev, labels_ev, skipped_ev = s.segments[tier].result(s.sets[tier][0])
        labels_ev = _maybe_shuffled(labels_ev, cfg, seed)
        per_layer = []
        for li, spec in enumerate(tqdm(layers, desc=desc, disable=not progress, leave=False)):
            r = cluster_mi(x_tr[li], x_ev[li], labels_ev, k=int(mi[f"k_{tier}"]), seed=seed,
                           min_per_cluster=int(mi["min_per_cluster"]), batch_size=int(mi["batch_size"]),
                           max_iter=int(mi["max_iter"]), n_init=int(mi["n_init"]))
            per_layer.append({"layer": spec.index, "name": spec.name, "stride": spec.stride, "score": r.score,
                              "splits": [r.as_dict()], "n_samples": r.n_eval})
        return per_layer, {"n_train": len(x_tr[0]) if x_tr else 0, "n_eval": len(labels_ev),
                           "n_skipped_no_frames": skipped_tr + skipped_ev, "train_split": mi["train_split"]}
    raise ConfigError(f"unknown CCA property {prop!r}")


def _full_rank_word_view(y: np.ndarray, n_words: int) -> np.ndarray:
    """Per-word vectors in at most n_words - 1 dimensions (their principal axes), when needed.

    Rows that repeat n_words distinct vectors span at most n_words - 1 centred dimensions;
    with fewer words than vector dimensions (300-d GloVe on a small corpus) the view is
    singular in every part. Rotating onto the principal axes that carry variance keeps the
    same subspace, so the canonical correlations are unchanged, and makes it full rank.
    """
    if y.shape[1] < n_words:
        return y
    centred = y - y.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    rank = int(np.sum(sv > sv[0] * 1e-10)) if len(sv) and sv[0] > 0 else 0
    rank = max(1, min(rank, n_words - 1))
    return y @ vt[:rank].T


def _labels_in_every_part(labels: Sequence[str], cfg: dict[str, Any]) -> tuple[list[int], list[str]]:
    """Rows whose label has at least `cca.num_parts` segments, and the labels dropped.

    The stratified parts deal each label round-robin, so only such labels reach every part;
    a part missing a class makes its one-hot covariance singular and its score undefined.
    """
    need = int(cfg["cca"]["num_parts"])
    counts = Counter(labels)
    rare = sorted(k for k, c in counts.items() if c < need)
    return [i for i, w in enumerate(labels) if counts[w] >= need], rare


def _maybe_shuffled(labels: list[str], cfg: dict[str, Any], seed: int) -> list[str]:
    """The labels, or (control run, `shuffle_labels: true`) a seeded permutation of them.

    The shuffled control keeps the label distribution and the layer's rows but breaks their
    pairing: the score a layer gets there is what chance alone gives at this sample size.
    """
    if not cfg["shuffle_labels"]:
        return labels
    order = np.random.default_rng([seed, 99]).permutation(len(labels))
    return [labels[i] for i in order]


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
            outcomes[prop] = UnitOutcome(path=path, skipped=True, result=read_result(path))
        else:
            todo.append((prop, path, config, chash))
    if todo:
        cfg = load_config(preset, overrides)
        if isinstance(corpus, Corpus):
            corp = corpus
        else:
            from bench.data import open_corpus

            corp = open_corpus(corpus, cfg["corpus_kind"])
        dev = pick_device(device)
        up = _load_upstream(upstream)
        up = up.to(dev) or up
        layers = list(up.layers)
        props = [t[0] for t in todo]
        samples = _Samples(props, cfg, corp, layers, seed)
        utts = samples.utterances()
        mel_number = {k: i for i, k in enumerate(samples.mel_keys)}
        t_pass = time.perf_counter()
        b = cfg["batch"]
        for idx, out, waves in forward_batches(up, [u for _, u in utts], dev, max_seconds=float(b["max_seconds"]),
                                               max_size=int(b["max_size"]), bf16=bool(b["bf16"]), audio=True,
                                               desc=f"cca pass {_spec(upstream)}" if progress else False):
            for j, i in enumerate(idx):
                key, utt = utts[i]
                hidden = [h[j] for h in out.hidden]
                lengths = [int(n[j]) for n in out.lengths]
                if samples.frames is not None and key in mel_number:
                    samples.frames.add(mel_number[key], waves[j], hidden, lengths)
                for g in samples.segments.values():
                    g.add(key, hidden, lengths)
        pass_s = time.perf_counter() - t_pass
        info = {"revision": getattr(up, "revision", None), "num_params": getattr(up, "num_params", None),
                "padding": getattr(up, "padding", None)}
        failed: list[Exception] = []
        for prop, path, config, chash in todo:
            t0 = time.perf_counter()
            try:
                per_layer, details = _score_property(prop, samples, cfg, layers, seed, progress, str(dev))
            except Exception as e:  # score the other properties first: their results are not lost
                e.args = (f"CCA property {prop!r} of {_spec(upstream)}: {e.args[0] if e.args else e}", *e.args[1:])
                failed.append(e)
                continue
            split = cfg["split"] if not prop.startswith("mi_") else f"{cfg['mi']['train_split']}->{cfg['split']}"
            payload = {
                "kind": "cca",
                "upstream": _spec(upstream),
                "label": label,
                "property": prop,
                "per_layer": per_layer,
                "details": details,
                "corpus": {"path": str(_corpus_root(corp)), "kind": corp.kind, "split": split,
                           "n_utterances": _n_utts(prop, samples)},
                "upstream_info": info,
                "config": config,
                "config_hash": chash,
                "seed": seed,
                "timings": {"pass_s": round(pass_s, 3), "pass_shared_with": props,
                            "pass_utterances": len(utts), "score_s": round(time.perf_counter() - t0, 3),
                            "total_s": round(time.perf_counter() - t_start, 3)},
                "device": str(dev),
            }
            write_result(path, payload)
            outcomes[prop] = UnitOutcome(path=Path(path), skipped=False, result=read_result(path))
        if failed:
            raise failed[0]
    return [outcomes[p[0]] for p in planned]


def _n_utts(prop: str, s: _Samples) -> int:
    if prop == "mel":
        return len(s.mel_keys)
    tier = "phone" if prop in ("phone", "mi_phone") else "word"
    keys = set(s.segments[tier].keys)
    if prop.startswith("mi_"):
        keys |= s.segments[f"{prop}_train"].keys
    return len(keys)


def _load_upstream(upstream: str | Upstream) -> Upstream:
    import upstreams

    return upstreams.load(upstream) if isinstance(upstream, str) else upstream
