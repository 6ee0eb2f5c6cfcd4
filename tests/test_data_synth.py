"""The synthetic corpus read back through the real-layout loaders: alignments must be usable
as MFA's would be (every word aligned, phones inside words, inside the audio, ARPAbet)."""

from __future__ import annotations

import pytest

from bench.data import KINDS, corpus_info, detect_kinds, fsc_label_maps, open_corpus
from bench.data.arpabet import PHONES39, normalize_phone
from bench.data.speech_commands import CLASSES

EPS = 1e-6


def test_all_four_layouts_detected(synth_root):
    assert list(detect_kinds(synth_root)) == list(KINDS)  # every registered corpus kind


def test_librispeech_alignments_are_complete_and_nested(synth_root):
    c = open_corpus(synth_root, "librispeech")
    assert not c.problems and len(c.splits) >= 3
    seen_phones = set()
    for name, utts in c.splits.items():
        assert utts, name
        for u in utts:
            assert u.words is not None and u.phones, u.id
            assert [w.label for w in u.words] == u.text.upper().split(), u.id  # every transcript word aligned
            for seg in u.words + u.phones:
                assert -EPS <= seg.start < seg.end <= u.duration + EPS, (u.id, seg)
            for a, b in zip(u.words, u.words[1:]):
                assert a.end <= b.start + EPS, (u.id, a, b)
            for p in u.phones:
                assert any(w.start - EPS <= p.start and p.end <= w.end + EPS for w in u.words), (u.id, p)
                seen_phones.add(normalize_phone(p.label))
    assert seen_phones <= set(PHONES39) and len(seen_phones) >= 30  # raises above if not ARPAbet
    info = corpus_info(c)
    assert all(s["alignment"]["coverage"] == 1.0 for s in info["splits"].values())


def test_utterance_corpora_have_protocol_labels(synth_root):
    sc = open_corpus(synth_root, "speech_commands")
    assert list(sc.splits) == ["train", "dev", "test"]
    for utts in sc.splits.values():
        assert {u.labels["keyword"] for u in utts} == set(CLASSES)
    crop = next(u for u in sc.split("train") if u.labels["keyword"] == "_silence_")
    assert crop.load().shape == (16000,)
    slurp = open_corpus(synth_root, "slurp")
    assert list(slurp.splits) == ["train", "devel", "test"]
    train = slurp.split("train")
    assert any("slurp_synth" in str(u.path) for u in train) and any("slurp_real" in str(u.path) for u in train)
    for u in train:
        assert u.labels["intent"] == f"{u.labels['scenario']}_{u.labels['action']}"
    wav = train[0].load()
    assert wav.ndim == 1 and abs(len(wav) / 16000 - train[0].duration) < 1e-3


def test_fsc_train_label_maps_cover_every_split(synth_root):
    """FSC's protocol builds the label maps from the train csv alone, so the eval splits must
    not hold a label train lacks (the real corpus has all 6 + 14 + 4 in train)."""
    fsc = open_corpus(synth_root, "fsc")
    maps = fsc_label_maps(fsc)
    assert set(maps) == {"action", "object", "location"}
    for name, utts in fsc.splits.items():
        for u in utts:
            unseen = {k: v for k, v in u.labels.items() if v not in maps[k]}
            assert not unseen, f"{name} utterance {u.id} has labels missing from train: {unseen}"


@pytest.mark.parametrize("kind", KINDS)
def test_each_corpus_folder_opens_on_its_own(synth_root, kind):
    folder = detect_kinds(synth_root)[kind]
    c = open_corpus(folder)
    assert c.kind == kind and all(len(v) > 0 for v in c.splits.values())


def test_a_corpus_kind_without_a_synthetic_writer_fails_before_any_work(tmp_path, monkeypatch):
    from bench.synth import corpora

    monkeypatch.setattr(corpora, "KINDS", (*KINDS, "toy_kind"))
    with pytest.raises(ValueError, match=r"no writer for corpus kind\(s\) toy_kind: add one to bench.synth.corpora.WRITERS"):
        corpora.generate(tmp_path / "synth", "tiny")
    assert not (tmp_path / "synth").exists()
