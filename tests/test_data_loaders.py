"""The four real-layout loaders on small handmade fixtures with known answers, bad input,
kind detection, `corpus info` and the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main
from bench.data import Segment, corpus_info, detect_kinds, fsc_label_maps, label_maps, open_corpus, write_textgrid

SR = 16000


def wav(path: Path, seconds: float, sr: int = SR, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sr))
    x = (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32)
    sf.write(path, x, sr, format=fmt)
    return path


def junk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(7).bytes(2048))
    return path


# ---------------------------------------------------------------- LibriSpeech

def librispeech(root: Path) -> Path:
    """Two splits; utterance 1-10-0000 has a TextGrid in an <spk>/ tree, 1-10-0001 in <split>/<spk>/<chap>/."""
    ch = root / "LibriSpeech" / "dev-clean" / "1" / "10"
    wav(ch / "1-10-0000.flac", 1.5)
    wav(ch / "1-10-0001.flac", 1.0)
    (ch / "1-10.trans.txt").write_text("1-10-0000 HELLO WORLD\n1-10-0001 GOOD DAY\n")
    ch2 = root / "LibriSpeech" / "test-clean" / "2" / "20"
    wav(ch2 / "2-20-0000.flac", 0.5)
    (ch2 / "2-20.trans.txt").write_text("2-20-0000 YES\n")
    al = root / "librispeech_alignments"
    write_textgrid(al / "1" / "1-10-0000.TextGrid",
                   {"words": [Segment("hello", 0.2, 0.61), Segment("world", 0.61, 1.3)],
                    "phones": [Segment("sil", 0.0, 0.2), Segment("HH", 0.2, 0.3), Segment("AH0", 0.3, 0.4),
                               Segment("L", 0.4, 0.5), Segment("OW1", 0.5, 0.61), Segment("W", 0.61, 0.8),
                               Segment("ER1", 0.8, 1.0), Segment("L", 1.0, 1.1), Segment("D", 1.1, 1.3),
                               Segment("spn", 1.3, 1.5)]}, xmax=1.5)
    write_textgrid(al / "dev-clean" / "1" / "10" / "1-10-0001.TextGrid",
                   {"words": [Segment("good", 0.0, 0.4), Segment("<unk>", 0.5, 0.9)],
                    "phones": [Segment("G", 0.0, 0.1), Segment("UH1", 0.1, 0.3), Segment("D", 0.3, 0.4),
                               Segment("sp", 0.4, 0.5), Segment("D", 0.5, 0.6), Segment("EY1", 0.6, 0.9)]}, xmax=1.0)
    return root


def test_librispeech_with_alignments(tmp_path):
    c = open_corpus(librispeech(tmp_path))
    assert c.kind == "librispeech" and c.root == tmp_path / "LibriSpeech"
    assert sorted(c.splits) == ["dev-clean", "test-clean"]
    u0, u1 = c.split("dev-clean")
    assert (u0.id, u0.speaker, u0.text, u0.duration) == ("1-10-0000", "1", "HELLO WORLD", 1.5)
    assert u0.words == [Segment("HELLO", 0.2, 0.61), Segment("WORLD", 0.61, 1.3)]
    # silences (sil, spn, gaps) dropped, stress kept
    assert [p.label for p in u0.phones] == ["HH", "AH0", "L", "OW1", "W", "ER1", "L", "D"]
    assert u0.phones[3] == Segment("OW1", 0.5, 0.61)
    # MFA's <unk> stands for the transcript word it aligns
    assert u1.words == [Segment("GOOD", 0.0, 0.4), Segment("DAY", 0.5, 0.9)]
    (t0,) = c.split("test-clean")
    assert t0.words is None and t0.phones is None and t0.duration == 0.5
    assert u0.load().shape == (24000,)
    info = corpus_info(c)
    assert info["splits"]["dev-clean"]["alignment"] == {"aligned": 2, "coverage": 1.0, "words": 4, "phones": 13}
    assert info["splits"]["test-clean"]["alignment"]["coverage"] == 0.0
    assert info["splits"]["dev-clean"]["seconds"] == 2.5 and info["splits"]["dev-clean"]["speakers"] == 1
    # alignments can be switched off or pointed elsewhere; splits can be restricted
    assert open_corpus(tmp_path, "librispeech", alignments=False).split("dev-clean")[0].words is None
    assert list(open_corpus(tmp_path / "LibriSpeech", splits=["test-clean"]).splits) == ["test-clean"]


def test_librispeech_parallel_alignment_parsing_matches_serial(tmp_path, monkeypatch):
    import bench.data.librispeech as ls

    serial = open_corpus(librispeech(tmp_path))
    monkeypatch.setattr(ls, "_PARALLEL_MIN", 1)  # force the process pool on this tiny corpus
    parallel = open_corpus(tmp_path)
    assert parallel.splits == serial.splits
    (tmp_path / "LibriSpeech" / "dev-clean" / "1" / "10" / "1-10.trans.txt").write_text(
        "1-10-0000 HELLO THERE\n1-10-0001 GOOD DAY\n")
    with pytest.raises(ValueError, match="1-10-0000.TextGrid"):  # errors come back from the workers
        open_corpus(tmp_path)


def test_librispeech_bad_inputs(tmp_path, caplog):
    root = librispeech(tmp_path)
    with pytest.raises(FileNotFoundError, match="train-clean-100.*available: dev-clean, test-clean"):
        open_corpus(root, splits=["train-clean-100"])
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        open_corpus(root, alignments=tmp_path / "no_such_dir")
    with pytest.raises(ValueError, match="unknown option.*bogus"):
        open_corpus(root, bogus=1)
    ch = root / "LibriSpeech" / "dev-clean" / "1" / "10"
    # transcript line without audio
    (ch / "1-10.trans.txt").write_text("1-10-0000 HELLO WORLD\n1-10-0001 GOOD DAY\n1-10-0002 LOST ONE\n")
    with pytest.raises(FileNotFoundError, match=r"1-10\.trans\.txt:3.*1-10-0002"):
        open_corpus(root)
    # skip mode: warned with a count, listed in problems, the rest loaded
    with caplog.at_level(logging.WARNING, logger="bench.data"):
        c = open_corpus(root, skip_bad=True)
    assert [u.id for u in c.split("dev-clean")] == ["1-10-0000", "1-10-0001"]
    assert len(c.problems) == 1 and "1-10-0002" in c.problems[0]
    assert "skipped 1 bad example" in caplog.text and "1-10-0002" in caplog.text
    (ch / "1-10.trans.txt").write_text("1-10-0000 HELLO WORLD\n1-10-0001 GOOD DAY\n")
    # corrupt audio
    junk(ch / "1-10-0001.flac")
    with pytest.raises(ValueError, match="1-10-0001.flac"):
        open_corpus(root)
    c = open_corpus(root, skip_bad=True)
    assert [u.id for u in c.split("dev-clean")] == ["1-10-0000"] and "corrupt" in c.problems[0]
    wav(ch / "1-10-0001.flac", 1.0)
    # TextGrid words disagreeing with the transcript
    (ch / "1-10.trans.txt").write_text("1-10-0000 HELLO THERE\n1-10-0001 GOOD DAY\n")
    with pytest.raises(ValueError, match=r"1-10-0000\.TextGrid.*disagree"):
        open_corpus(root)
    c = open_corpus(root, skip_bad=True)
    assert [u.id for u in c.split("dev-clean")] == ["1-10-0001"] and "1-10-0000.TextGrid" in c.problems[0]
    # a split folder without transcripts, and audio without a transcript line
    (root / "LibriSpeech" / "empty-split").mkdir()
    with pytest.raises(FileNotFoundError, match="empty-split"):
        open_corpus(root, splits=["empty-split"])
    wav(ch / "1-10-0009.flac", 0.5)
    with pytest.raises(ValueError, match="1-10-0009.flac has no line"):
        open_corpus(root, splits=["dev-clean"], alignments=False)


# ---------------------------------------------------------- Speech Commands

def pct(name: str) -> float:
    """The dataset README's rule, written out independently of the loader."""
    h = name.split("_nohash_")[0]
    return (int(hashlib.sha1(h.encode()).hexdigest(), 16) % 2**27) * 100 / (2**27 - 1)


def speakers_by_split() -> dict[str, str]:
    found: dict[str, str] = {}
    for i in range(1000):
        spk = f"{i:08x}"
        p = pct(spk)
        split = "dev" if p < 10 else "excluded" if p < 20 else "train"
        found.setdefault(split, spk)
        if len(found) == 3:
            return found
    raise AssertionError("no speaker ids covering all three splits")


def speech_commands(root: Path) -> dict[str, str]:
    spk = speakers_by_split()
    main_dir = root / "speech_commands_v0.01"
    for word in ["yes", "stop", "bed"]:
        for split, s in spk.items():
            wav(main_dir / word / f"{s}_nohash_0.wav", 1.0)
    wav(main_dir / "_background_noise_" / "white_noise.wav", 3.2)
    wav(main_dir / "_background_noise_" / "pink_noise.wav", 2.0)
    (main_dir / "validation_list.txt").write_text("".join(f"{w}/{spk['dev']}_nohash_0.wav\n" for w in ["bed", "stop", "yes"]))
    (main_dir / "testing_list.txt").write_text("".join(f"{w}/{spk['excluded']}_nohash_0.wav\n" for w in ["bed", "stop", "yes"]))
    test_dir = root / "speech_commands_test_set_v0.01"
    for cls in ["yes", "_unknown_", "_silence_"]:
        wav(test_dir / cls / f"abc_nohash_{cls}.wav", 1.0)
    return spk


def test_speech_commands_hash_split_and_classes(tmp_path, caplog):
    spk = speech_commands(tmp_path)
    assert pct(spk["dev"]) < 10 <= pct(spk["excluded"]) < 20 <= pct(spk["train"])
    with caplog.at_level(logging.WARNING, logger="bench.data"):
        c = open_corpus(tmp_path, "speech_commands")
    assert caplog.text == ""  # the list files agree with the hash rule
    assert list(c.splits) == ["train", "dev", "test"]
    words = {s: sorted((u.id, u.labels["keyword"]) for u in c.splits[s] if u.labels["keyword"] != "_silence_")
             for s in ("train", "dev")}
    for split in ("train", "dev"):
        s = spk[split]
        assert words[split] == [(f"bed/{s}_nohash_0.wav", "_unknown_"), (f"stop/{s}_nohash_0.wav", "stop"),
                                (f"yes/{s}_nohash_0.wav", "yes")]
    all_ids = {u.id for split in c.splits.values() for u in split}
    assert not any(spk["excluded"] in i for i in all_ids)
    # _silence_: the 1-second crops of each noise file on the SILENCE_HOP_S grid, the same in train and dev
    sil = {split: sorted((u.path.name, u.offset, u.duration) for u in c.split(split) if u.labels["keyword"] == "_silence_")
           for split in ("train", "dev")}
    assert sil["train"] == sil["dev"] == [("pink_noise.wav", k * 0.25, 1.0) for k in range(5)] + [
        ("white_noise.wav", k * 0.25, 1.0) for k in range(9)]  # 2.0 s -> offsets 0..1; 3.2 s -> 0..2
    crop = next(u for u in c.split("train") if u.offset == 2.0)
    assert crop.load().shape == (16000,)
    # every KS file is read 3 dB down, as s3prl's sox `gain -3.0`
    raw, _ = sf.read(str(crop.path), dtype="float32", start=32000, frames=16000)
    assert all(u.gain_db == -3.0 for split in c.splits.values() for u in split)
    np.testing.assert_allclose(crop.load(), raw * 10 ** (-3 / 20), rtol=1e-6)
    assert sorted(u.labels["keyword"] for u in c.split("test")) == ["_silence_", "_unknown_", "yes"]
    assert label_maps(c)["keyword"] == ["_silence_", "_unknown_", "stop", "yes"]
    # a list file that disagrees is reported, and the hash rule still decides
    (tmp_path / "speech_commands_v0.01" / "validation_list.txt").write_text(f"yes/{spk['train']}_nohash_0.wav\n")
    with caplog.at_level(logging.WARNING, logger="bench.data"):
        again = open_corpus(tmp_path, "speech_commands")
    assert "validation_list.txt disagrees" in caplog.text and "1 listed file(s)" in caplog.text
    assert "3 file(s) the rule adds" in caplog.text
    assert [u.id for u in again.split("dev")] == [u.id for u in c.split("dev")]
    # the folder itself works as root
    c2 = open_corpus(tmp_path / "speech_commands_v0.01", splits=["dev"])
    assert list(c2.splits) == ["dev"] and len(c2.split("dev")) == 3 + 14  # 3 words + 14 silence crops


def test_speech_commands_bad_inputs(tmp_path):
    spk = speech_commands(tmp_path)
    sc = tmp_path / "speech_commands_v0.01"
    junk(sc / "yes" / f"{spk['train']}_nohash_1.wav")
    with pytest.raises(ValueError, match=f"{spk['train']}_nohash_1.wav"):
        open_corpus(tmp_path, "speech_commands")
    c = open_corpus(tmp_path, "speech_commands", skip_bad=True)
    assert len(c.problems) == 1 and len(c.split("train")) == 3 + 14  # 14 silence crops
    (sc / "yes" / f"{spk['train']}_nohash_1.wav").unlink()
    import shutil

    shutil.rmtree(tmp_path / "speech_commands_test_set_v0.01")
    with pytest.raises(FileNotFoundError, match="speech_commands_test_set_v0.01"):
        open_corpus(tmp_path, "speech_commands")
    assert list(open_corpus(tmp_path, "speech_commands", splits=["train", "dev"]).splits) == ["train", "dev"]
    shutil.rmtree(sc / "_background_noise_")
    with pytest.raises(FileNotFoundError, match="_background_noise_"):
        open_corpus(sc, splits=["train"])


# ---------------------------------------------------------- Fluent Speech Commands

FSC_HEADER = ",path,speakerId,transcription,action,object,location\n"


def fsc(root: Path) -> Path:
    d = root / "fluent_speech_commands_dataset"
    rows = {
        "train": [("spkA", "a1", "Turn on the lights in the kitchen", "activate", "lights", "kitchen"),
                  ("spkA", "a2", "Bring me my shoes", "bring", "shoes", "none"),
                  ("spkB", "b1", "Louder", "increase", "volume", "none")],
        "valid": [("spkC", "c1", "Lights off", "deactivate", "lights", "none")],
        "test": [("spkD", "d1", "Switch off the heat in the bedroom", "deactivate", "heat", "bedroom")],
    }
    for split, items in rows.items():
        lines = [FSC_HEADER]
        for i, (spk, name, text, a, o, loc) in enumerate(items):
            rel = f"wavs/speakers/{spk}/{name}.wav"
            wav(d / rel, 0.75)
            lines.append(f'{i},{rel},{spk},"{text}",{a},{o},{loc}\n')
        (d / "data").mkdir(parents=True, exist_ok=True)
        (d / "data" / f"{split}_data.csv").write_text("".join(lines))
    return d


def test_fsc_with_index_column(tmp_path):
    fsc(tmp_path)
    c = open_corpus(tmp_path)
    assert c.kind == "fsc" and list(c.splits) == ["train", "valid", "test"]
    u = c.split("train")[0]
    assert (u.id, u.speaker, u.text, u.duration) == ("spkA/a1", "spkA", "Turn on the lights in the kitchen", 0.75)
    assert u.labels == {"action": "activate", "object": "lights", "location": "kitchen"}
    assert c.split("train")[1].labels["location"] == "none"  # a real label, not a missing value
    maps = fsc_label_maps(c)
    assert maps == {"action": ["activate", "bring", "increase"], "location": ["kitchen", "none"],
                    "object": ["lights", "shoes", "volume"]}
    # maps come from the train csv even when only test was loaded
    assert fsc_label_maps(open_corpus(tmp_path, "fsc", splits=["test"])) == maps
    assert corpus_info(c)["splits"]["train"]["speakers"] == 2


def test_fsc_bad_inputs(tmp_path):
    d = fsc(tmp_path)
    csv = d / "data" / "valid_data.csv"
    csv.write_text(",path,speakerId,transcription,action,object\n0,wavs/speakers/spkC/c1.wav,spkC,x,a,b\n")
    with pytest.raises(ValueError, match=r"valid_data\.csv lacks column\(s\) location"):
        open_corpus(tmp_path)
    with pytest.raises(ValueError, match="valid_data.csv"):
        open_corpus(tmp_path, skip_bad=True)  # a structural error is never skipped
    csv.write_text(FSC_HEADER + "0,wavs/speakers/spkC/gone.wav,spkC,Lights off,deactivate,lights,none\n")
    with pytest.raises(FileNotFoundError, match=r"valid_data\.csv:2.*gone\.wav"):
        open_corpus(tmp_path)
    c = open_corpus(tmp_path, skip_bad=True)
    assert c.splits["valid"] == [] and len(c.problems) == 1
    with pytest.raises(ValueError, match="split 'valid'.*empty"):
        c.split("valid")
    (d / "data" / "test_data.csv").unlink()
    with pytest.raises(FileNotFoundError, match="test_data.csv"):
        open_corpus(tmp_path)


# ---------------------------------------------------------- SLURP

def slurp(root: Path) -> Path:
    s = root / "slurp"
    text = s / "dataset" / "slurp"
    text.mkdir(parents=True)
    real, synth = s / "audio" / "slurp_real", s / "audio" / "slurp_synth"
    rec = {"slurp_id": 7, "sentence": "wake me up at nine", "scenario": "alarm", "action": "set", "intent": "alarm_set",
           "recordings": [{"file": "audio-1-headset.flac", "wer": 0.0}, {"file": "audio-1.flac", "wer": 0.1}]}
    wav(real / "audio-1-headset.flac", 1.25)
    wav(real / "audio-1.flac", 1.5)
    (text / "train.jsonl").write_text(json.dumps(rec) + "\n")
    syn = {"slurp_id": 8, "sentence": "play jazz", "scenario": "play", "action": "music", "intent": "play_music",
           "recordings": [{"file": "audio-s1.flac"}]}
    wav(synth / "audio-s1.flac", 0.5)
    (text / "train_synthetic.jsonl").write_text(json.dumps(syn) + "\n")
    for split, sid, f in [("devel", 9, "audio-2.flac"), ("test", 10, "audio-3.flac")]:
        wav(real / f, 1.0)
        r = {"slurp_id": sid, "sentence": "what time is it", "scenario": "datetime", "action": "query",
             "intent": "datetime_query", "recordings": [{"file": f}]}
        (text / f"{split}.jsonl").write_text(json.dumps(r) + "\n")
    return s


def test_slurp_one_example_per_recording(tmp_path):
    slurp(tmp_path)
    c = open_corpus(tmp_path)
    assert c.kind == "slurp" and list(c.splits) == ["train", "devel", "test"]
    train = c.split("train")
    assert [(u.id, u.duration, u.text) for u in train] == [("7-audio-1-headset", 1.25, "wake me up at nine"),
                                                             ("7-audio-1", 1.5, "wake me up at nine"),
                                                             ("8-audio-s1", 0.5, "play jazz")]
    assert train[0].labels == {"scenario": "alarm", "action": "set", "intent": "alarm_set"}
    assert train[2].path == tmp_path / "slurp" / "audio" / "slurp_synth" / "audio-s1.flac"
    real_only = open_corpus(tmp_path, synthetic=False).split("train")
    assert [u.id for u in real_only] == ["7-audio-1-headset", "7-audio-1"]
    assert label_maps(c)["scenario"] == ["alarm", "play"]
    # audio root given by the user
    moved = tmp_path / "elsewhere"
    (tmp_path / "slurp" / "audio").rename(moved)
    with pytest.raises(FileNotFoundError, match="audio_root"):
        open_corpus(tmp_path)
    assert len(open_corpus(tmp_path, audio_root=moved).split("train")) == 3


def test_slurp_bad_inputs(tmp_path, caplog):
    s = slurp(tmp_path)
    devel = s / "dataset" / "slurp" / "devel.jsonl"
    good = devel.read_text()
    devel.write_text(good + "{not json\n")
    with pytest.raises(ValueError, match=r"devel\.jsonl:2: line is not JSON"):
        open_corpus(tmp_path)
    devel.write_text(good + "{not json\n" + json.dumps({"slurp_id": 3, "sentence": "x"}) + "\n")
    with caplog.at_level(logging.WARNING, logger="bench.data"):
        c = open_corpus(tmp_path, skip_bad=True)
    assert len(c.split("devel")) == 1 and len(c.problems) == 2
    assert re.search(r"skipped 2 bad example", caplog.text) and "devel.jsonl:3: missing key(s) scenario" in caplog.text
    devel.write_text(good)
    (s / "audio" / "slurp_real" / "audio-1.flac").unlink()
    with pytest.raises(FileNotFoundError, match=r"train\.jsonl:1: recording audio-1\.flac not found"):
        open_corpus(tmp_path)
    junk(s / "audio" / "slurp_real" / "audio-1.flac")
    with pytest.raises(ValueError, match="audio-1.flac"):
        open_corpus(tmp_path)
    (s / "dataset" / "slurp" / "train_synthetic.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="train_synthetic.jsonl"):
        open_corpus(tmp_path, skip_bad=True)


# ---------------------------------------------------------- detection and CLI

def test_detection_and_cli_over_several_corpora(tmp_path, capsys):
    librispeech(tmp_path)
    speech_commands(tmp_path)
    fsc(tmp_path)
    slurp(tmp_path)
    found = detect_kinds(tmp_path)
    assert found == {"librispeech": tmp_path / "LibriSpeech", "speech_commands": tmp_path / "speech_commands_v0.01",
                     "fsc": tmp_path / "fluent_speech_commands_dataset", "slurp": tmp_path / "slurp"}
    with pytest.raises(ValueError, match="several corpora.*librispeech.*slurp"):
        open_corpus(tmp_path)
    with pytest.raises(ValueError, match="unknown corpus kind 'timit'"):
        open_corpus(tmp_path, "timit")
    with pytest.raises(FileNotFoundError, match="no fsc corpus"):
        open_corpus(tmp_path / "slurp", "fsc")
    assert main(["corpus", "info", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["corpora"]) == {"librispeech", "speech_commands", "fsc", "slurp"}
    assert out["corpora"]["fsc"]["splits"]["train"]["labels"]["action"] == {"activate": 1, "bring": 1, "increase": 1}
    assert out["corpora"]["slurp"]["splits"]["train"]["utterances"] == 3
    assert out["corpora"]["speech_commands"]["splits"]["test"]["labels"]["keyword"] == {
        "_silence_": 1, "_unknown_": 1, "yes": 1}
    assert main(["corpus", "info", str(tmp_path / "LibriSpeech")]) == 0
    text = capsys.readouterr().out
    assert "dev-clean: 2 utterances" in text and "alignments: 2/2 utterances (100.0%)" in text
    assert text.strip().splitlines()[-1].startswith("summarised 1 corpus(es)")
    assert main(["corpus", "info", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_ks_samplers_draw_s3prl_class_balance(tmp_path):
    """Train and dev draws weigh classes and files exactly as s3prl's WeightedRandomSampler over
    its SpeechCommandsDataset (a noise file is one entry, cropped at random on each draw)."""
    from collections import Counter

    import tasks
    from bench.data import BalancedSampler
    from bench.probe import _dev_draws
    from upstreams.s3prl_compat import install

    install()
    from s3prl.downstream.speech_commands.dataset import SpeechCommandsDataset

    speech_commands(tmp_path)
    c = open_corpus(tmp_path, "speech_commands")
    ks = tasks.get("ks")
    for split in ("train", "dev"):
        utts = c.split(split)
        words = [(u.path.parent.name, u.path) for u in utts if u.labels["keyword"] != "_silence_"]
        ref = SpeechCommandsDataset(words, speech_commands_root=str(tmp_path / "speech_commands_v0.01"))
        p_ref = np.array(ref.sample_weights) / sum(ref.sample_weights)
        ref_class, ref_file = Counter(), Counter()
        for (cls, path), q in zip(ref.data, p_ref):
            ref_class[cls] += q
            ref_file[Path(path).name] += q
        sampler = BalancedSampler(*ks.balanced_draw(utts))
        ours_class, ours_file = Counter(), Counter()
        for u, q in zip(utts, sampler.p):
            ours_class[u.labels["keyword"]] += q
            ours_file[u.path.name] += q
        assert len(sampler) == len(ref)  # one pass draws s3prl's len(dataset) items
        assert ours_class.keys() == ref_class.keys() and ours_file.keys() == ref_file.keys()
        for k in ref_class:
            assert abs(ours_class[k] - ref_class[k]) < 1e-12, k
        for k in ref_file:
            assert abs(ours_file[k] - ref_file[k]) < 1e-12, k
    # the dev scoring draw is fresh at every evaluation and reproducible
    draws = _dev_draws(ks, c.split("dev"), "balanced", seed=0)
    again = _dev_draws(ks, c.split("dev"), "balanced", seed=0)
    assert (draws.indices(0) == again.indices(0)).all() and (draws.indices(0) != draws.indices(1)).any()
    assert _dev_draws(ks, c.split("dev"), "all", seed=0) is None
    with pytest.raises(ValueError, match="dev_sampler: balanced needs a class-balanced task"):
        _dev_draws(tasks.get("ic"), c.split("dev"), "balanced", seed=0)
