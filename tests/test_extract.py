"""Audio loading off the critical path: worker processes change nothing but speed."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
from test_probe_fakes import SignalUpstream, class_corpus

from bench import extract
from bench.params import ExtractParams
from bench.probe import FrameFeeder, resolve_params, typed_params


@pytest.fixture(scope="module")
def utts(tmp_path_factory):
    return class_corpus(tmp_path_factory.mktemp("c"), classes=3, per_class={"train": 6}).split("train")


def _stream(utts, workers: int, seed: int):
    durs = [u.duration for u in utts]

    def endless():
        for epoch in itertools.count():
            yield from extract.length_buckets(durs, 1.5, 4, shuffle=True, seed=seed * 1000 + epoch)

    return list(itertools.islice(extract.audio_batches(utts, endless(), workers=workers), 12))


def test_same_batches_in_the_same_order_for_any_worker_count(utts):
    """An endless shuffled training stream: identical indices and audio with 0, 1 or 2 workers."""
    ref = _stream(utts, 0, seed=5)
    assert len({tuple(i) for i, _, _ in ref[:5]}) > 1  # a real shuffle, several epochs deep
    for workers in (1, 2):
        got = _stream(utts, workers, seed=5)
        for (i0, w0, n0), (i1, w1, n1) in zip(ref, got, strict=True):
            assert i0 == i1 and torch.equal(w0, w1) and torch.equal(n0, n1)
            assert w1.shape == (len(i1), int(n1.max()))
            assert n1.tolist() == [len(utts[i].load()) for i in i1]
    assert [i for i, _, _ in _stream(utts, 0, seed=6)] != [i for i, _, _ in ref]


class _Ids:
    """A task stand-in whose targets are the utterance ids (so order shows)."""

    def targets(self, utts, space):
        return [u.id for u in utts]


def test_probe_training_and_pooled_extraction_ignore_the_worker_count(utts, monkeypatch):
    up = SignalUpstream([0.5, 1.0, 2.0])
    dev = torch.device("cpu")
    params = replace(typed_params("pr", resolve_params("pr", "quick")), max_batch_seconds=1.5, batch_size=4,
                     extract=ExtractParams(max_seconds=2.0, max_size=4))
    runs = {}
    for workers in ("0", "2"):
        monkeypatch.setenv(extract.WORKERS_ENV, workers)
        feeder = FrameFeeder(up, _Ids(), None, dev, params)
        train = [(ids, [h for h in f.layers]) for f, ids in itertools.islice(feeder.train(utts, seed=3), 7)]
        passes = [(idx, out.hidden) for idx, out in extract.forward_batches(up, utts, dev, 2.0, 4, desc=False)]
        runs[workers] = train, passes
    (t0, p0), (t1, p1) = runs["0"], runs["2"]
    for (a, ha), (b, hb) in zip(t0 + p0, t1 + p1, strict=True):
        assert a == b and all(torch.equal(x, y) for x, y in zip(ha, hb, strict=True))


def test_worker_count_from_the_environment(monkeypatch):
    monkeypatch.setenv(extract.WORKERS_ENV, "3")
    assert extract.loader_workers() == 3
    monkeypatch.delenv(extract.WORKERS_ENV)
    assert 0 <= extract.loader_workers() <= 8
    monkeypatch.setenv(extract.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="LAYERBENCH_WORKERS='two'"):
        extract.loader_workers()
