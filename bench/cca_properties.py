"""CCA properties: what each layer is measured against, registered by name.

`BUILTIN` is the one list of property names (its order is the order of every report);
`ALIASES` expands shorthands (`mi`), `glove:<name-or-path>` names a file of word vectors,
and `py:package.module:Class` is a property of your own, imported and checked against the
contract below. `bench.layerwise_cca` plans, runs one upstream pass and writes results;
a property only says three things (the `Property` contract):

- its config: `sections` of configs/cca.yaml whose values decide its numbers (they are
  hashed into its result's config, so changing the word caps leaves a mel result valid),
  plus `defaults` for sections of its own (a user property's knobs, overridable with
  `--set section.key=value`);
- how it samples: `prepare(samples)` asks the shared `Samples` for the gatherers it needs
  before the ONE upstream pass (phone segments serve CCA-phone and MI-phone alike; a new
  property may bring its own gatherer) and returns the utterance keys it reads;
- how it scores: `score(name, samples, progress, device)` turns the filled gatherers into
  per-layer entries (`layer`, `name`, `stride`, `score`, ...) and a dict of details.
"""

from __future__ import annotations

import abc
import inspect
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.config import ConfigError, suggest
from bench.data.manifest import Corpus, Utterance
from bench.plugins import PREFIX, import_object, missing_members
from bench.types import LayerSpec

EMBED_PREFIX = "glove:"


# --------------------------------------------------------------------------- the shared sample


class Gatherer(Protocol):
    """Collects what a property needs from the one pass, utterance by utterance."""

    @property
    def keys(self) -> set[Hashable]: ...

    def add(self, key: Hashable, utt: Utterance, wave: np.ndarray, hidden: Sequence[torch.Tensor],
            lengths: Sequence[int]) -> None:
        """One utterance of the pass: its manifest entry, its 16 kHz samples (as the upstream saw
        them), `hidden[l]` [T_l, D_l] of layer l and `lengths[l]` its valid frames."""


def sample_utterances(utts: dict[Hashable, Utterance], n: int, seed: Sequence[int]) -> list[Hashable]:
    """`n` keys of `utts` drawn without replacement (all of them when there are fewer), seeded."""
    keys = sorted(utts, key=str)
    if n >= len(keys):
        return keys
    rng = np.random.default_rng(list(seed))
    return [keys[i] for i in sorted(rng.choice(len(keys), size=n, replace=False))]


class MelFrames:
    """The CCA-mel sample: `keys` utterances whose (layer frame, mel frame) rows a FrameGatherer keeps."""

    def __init__(self, keys: list[Hashable], frames):
        self.number = {k: i for i, k in enumerate(keys)}
        self.frames = frames

    @property
    def keys(self) -> set[Hashable]:
        return set(self.number)

    def add(self, key, utt, wave, hidden, lengths) -> None:
        if key in self.number:
            self.frames.add(self.number[key], wave, hidden, lengths)


class Segments:
    """Sampled segments of one tier (a SegmentGatherer), their sample sets and (words) the vocabulary."""

    def __init__(self, gatherer, sets: list[list[int]] | None = None, vocab: list[str] | None = None):
        self.gatherer, self.sets, self.vocab = gatherer, sets or [], vocab or []

    @property
    def keys(self) -> set[Hashable]:
        return self.gatherer.keys

    def add(self, key, utt, wave, hidden, lengths) -> None:
        self.gatherer.add(key, hidden, lengths)


class Samples:
    """The sample of one CCA run: the evaluation split and every gatherer the pending properties
    asked for, each built once (`gatherer(name, build)`) and fed by the one upstream pass.

    Utterance keys are (split, id): when MI trains on the evaluation split each file is read once.
    """

    def __init__(self, cfg: dict[str, Any], corpus: Corpus, layers: Sequence[LayerSpec], seed: int):
        from bench.cca_config import CCAConfig

        # `cfg`: the resolved mapping (a user property reads its own section there); `config`:
        # the typed view of the built-in sections.
        self.cfg, self.corpus, self.layers, self.seed = cfg, corpus, list(layers), seed
        self.config = CCAConfig.of(cfg)
        self.split = self.config.split
        self.eval_utts: dict[Hashable, Utterance] = {(self.split, u.id): u for u in corpus.split(self.split)}
        self.train_utts: dict[Hashable, Utterance] = {}
        self.gatherers: dict[str, Gatherer] = {}

    def gatherer(self, name: str, build: Callable[[], Gatherer]) -> Any:
        """The gatherer called `name`, built on first request (so properties share it)."""
        if name not in self.gatherers:
            self.gatherers[name] = build()
        return self.gatherers[name]

    def utterances(self) -> list[tuple[Hashable, Utterance]]:
        """The union of all utterances any gatherer needs, in a fixed order."""
        keys: set[Hashable] = set()
        for g in self.gatherers.values():
            keys |= g.keys
        every = {**self.eval_utts, **self.train_utts}
        return [(k, every[k]) for k in sorted(keys, key=str)]

    def feed(self, key: Hashable, utt: Utterance, wave: np.ndarray, hidden: Sequence[torch.Tensor],
             lengths: Sequence[int]) -> None:
        for g in self.gatherers.values():
            g.add(key, utt, wave, hidden, lengths)

    # The built-in samplers; a new property may use them or register its own gatherer.

    def mel(self) -> MelFrames:
        def build() -> MelFrames:
            from bench import views

            m = self.config.mel
            keys = sample_utterances(self.eval_utts, m.num_utterances, [self.seed, 0])
            seconds = sum(self.eval_utts[k].duration for k in keys)
            keep = views.FrameGatherer.keep_fractions(self.layers, seconds, m.max_frames)
            return MelFrames(keys, views.FrameGatherer(self.layers, keep, self.seed, views.LogMel(m)))

        return self.gatherer("mel", build)

    def segments(self, tier: str) -> Segments:
        """Evaluation-split segments of `tier` ("phone" or "word"), in `cca.sample_sets` sample sets."""
        def build() -> Segments:
            from bench import views
            from bench.data.arpabet import normalize_phone

            cfg, seed, sets_n = self.config, self.seed, self.config.cca.sample_sets
            if tier == "phone":
                pool = views.phone_pool(self.eval_utts, normalize_phone)
                _need_pool(pool, "phone", self.split)
                samples, sets = views.sample_segment_sets(pool, sorted(pool), cfg.phone.per_label, [seed, 1], sets_n)
                return Segments(views.SegmentGatherer(samples, self.layers, cfg.phone.middle_third), sets)
            w = cfg.word
            pool = views.word_pool(self.eval_utts)
            _need_pool(pool, "word", self.split)
            # A word must reach every cross-validation part, so it needs num_parts segments.
            min_count = max(w.min_count, cfg.cca.num_parts)
            vocab = views.frequent_labels(pool, w.num_words, min_count)
            if len(vocab) < 2:
                raise ValueError(f"split {self.split!r} has {len(vocab)} word(s) with at least {min_count} "
                                 f"occurrences (max of word.min_count and cca.num_parts); CCA-word needs 2")
            samples, sets = views.sample_segment_sets(pool, vocab, w.per_label, [seed, 2], sets_n)
            return Segments(views.SegmentGatherer(samples, self.layers, False), sets, vocab)

        return self.gatherer(tier, build)

    def train_segments(self, tier: str) -> Segments:
        """MI's k-means training segments of `tier`, drawn from `mi.train_split`."""
        def build() -> Segments:
            from bench import views
            from bench.data.arpabet import normalize_phone

            mi, seed = self.config.mi, self.seed
            if not self.train_utts:
                train = {(mi.train_split, u.id): u for u in self.corpus.split(mi.train_split)}
                if mi.train_utterances:  # bound the pass: draw training segments from a subset
                    train = {k: train[k] for k in sample_utterances(train, mi.train_utterances, [seed, 5])}
                self.train_utts = train
            if tier == "phone":
                pool = views.phone_pool(self.train_utts, normalize_phone)
                _need_pool(pool, "phone", mi.train_split)
                samples = views.sample_segments(pool, sorted(pool), list(mi.train_per_phone), [seed, 3])
                return Segments(views.SegmentGatherer(samples, self.layers, self.config.phone.middle_third))
            pool = views.word_pool(self.train_utts)
            _need_pool(pool, "word", mi.train_split)
            samples = views.sample_segments(pool, self.segments("word").vocab, list(mi.train_per_word), [seed, 4])
            return Segments(views.SegmentGatherer(samples, self.layers, False))

        return self.gatherer(f"mi_{tier}_train", build)


def _need_pool(pool: dict, tier: str, split: str) -> None:
    if not pool:
        raise ValueError(f"split {split!r} has no {tier} alignments; CCA-{tier} and MI need "
                         f"{tier} segments (MFA TextGrids or the synthetic corpus)")


# --------------------------------------------------------------------------- scoring helpers


def cca_layers(view: Callable[[int], tuple[Any, Any]], labels: Sequence[Any] | None, samples: Samples,
               desc: str, progress: bool, device: str) -> list[dict[str, Any]]:
    """PWCCA of every layer: `view(li)` gives (layer rows, other view rows) for layer number li,
    either one sample set (arrays, `labels` a list of str or None) or several (lists of arrays,
    `labels` a list of lists); the layer's score is the mean test score over all sets' splits."""
    from bench import cca

    cv = samples.config.cca
    out = []
    for li, spec in enumerate(tqdm(samples.layers, desc=desc, disable=not progress, leave=False)):
        x, y = view(li)
        many = isinstance(x, list)
        xs = [np.asarray(a, np.float64) for a in x] if many else np.asarray(x, np.float64)
        ys = [np.asarray(a, np.float64) for a in y] if many else np.asarray(y, np.float64)
        res = cca.layer_score(xs, ys, labels=labels, seed=samples.seed, num_parts=cv.num_parts,
                              num_pairs=cv.num_pairs, device=device)
        out.append({"layer": spec.index, "name": spec.name, "stride": spec.stride,
                    "score": float(res["score"]), "score_std": float(res["score_std"]), "splits": res["splits"],
                    "n_samples": int(len(x[0]) if many else len(x)), "n_sample_sets": len(x) if many else 1})
    return out


def labels_in_every_part(labels: Sequence[str], need: int) -> tuple[list[int], list[str]]:
    """Rows whose label has at least `need` (`cca.num_parts`) segments, and the labels dropped.

    The stratified parts deal each label round-robin, so only such labels reach every part;
    a part missing a class makes its one-hot covariance singular and its score undefined.
    """
    counts = Counter(labels)
    rare = sorted(k for k, c in counts.items() if c < need)
    return [i for i, w in enumerate(labels) if counts[w] >= need], rare


def maybe_shuffled(labels: list[str], shuffle: bool, seed: int) -> list[str]:
    """The labels, or (control run, `shuffle_labels: true`) a seeded permutation of them.

    The shuffled control keeps the label distribution and the layer's rows but breaks their
    pairing: the score a layer gets there is what chance alone gives at this sample size.
    """
    if not shuffle:
        return labels
    order = np.random.default_rng([seed, 99]).permutation(len(labels))
    return [labels[i] for i in order]


def full_rank_word_view(y: np.ndarray, n_words: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- the contract


class Property(abc.ABC):
    """Base of every property; a user property subclasses it and fills `prepare` and `score`
    (abstract: a subclass without them fails when it is loaded, not mid-run)."""

    sections: tuple[str, ...] = ()  # config sections whose values decide the numbers (hashed)
    labels: bool = True  # compared against labels: `shuffle_labels` applies (and is hashed)
    defaults: dict[str, dict[str, Any]] = {}  # sections of its own: name -> default values

    def identity(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """Further facts its numbers depend on (hashed), e.g. a vector file's size and mtime."""
        return {}

    def split(self, cfg: dict[str, Any]) -> str:
        """The split(s) it reads, as written in the result's `corpus.split`."""
        return cfg["split"]

    @abc.abstractmethod
    def prepare(self, samples: Samples) -> set[Hashable]:
        """Ask `samples` for the gatherers it needs; return the utterance keys it reads."""

    @abc.abstractmethod
    def score(self, name: str, samples: Samples, progress: bool, device: str) -> tuple[list[dict], dict]:
        """(one entry per layer of `samples.layers`, details) after the pass."""


CONTRACT = {"sections": "attribute", "labels": "attribute", "defaults": "attribute",
            **{m: "method" for m in ("identity", "split", "prepare", "score")}}


class MelCCA(Property):
    """CCA-mel: layer frames against the paired log-mel frames of sampled utterances."""

    sections = ("mel", "cca")
    labels = False

    def prepare(self, samples):
        return samples.mel().keys

    def score(self, name, samples, progress, device):
        fg = samples.mel().frames
        per_layer = cca_layers(fg.layer, None, samples, f"{name} layers", progress, device)
        return per_layer, {"n_utterances": fg.n_utterances, "keep_fraction": {str(k): v for k, v in fg.keep.items()}}


class LabelCCA(Property):
    """CCA-phone / CCA-word: segment means against one-hot labels, on every sample set."""

    def __init__(self, tier: str):
        self.tier = tier
        self.sections = (tier, "cca")

    def prepare(self, samples):
        return samples.segments(self.tier).keys

    def score(self, name, samples, progress, device):
        from bench import views

        seg = samples.segments(self.tier)
        cfg, seed = samples.config, samples.seed
        sets, skipped, rare = [], 0, set()  # per sample set: (per-layer rows, one-hot view, labels)
        for r, subset in enumerate(seg.sets):
            xs, labels, n_skipped = seg.gatherer.result(subset)
            keep, dropped = labels_in_every_part(labels, cfg.cca.num_parts)
            skipped, rare = max(skipped, n_skipped), rare | set(dropped)
            labels = maybe_shuffled([labels[i] for i in keep], cfg.shuffle_labels, seed + r)
            sets.append(([x[keep] for x in xs], views.one_hot(labels)[0], labels))
        per_layer = cca_layers(lambda li: ([st[0][li] for st in sets], [st[1] for st in sets]),
                               [st[2] for st in sets], samples, f"{name} layers", progress, device)
        return per_layer, {"n_segments": len(sets[0][2]), "n_sample_sets": len(sets),
                           "n_skipped_no_frames": skipped, "n_classes": len(set(sets[0][2])),
                           "rare_labels_dropped": sorted(rare)}


class WordVectors(Property):
    """`glove:<name-or-path>`: word segment means against each word's vector from a GloVe-format file."""

    sections = ("word", "cca")

    def __init__(self, ref: str):
        self.ref = ref

    def file(self, cfg: dict[str, Any]) -> Path:
        """The vector file: a key of the `embeddings` config section, or a path."""
        named = cfg.get("embeddings") or {}
        path = Path(named[self.ref]) if self.ref in named else Path(self.ref)
        if not path.is_file():
            hint = f"; named embeddings: {', '.join(named)}" if named else ""
            raise FileNotFoundError(f"property {EMBED_PREFIX + self.ref!r}: word-vector file {path} does not exist{hint}")
        return path.resolve()

    def identity(self, cfg):
        path = self.file(cfg)
        st = path.stat()
        return {"embedding_file": {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}}

    def prepare(self, samples):
        return samples.segments("word").keys

    def score(self, name, samples, progress, device):
        from bench.embeddings import read_word_vectors

        cfg, seed = samples.config, samples.seed
        path = self.file(samples.cfg)
        seg = samples.segments("word")
        xs, labels, skipped = seg.gatherer.result(seg.sets[0])
        vectors = read_word_vectors(path, words=set(labels))
        keep = [i for i, w in enumerate(labels) if w in vectors]
        sub, rare = labels_in_every_part([labels[i] for i in keep], cfg.cca.num_parts)
        keep = [keep[i] for i in sub]
        missing = sorted(set(labels) - set(vectors))
        if len({labels[i] for i in keep}) < 2:
            raise ValueError(f"property {name!r}: only {len({labels[i] for i in keep})} of the {len(set(labels))} "
                             f"sampled words are in {path}")
        kept_labels = maybe_shuffled([labels[i] for i in keep], cfg.shuffle_labels, seed)
        raw = np.stack([vectors[w] for w in kept_labels])
        y = full_rank_word_view(raw, len(set(kept_labels)))
        per_layer = cca_layers(lambda li: (xs[li][keep], y), kept_labels, samples, f"{name} layers", progress, device)
        return per_layer, {"file": str(path), "n_segments": len(keep), "n_skipped_no_frames": skipped,
                           "n_words": len(set(kept_labels)), "n_missing_words": len(missing),
                           "n_missing_segments": sum(w not in vectors for w in labels), "missing_words": missing[:50],
                           "rare_labels_dropped": rare, "vector_dims_in_file": int(raw.shape[1]),
                           "vector_dims_used": int(y.shape[1])}


class ClusterMI(Property):
    """MI-phone / MI-word: k-means fitted on training segments, mutual information with the labels."""

    def __init__(self, tier: str):
        self.tier = tier
        # the word list's minimum count is max(word.min_count, cca.num_parts)
        self.sections = ("phone", "mi") if tier == "phone" else ("word", "mi", "cca")

    def split(self, cfg):
        return f"{cfg['mi']['train_split']}->{cfg['split']}"

    def prepare(self, samples):
        return samples.segments(self.tier).keys | samples.train_segments(self.tier).keys

    def score(self, name, samples, progress, device):
        from bench.mi import cluster_mi

        mi, seed = samples.config.mi, samples.seed
        x_tr, _, skipped_tr = samples.train_segments(self.tier).gatherer.result()
        seg = samples.segments(self.tier)
        x_ev, labels_ev, skipped_ev = seg.gatherer.result(seg.sets[0])
        labels_ev = maybe_shuffled(labels_ev, samples.config.shuffle_labels, seed)
        per_layer = []
        for li, spec in enumerate(tqdm(samples.layers, desc=f"{name} layers", disable=not progress, leave=False)):
            r = cluster_mi(x_tr[li], x_ev[li], labels_ev, k=mi.k_phone if self.tier == "phone" else mi.k_word,
                           seed=seed, min_per_cluster=mi.min_per_cluster, batch_size=mi.batch_size,
                           max_iter=mi.max_iter, n_init=mi.n_init)
            per_layer.append({"layer": spec.index, "name": spec.name, "stride": spec.stride, "score": r.score,
                              "splits": [r.as_dict()], "n_samples": r.n_eval})
        return per_layer, {"n_train": len(x_tr[0]) if x_tr else 0, "n_eval": len(labels_ev),
                           "n_skipped_no_frames": skipped_tr + skipped_ev, "train_split": mi.train_split}


# --------------------------------------------------------------------------- the registry

# name -> property; this order is the order of every report.
BUILTIN: dict[str, Property] = {
    "mel": MelCCA(),
    "phone": LabelCCA("phone"),
    "word": LabelCCA("word"),
    "mi_phone": ClusterMI("phone"),
    "mi_word": ClusterMI("word"),
}
ALIASES: dict[str, tuple[str, ...]] = {"mi": ("mi_phone", "mi_word")}


def names() -> list[str]:
    """The built-in property names, in report order."""
    return list(BUILTIN)


def sort_key(name: str) -> tuple[int, str]:
    """Built-in properties in registry order, then the others (glove:, py:) by name."""
    order = list(BUILTIN)
    return (order.index(name) if name in order else len(order), name)


def valid_names() -> str:
    return ", ".join([*BUILTIN, *ALIASES, EMBED_PREFIX + "<name-or-path>", PREFIX + "package.module:Class"])


def get(name: str) -> Property:
    """The property called `name`: built-in, `glove:<name-or-path>` or `py:package.module:Class`."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name.startswith(EMBED_PREFIX) and len(name) > len(EMBED_PREFIX):
        return WordVectors(name[len(EMBED_PREFIX):])
    if name.startswith(PREFIX):
        return _user_property(name)
    raise ConfigError(f"unknown CCA property {name!r}{suggest(name, [*BUILTIN, *ALIASES])}; "
                      f"valid properties: {valid_names()}")


def _user_property(ref: str) -> Property:
    where = f"CCA property {ref!r}"
    try:
        obj = import_object(ref[len(PREFIX):], where, "Class")
        if inspect.isclass(obj):
            obj = obj()
    except ValueError as e:
        raise ConfigError(str(e)) from e
    except TypeError as e:  # an abstract method left out, or an __init__ that needs arguments
        raise ConfigError(f"{where}: {e}") from e
    missing = missing_members(obj, CONTRACT)
    if missing:
        raise ConfigError(f"{where}: {type(obj).__name__} lacks {', '.join(missing)} of the property contract "
                          "(subclass bench.cca_properties.Property)")
    if not isinstance(obj.defaults, dict) or not all(isinstance(v, dict) for v in obj.defaults.values()):
        raise ConfigError(f"{where}: defaults must map a section name to a dict of values, got {obj.defaults!r}")
    return obj


def expand(properties: Sequence[str] | str) -> list[str]:
    """Validate and expand property names (`mi` -> mi_phone, mi_word), keeping order, no repeats."""
    if isinstance(properties, str):
        properties = properties.split(",")
    out: list[str] = []
    for raw in properties:
        p = raw.strip()
        names_ = list(ALIASES[p]) if p in ALIASES else [p]
        for n in names_:
            get(n)
        out.extend(n for n in names_ if n not in out)
    if not out:
        raise ConfigError(f"no CCA property given; valid properties: {valid_names()}")
    return out
