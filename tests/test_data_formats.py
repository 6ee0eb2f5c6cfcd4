"""Audio reading, TextGrid read/write, ARPAbet normalisation and the balanced sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from bench.data import BalancedSampler, Segment, Utterance, read_audio, read_textgrid, write_textgrid
from bench.data.arpabet import PHONES39, is_silence, normalize_phone, strip_stress

# A TextGrid as MFA 2.x writes it (long format), written by hand: leading/trailing silence
# as empty labels, a "sp" pause between the words, stress digits on vowels.
MFA_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.5
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.61
            text = "hello"
        intervals [3]:
            xmin = 0.61
            xmax = 1.3
            text = "world"
        intervals [4]:
            xmin = 1.3
            xmax = 1.5
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.5
        intervals: size = 11
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = "sil"
        intervals [2]:
            xmin = 0.2
            xmax = 0.3
            text = "HH"
        intervals [3]:
            xmin = 0.3
            xmax = 0.4
            text = "AH0"
        intervals [4]:
            xmin = 0.4
            xmax = 0.5
            text = "L"
        intervals [5]:
            xmin = 0.5
            xmax = 0.61
            text = "OW1"
        intervals [6]:
            xmin = 0.61
            xmax = 0.65
            text = "sp"
        intervals [7]:
            xmin = 0.65
            xmax = 0.8
            text = "W"
        intervals [8]:
            xmin = 0.8
            xmax = 1.0
            text = "ER1"
        intervals [9]:
            xmin = 1.0
            xmax = 1.1
            text = "L"
        intervals [10]:
            xmin = 1.1
            xmax = 1.3
            text = "D"
        intervals [11]:
            xmin = 1.3
            xmax = 1.5
            text = ""
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
2.0
<exists>
1
"IntervalTier"
"words"
0
2.0
2
0
1.25
"say ""hi"""
1.25
2.0
""
'''


def test_read_mfa_textgrid_exact_segments(tmp_path):
    p = tmp_path / "a.TextGrid"
    p.write_text(MFA_TEXTGRID, encoding="utf-8")
    tiers = read_textgrid(p)
    assert list(tiers) == ["words", "phones"]
    assert tiers["words"] == [Segment("", 0.0, 0.2), Segment("hello", 0.2, 0.61), Segment("world", 0.61, 1.3),
                              Segment("", 1.3, 1.5)]
    assert [s.label for s in tiers["phones"]] == ["sil", "HH", "AH0", "L", "OW1", "sp", "W", "ER1", "L", "D", ""]
    assert tiers["phones"][4] == Segment("OW1", 0.5, 0.61)


def test_read_short_format_and_quote_escape(tmp_path):
    p = tmp_path / "short.TextGrid"
    p.write_text(SHORT_TEXTGRID, encoding="utf-8")
    assert read_textgrid(p) == {"words": [Segment('say "hi"', 0.0, 1.25), Segment("", 1.25, 2.0)]}


def test_textgrid_errors_name_the_file(tmp_path):
    p = tmp_path / "broken.TextGrid"
    p.write_text(MFA_TEXTGRID[: len(MFA_TEXTGRID) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match="broken.TextGrid"):
        read_textgrid(p)
    q = tmp_path / "notgrid.TextGrid"
    q.write_text("hello world", encoding="utf-8")
    with pytest.raises(ValueError, match="notgrid.TextGrid"):
        read_textgrid(q)
    with pytest.raises(FileNotFoundError, match="missing.TextGrid"):
        read_textgrid(tmp_path / "missing.TextGrid")


def test_write_textgrid_fills_gaps_and_round_trips(tmp_path):
    words = [Segment("HELLO", 0.1, 0.5), Segment("WORLD", 0.5, 0.9)]
    phones = [Segment("HH", 0.1, 0.2), Segment("AH0", 0.2, 0.5), Segment("W", 0.55, 0.9)]
    p = write_textgrid(tmp_path / "sub" / "x.TextGrid", {"words": words, "phones": phones}, xmax=np.float64(1.0))
    tiers = read_textgrid(p)
    assert tiers["words"] == [Segment("", 0.0, 0.1)] + words + [Segment("", 0.9, 1.0)]
    assert tiers["phones"] == [Segment("", 0.0, 0.1), phones[0], phones[1], Segment("", 0.5, 0.55), phones[2],
                               Segment("", 0.9, 1.0)]
    with pytest.raises(ValueError, match="overlaps"):
        write_textgrid(tmp_path / "bad.TextGrid", {"words": [Segment("A", 0.0, 0.5), Segment("B", 0.4, 0.6)]}, 1.0)


def test_arpabet():
    assert len(PHONES39) == 39 and list(PHONES39) == sorted(PHONES39)
    assert {"AA", "ZH", "NG", "HH"} <= set(PHONES39) and "AX" not in PHONES39
    assert strip_stress("AH0") == "AH" and strip_stress("er1") == "ER" and strip_stress("T") == "T"
    for sil in ["", " ", "sil", "SIL", "sp", "spn", "<eps>"]:
        assert is_silence(sil) and normalize_phone(sil) is None
    assert not is_silence("AH0")
    assert normalize_phone("IY2") == "IY" and normalize_phone("zh") == "ZH"
    with pytest.raises(ValueError, match="AX0"):
        normalize_phone("AX0")
    with pytest.raises(ValueError, match="'Q'"):
        normalize_phone("Q")


def test_read_audio_resamples_and_downmixes(tmp_path):
    sr = 8000
    t = np.arange(sr) / sr  # one second
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, -0.2 * left], axis=1)  # mean = (0.5 - 0.1) / 2 = 0.2 amplitude
    p = tmp_path / "st.wav"
    sf.write(p, stereo, sr, subtype="FLOAT")
    wav = read_audio(p)
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.shape == (16000,)
    expected = 0.2 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(wav[200:-200] - expected[200:-200]).max() < 5e-3  # away from the filter edges
    # a crop reads exactly its samples, offsets in seconds
    crop = read_audio(p, offset=0.25, duration=0.5)
    assert crop.shape == (8000,)
    assert np.abs(crop[200:-200] - expected[4000 + 200:12000 - 200]).max() < 5e-3


def test_read_audio_16k_flac_is_exact(tmp_path):
    x = (np.random.default_rng(0).integers(-2000, 2000, 4000)).astype(np.int16)
    p = tmp_path / "a.flac"
    sf.write(p, x, 16000)
    assert np.array_equal(read_audio(p), x.astype(np.float32) / 32768)
    u = Utterance(id="a", path=p, duration=0.125, offset=0.1)
    assert np.array_equal(u.load(), x[1600:3600].astype(np.float32) / 32768)


def test_read_audio_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")
    bad = tmp_path / "junk.flac"
    bad.write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(ValueError, match="junk.flac"):
        read_audio(bad)
    p = tmp_path / "short.wav"
    sf.write(p, np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="short.wav"):
        read_audio(p, offset=0.05, duration=0.1)


def test_balanced_sampler_is_balanced_and_deterministic():
    labels = ["a"] * 90 + ["b"] * 9 + ["c"] * 1
    s = BalancedSampler(labels, num_samples=30000, seed=3)
    first = list(s)
    counts = Counter(labels[i] for i in first)
    for lab in "abc":
        assert abs(counts[lab] / 30000 - 1 / 3) < 0.02
    second = list(s)  # next epoch: a different draw
    assert first != second
    s2 = BalancedSampler(labels, num_samples=30000, seed=3)
    assert list(s2) == first and list(s2) == second
    s2.set_epoch(0)
    assert list(s2) == first
    assert list(BalancedSampler(labels, num_samples=30000, seed=4)) != first
    assert len(s) == 30000 and len(BalancedSampler(labels)) == 100
    with pytest.raises(ValueError):
        BalancedSampler([])
