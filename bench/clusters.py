"""Clusters and 2-D views of layer representations, checked against labels and each other.

For each chosen layer of one or more upstreams, on labelled samples (phone or word segments
from the corpus alignments, or time points labelled with the phone under them):

- k-means and spherical (cosine) k-means with k = number of labels + 1 (default), scored
  against the labels by adjusted mutual information, homogeneity and completeness;
- PCA, t-SNE and UMAP 2-D views, each checked the way Grósz et al. check a picture: k-means
  on the 2-D coordinates, scored against the labels AND against k-means on the full vectors,
  so a reader sees how much a picture loses before trusting it;
- the majority label and purity of every cluster;
- pairwise comparisons of two clusterings (two upstreams, or two layers) of the same samples.

Every upstream runs ONCE over the sampled utterances; all its layers come from that pass.
All layers and upstreams describe exactly the same samples (a sample with no frame in some
layer is dropped everywhere), each layer read at its own stride, so clusterings line up.
"""

from __future__ import annotations

import os
import time
import typing
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from bench import schema
from bench.config import CONFIG_DIR, ConfigError, load_preset_config
from bench.data.manifest import Corpus, Utterance
from bench.extract import PassBatches
from bench.records import ClustersResult
from bench.types import SAMPLE_RATE, LayerSpec

CONFIG_FILE = CONFIG_DIR / "clusters.yaml"
View = Literal["pca", "tsne", "umap"]
VIEWS = typing.get_args(View)


@dataclass(frozen=True)
class FrameSection:
    step: int | None = field(metadata={"ge": 1})  # samples between time points; None: the coarsest layer's stride
    max_points: int = field(metadata={"ge": 2})


@dataclass(frozen=True)
class SegmentSection:
    per_label: int = field(metadata={"ge": 1})
    middle_third: bool


@dataclass(frozen=True)
class WordSection:
    num_words: int = field(metadata={"ge": 2})
    min_count: int = field(metadata={"ge": 1})


@dataclass(frozen=True)
class KMeansSection:
    k: int | None = field(metadata={"ge": 2})  # None: number of labels + 1
    n_init: int = field(metadata={"ge": 1})
    max_iter: int = field(metadata={"ge": 1})


@dataclass(frozen=True)
class TSNESection:
    perplexity: float = field(metadata={"gt": 0})


@dataclass(frozen=True)
class UMAPSection:
    n_neighbors: int = field(metadata={"ge": 2})
    min_dist: float = field(metadata={"ge": 0})


@dataclass(frozen=True)
class ClustersConfig:
    """configs/clusters.yaml, whose comments say what each value means; `checked` adds the one
    rule between keys (time points are labelled by phone)."""

    corpus_kind: str
    split: str
    unit: Literal["segment", "frame"]
    labels: Literal["phone", "word"]
    num_utterances: int = field(metadata={"ge": 1})
    frame: FrameSection
    segment: SegmentSection
    word: WordSection
    kmeans: KMeansSection
    views: list[View]
    tsne: TSNESection
    umap: UMAPSection
    batch: PassBatches

    def checked(self, loc: str) -> "ClustersConfig":
        if self.unit == "frame" and self.labels != "phone":
            raise ConfigError(f"{loc}: unit 'frame' labels time points by phone; use labels=phone (or unit=segment)")
        return self


def load_config(preset: str = "default", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`default` of configs/clusters.yaml, the preset, then overrides: the mapping results are
    hashed on, checked by type (`ClustersConfig`; errors name the file, key and value)."""
    cfg = load_preset_config(CONFIG_FILE, preset, overrides, "clusters")
    typed_config(cfg, f"clusters config ({CONFIG_FILE} preset {preset!r}{' with overrides' if overrides else ''})")
    return cfg


def typed_config(cfg: dict[str, Any], where: str = "clusters config") -> ClustersConfig:
    return schema.load(ClustersConfig, cfg, where)


# --------------------------------------------------------------------------- scoring


def agreement(reference: Sequence[Any], clusters: Sequence[Any]) -> dict[str, float]:
    """AMI, homogeneity (each cluster holds one reference class) and completeness (each class
    falls in one cluster) of `clusters` against `reference` (labels, or another clustering)."""
    from sklearn.metrics import adjusted_mutual_info_score, homogeneity_completeness_v_measure

    hom, comp, _ = homogeneity_completeness_v_measure(reference, clusters)
    return {"ami": float(adjusted_mutual_info_score(reference, clusters)),
            "homogeneity": float(hom), "completeness": float(comp)}


def kmeans(x: np.ndarray, k: int, seed: int, n_init: int, max_iter: int) -> np.ndarray:
    """Euclidean k-means (scikit-learn, k-means++ init, best of n_init) cluster ids."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed).fit_predict(x)


def spherical_kmeans(x: np.ndarray, k: int, seed: int, n_init: int, max_iter: int) -> np.ndarray:
    """Cosine k-means: unit-length rows, assignment by largest cosine to unit-length centroids,
    centroid = normalised sum of its members; best of `n_init` k-means++ starts by total cosine."""
    from sklearn.cluster import kmeans_plusplus

    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    best, best_obj = None, -np.inf
    rng = np.random.default_rng(seed)
    for _ in range(n_init):
        centres, _ = kmeans_plusplus(u, k, random_state=int(rng.integers(2**31 - 1)))
        assign = None
        for _ in range(max_iter):
            sims = u @ centres.T
            new = sims.argmax(1)
            if assign is not None and np.array_equal(new, assign):
                break
            assign = new
            sums = np.zeros_like(centres)
            np.add.at(sums, assign, u)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            empty = norms[:, 0] == 0
            centres = np.where(empty[:, None], centres, sums / np.maximum(norms, 1e-12))
        obj = float(sims[np.arange(len(u)), assign].sum())
        if obj > best_obj:
            best, best_obj = assign, obj
    return best


def project(x: np.ndarray, method: str, seed: int, cfg: ClustersConfig) -> np.ndarray:
    """[n, 2] coordinates of a 2-D view: PCA, t-SNE (scikit-learn) or UMAP (umap-learn)."""
    x = np.asarray(x, np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(cfg.tsne.perplexity, (len(x) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if method == "umap":
        import umap

        n_neighbors = min(cfg.umap.n_neighbors, len(x) - 1)
        return umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=cfg.umap.min_dist,
                         random_state=seed, n_jobs=1).fit_transform(x)
    raise ConfigError(f"unknown 2-D view {method!r}; choose from: {', '.join(VIEWS)}")


def cluster_table(clusters: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per cluster (largest first): size, majority label and purity (its share of the cluster)."""
    out = []
    for c in np.unique(clusters):
        members = Counter(labels[i] for i in np.flatnonzero(clusters == c))
        label, count = max(members.items(), key=lambda kv: (kv[1], kv[0]))
        size = sum(members.values())
        out.append({"cluster": int(c), "size": size, "majority": label, "purity": count / size})
    return sorted(out, key=lambda r: (-r["size"], r["cluster"]))


def compare_clusterings(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Clustering `b` against clustering `a` of the same samples: AMI, homogeneity, completeness,
    and for each cluster of `a` the cluster of `b` most of its members fall in, with that share."""
    out: dict[str, Any] = agreement(a, b)
    out["a_to_b"] = [{"cluster": r["cluster"], "size": r["size"], "majority": int(r["majority"]),
                      "purity": r["purity"]} for r in cluster_table(a, [int(v) for v in b])]
    return out


# --------------------------------------------------------------------------- sampling


def _phone_at(utt: Utterance, normalize) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(start samples, end samples, labels) of the utterance's non-silence phones."""
    starts, ends, labels = [], [], []
    for seg in utt.phones or []:
        label = normalize(seg.label)
        if label is not None and seg.end > seg.start:
            starts.append(round(seg.start * SAMPLE_RATE))
            ends.append(round(seg.end * SAMPLE_RATE))
            labels.append(label)
    return np.asarray(starts, np.int64), np.asarray(ends, np.int64), labels


@dataclass(frozen=True)
class Point:
    """One time point (frame unit): utterance key, sample position, the phone under it."""

    key: Hashable
    sample: int
    label: str


def sample_points(utts: dict[Hashable, Utterance], step: int, max_points: int, seed: int) -> list[Point]:
    """Time points every `step` samples (at the middle of each step) that fall inside a
    non-silence phone, labelled by it; at most `max_points`, drawn with a seeded generator."""
    from bench.data.arpabet import normalize_phone

    points = []
    for key in sorted(utts, key=str):
        starts, ends, labels = _phone_at(utts[key], normalize_phone)
        if not len(labels):
            continue
        pos = np.arange(step // 2, int(ends.max()), step, dtype=np.int64)
        seg = np.searchsorted(starts, pos, side="right") - 1
        ok = (seg >= 0) & (pos < ends[np.clip(seg, 0, None)])
        points += [Point(key, int(p), labels[s]) for p, s in zip(pos[ok], seg[ok])]
    if len(points) > max_points:
        take = np.sort(np.random.default_rng([seed, 7]).choice(len(points), size=max_points, replace=False))
        points = [points[i] for i in take]
    return points


class PointGatherer:
    """Per-layer vectors of the frames holding each time point, filled from one pass; a point
    past a layer's valid frames is dropped from every layer (all layers keep the same points)."""

    def __init__(self, points: Sequence[Point], layers: Sequence[LayerSpec]):
        self.points = list(points)
        self.layers = list(layers)
        self.rows = [np.zeros((len(self.points), s.dim), np.float32) for s in self.layers]
        self.ok = np.ones(len(self.points), dtype=bool)
        self.seen = np.zeros(len(self.points), dtype=bool)
        self.by_key: dict[Hashable, list[int]] = {}
        for i, p in enumerate(self.points):
            self.by_key.setdefault(p.key, []).append(i)

    @property
    def keys(self) -> set[Hashable]:
        return set(self.by_key)

    def add(self, key: Hashable, hidden, lengths: Sequence[int]) -> None:
        idx = self.by_key.get(key)
        if not idx:
            return
        pos = np.asarray([self.points[i].sample for i in idx], np.int64)
        for li, spec in enumerate(self.layers):
            frame = pos // spec.stride
            valid = frame < int(lengths[li])
            self.ok[idx] &= valid
            h = hidden[li]
            rows = h[np.minimum(frame, max(int(lengths[li]) - 1, 0)).tolist()]
            self.rows[li][idx] = rows.detach().cpu().numpy() if hasattr(rows, "detach") else rows
        self.seen[idx] = True

    def result(self) -> tuple[list[np.ndarray], list[str], np.ndarray]:
        keep = np.flatnonzero(self.ok & self.seen)
        return [r[keep] for r in self.rows], [self.points[i].label for i in keep], keep


def _sample_utterances(corpus: Corpus, split: str, n: int, seed: int) -> dict[Hashable, Utterance]:
    utts = {u.id: u for u in corpus.split(split) if u.phones or u.words}
    if not utts:
        raise ValueError(f"split {split!r} of {corpus.root} has no aligned utterances; clusters need "
                         "phone or word alignments (MFA TextGrids or the synthetic corpus)")
    keys = sorted(utts)
    if n < len(keys):
        keys = [keys[i] for i in sorted(np.random.default_rng([seed, 0]).choice(len(keys), n, replace=False))]
    return {k: utts[k] for k in keys}


def _segment_samples(utts: dict[Hashable, Utterance], cfg: ClustersConfig, seed: int):
    from bench import views
    from bench.data.arpabet import normalize_phone

    if cfg.labels == "phone":
        pool = views.phone_pool(utts, normalize_phone)
        labels = sorted(pool)
    else:
        pool = views.word_pool(utts)
        labels = views.frequent_labels(pool, cfg.word.num_words, cfg.word.min_count)
    if len(labels) < 2:
        raise ValueError(f"the sampled utterances have {len(labels)} {cfg.labels} label(s); clusters need 2")
    return views.sample_segments(pool, labels, cfg.segment.per_label, [seed, 1])


# --------------------------------------------------------------------------- run


@dataclass
class Model:
    """One upstream of a clusters run and its chosen layers' vectors on the shared samples."""

    spec: str
    label: str
    layers: list[LayerSpec]
    x: list[np.ndarray]
    revision: str | None = None


def _gather(upstreams: Sequence, layer_sel, cfg: ClustersConfig, utts, seed: int, device, progress: bool):
    """Load each upstream, run it once over the sampled utterances; returns (models, labels, samples)."""
    import upstreams as upstream_registry
    from bench import views
    from bench.extract import forward_batches
    from bench.probe import select_layers

    loaded = []
    for spec in upstreams:
        up = upstream_registry.load(spec) if isinstance(spec, str) else spec
        loaded.append((up.to(device) or up))
    chosen = [[up.layers[i] for i in select_layers(_own(layer_sel, up), up.layers)] for up in loaded]
    if isinstance(layer_sel, list):
        have = {s.index for layers in chosen for s in layers}
        if set(layer_sel) - have or not all(chosen):
            raise ConfigError(f"layers {layer_sel}: every index must exist in some upstream and every upstream "
                              f"needs one; they have {[[s.index for s in up.layers] for up in loaded]}")
    if cfg.unit == "frame":
        step = cfg.frame.step or max(s.stride for layers in chosen for s in layers)
        samples = sample_points(utts, step, cfg.frame.max_points, seed)
    else:
        step = None
        samples = _segment_samples(utts, cfg, seed)
    gatherers = []
    for up, layers in zip(loaded, chosen):
        g = (PointGatherer(samples, layers) if cfg.unit == "frame"
             else views.SegmentGatherer(samples, layers, cfg.segment.middle_third))
        keys = sorted(g.keys, key=str)
        pos = [up.layers.index(s) for s in layers]
        b = cfg.batch
        for idx, out in forward_batches(up, [utts[k] for k in keys], device, max_seconds=b.max_seconds,
                                        max_size=b.max_size, desc=f"clusters {up.spec}" if progress else False):
            for j, i in enumerate(idx):
                g.add(keys[i], [out.hidden[p][j] for p in pos], [int(out.lengths[p][j]) for p in pos])
        gatherers.append(g)
    # the samples every layer of every upstream has frames for
    ok = np.ones(len(samples), dtype=bool)
    for g in gatherers:
        ok &= (g.ok & g.seen) if isinstance(g, PointGatherer) else g.ok
    keep = np.flatnonzero(ok)
    labels = [samples[i].label for i in keep]
    models = []
    for up, layers, g in zip(loaded, chosen, gatherers):
        rows = [r[keep] for r in g.rows]
        models.append(Model(spec=up.spec, label=up.spec, layers=layers, x=rows, revision=getattr(up, "revision", None)))
    return models, labels, {"n_sampled": len(samples), "n_dropped_no_frames": int(len(samples) - len(keep)),
                            "frame_step": step}


def _own(selection, up):
    """An explicit index list keeps, per upstream, the indices it has (fbank has only layer 0)."""
    if not isinstance(selection, list):
        return selection
    return [i for i in selection if i in {s.index for s in up.layers}]


def analyse_layer(x: np.ndarray, labels: Sequence[str], k: int, cfg: ClustersConfig, seed: int
                  ) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """One layer: full-vector k-means / spherical k-means scores, cluster table, and each view's
    check. Returns (entry, full-vector k-means ids, view coordinates)."""
    n_init, max_iter = cfg.kmeans.n_init, cfg.kmeans.max_iter
    x = np.asarray(x, np.float64)
    full = kmeans(x, k, seed, n_init, max_iter)
    sph = spherical_kmeans(x, k, seed, n_init, max_iter)
    entry: dict[str, Any] = {
        "full": {"kmeans": agreement(labels, full), "spherical_kmeans": agreement(labels, sph)},
        "clusters": cluster_table(full, labels),
        "views": {},
    }
    coords = {}
    for view in cfg.views:
        xy = project(x, view, seed, cfg)
        flat = kmeans(xy, k, seed, n_init, max_iter)
        coords[view] = xy
        entry["views"][view] = {"kmeans": agreement(labels, flat), "vs_full_kmeans": agreement(full, flat)}
    return entry, full, coords


def parse_pairs(text: str | None, models: Sequence[Model]) -> list[tuple[int, int, int, int]]:
    """`"1:0,2:3;1:3,2:3"` (upstream number:layer index, 1-based upstream numbers) -> positions.
    Default: the same layer index in the first upstream and each other one."""
    pairs = []
    if not text:
        for m in range(1, len(models)):
            common = [s.index for s in models[0].layers if s.index in {t.index for t in models[m].layers}]
            for idx in common:
                pairs.append((0, _layer_pos(models[0], idx), m, _layer_pos(models[m], idx)))
        return pairs
    for item in text.split(";"):
        try:
            (ua, la), (ub, lb) = (tuple(int(v) for v in side.split(":")) for side in item.split(","))
        except ValueError:
            raise ConfigError(f"pair {item!r} must look like U:L,U:L (upstream number:layer index)") from None
        for u in (ua, ub):
            if not 1 <= u <= len(models):
                raise ConfigError(f"pair {item!r}: upstream number {u} is not between 1 and {len(models)}")
        pairs.append((ua - 1, _layer_pos(models[ua - 1], la), ub - 1, _layer_pos(models[ub - 1], lb)))
    return pairs


def _layer_pos(model: Model, index: int) -> int:
    for i, s in enumerate(model.layers):
        if s.index == index:
            return i
    raise ConfigError(f"{model.spec}: layer {index} is not among the analysed layers "
                      f"{[s.index for s in model.layers]}")


def run_clusters(
    upstreams: Sequence,
    corpus: str | os.PathLike | Corpus,
    *,
    layers: str | list[int] = "all",
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    pairs: str | None = None,
    out_dir: str | os.PathLike = "runs",
    name: str | None = None,
    labels: Sequence[str] | None = None,
    seed: int = 0,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
) -> tuple[Path, ClustersResult]:
    """Analyse the chosen layers of every upstream on one shared sample; write
    `<out>/clusters/<name>.json` plus plots under `<out>/clusters/<name>/`. Returns (path, result)."""
    from bench.data import open_corpus
    from bench.extract import pick_device
    from bench.probe import normalize_layers
    from bench.results import config_hash, is_done, read_record, slug, write_record

    raw = load_config(preset, overrides)
    cfg = typed_config(raw)
    layer_sel = normalize_layers(layers)
    import upstreams as upstream_registry

    specs = [upstream_registry.canonical(u) if isinstance(u, str) else u.spec for u in upstreams]
    if labels is not None and len(labels) != len(specs):
        raise ConfigError(f"{len(labels)} label(s) for {len(specs)} upstream(s)")
    root = Path(corpus.root if isinstance(corpus, Corpus) else corpus).resolve()
    config = {"kind": "clusters", "upstreams": specs, "layers": layer_sel, "pairs": pairs, "corpus": str(root),
              "seed": seed, **{k: raw[k] for k in raw if k != "batch"}}
    chash = config_hash(config)
    stem = slug(name or "__".join(specs))
    path = Path(out_dir) / "clusters" / f"{stem}.json"
    if not force and is_done(path, chash):
        return path, read_record(path, ClustersResult)
    t0 = time.perf_counter()
    corp = corpus if isinstance(corpus, Corpus) else open_corpus(corpus, cfg.corpus_kind)
    dev = pick_device(device)
    utts = _sample_utterances(corp, cfg.split, cfg.num_utterances, seed)
    models, y, counts = _gather(upstreams, layer_sel, cfg, utts, seed, dev, progress)
    for m, lab in zip(models, labels or specs):
        m.label = lab
    n_labels = len(set(y))
    k = cfg.kmeans.k or n_labels + 1
    if len(y) <= k:
        raise ValueError(f"{len(y)} labelled samples for k = {k} clusters; sample more utterances or lower kmeans.k")
    entries, ids, coords = [], {}, {}
    work = [(mi, li) for mi, m in enumerate(models) for li in range(len(m.layers))]
    for mi, li in tqdm(work, desc="clusters layers", disable=not progress, leave=False):
        m, spec = models[mi], models[mi].layers[li]
        entry, full, xy = analyse_layer(m.x[li], y, k, cfg, seed)
        entries.append({"upstream": m.spec, "label": m.label, "layer": spec.index, "name": spec.name,
                        "stride": spec.stride, "dim": spec.dim, **entry})
        ids[(mi, li)], coords[(mi, li)] = full, xy
    compared = []
    for ma, la, mb, lb in parse_pairs(pairs, models):
        a, b = models[ma], models[mb]
        compared.append({"a": {"upstream": a.spec, "label": a.label, "layer": a.layers[la].index},
                         "b": {"upstream": b.spec, "label": b.label, "layer": b.layers[lb].index},
                         **compare_clusterings(ids[(ma, la)], ids[(mb, lb)])})
    from leaderboard.clusters import plot_run

    plot_dir = path.parent / stem
    plots = plot_run(entries, coords, y, models, plot_dir)
    result = ClustersResult(
        upstreams=[{"spec": m.spec, "label": m.label, "revision": m.revision} for m in models], unit=cfg.unit,
        label_tier=cfg.labels, k=k, n_labels=n_labels, n_samples=len(y),
        label_counts=dict(sorted(Counter(y).items())), sampling={"n_utterances": len(utts), **counts},
        per_layer=entries, pairs=compared, plots={k_: str(p.relative_to(path.parent)) for k_, p in plots.items()},
        config=config, config_hash=chash, seed=seed, device=str(dev),
        timings={"total_s": round(time.perf_counter() - t0, 3)})
    write_record(path, result)
    return path, read_record(path, ClustersResult)
