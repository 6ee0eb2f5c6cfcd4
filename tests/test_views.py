"""CCA views: mel recipe, frame pairing, segment frame indexing and means, sampling, word vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from bench import views
from bench.embeddings import read_word_vectors
from bench.types import SAMPLE_RATE, LayerSpec


# ----------------------------------------------------------------- segment frame indexing


def test_segment_frames_floor_ceil_and_middle_third_on_known_numbers():
    # 0.10 s .. 0.25 s at 20 ms: floor(5.0) = 5, ceil(12.5) = 13 -> 8 frames; middle third drops 2 each end.
    lo, hi = views.segment_frames([0.10], [0.25], stride=320, n_valid=100)
    assert (lo[0], hi[0]) == (5, 13)
    lo, hi = views.segment_frames([0.10], [0.25], stride=320, n_valid=100, middle_third=True)
    assert (lo[0], hi[0]) == (7, 11)
    # Same segment at 10 ms: frames 10..25 (15 frames), middle third = 15..20.
    lo, hi = views.segment_frames([0.10], [0.25], stride=160, n_valid=100, middle_third=True)
    assert (lo[0], hi[0]) == (15, 20)
    # Short segments keep all their frames (n // 3 == 0); 3 frames keep the middle one.
    lo, hi = views.segment_frames([0.10, 0.10], [0.13, 0.16], stride=320, n_valid=100, middle_third=True)
    assert list(zip(lo, hi)) == [(5, 7), (6, 7)]


def test_segment_frames_exact_on_frame_edges_and_clipped_to_valid_length():
    # 0.06 / 0.02 is 2.9999999999999996 in floats; the sample-offset arithmetic gives exactly 3.
    lo, hi = views.segment_frames([0.06], [0.12], stride=320, n_valid=100)
    assert (lo[0], hi[0]) == (3, 6)
    # Clipped to the valid frames, then the middle third of what is left.
    lo, hi = views.segment_frames([0.10], [0.25], stride=320, n_valid=12)
    assert (lo[0], hi[0]) == (5, 12)
    lo, hi = views.segment_frames([0.10], [0.25], stride=320, n_valid=12, middle_third=True)
    assert (lo[0], hi[0]) == (7, 10)
    # A segment past the end of the valid frames has none.
    lo, hi = views.segment_frames([2.0], [2.3], stride=320, n_valid=50)
    assert hi[0] <= lo[0]


def test_segment_means_match_a_loop_and_zero_for_empty():
    rng = np.random.default_rng(0)
    h = torch.tensor(rng.normal(size=(30, 5)), dtype=torch.float32)
    lo = np.array([0, 3, 10, 29, 12])
    hi = np.array([1, 9, 30, 30, 12])
    got = views.segment_means(h, lo, hi)
    for i in range(4):
        np.testing.assert_allclose(got[i], h[lo[i]:hi[i]].numpy().mean(0), rtol=1e-5, atol=1e-6)
    assert np.all(got[4] == 0)


# ----------------------------------------------------------------- mel


def _direct_log_mel(wave: np.ndarray) -> np.ndarray:
    """The recipe written out: peak 0.999, pre-emphasis 0.97, zero-padded centred frames,
    Hann(400) centred in 2048, |rfft|, Slaney mel, dB re. 1.0 floored 80 dB below the max."""
    n_fft, win, hop = 2048, 400, 160
    x = wave.astype(np.float64) / np.abs(wave).max() * 0.999
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    padded = np.pad(x, n_fft // 2)
    n_frames = 1 + len(wave) // hop
    window = np.zeros(n_fft)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    window[(n_fft - win) // 2:(n_fft - win) // 2 + win] = hann
    frames = np.stack([padded[t * hop:t * hop + n_fft] * window for t in range(n_frames)])
    mag = np.abs(np.fft.rfft(frames, axis=1))
    fb = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 50.0, SAMPLE_RATE / 2, 80, SAMPLE_RATE,
                                               norm="slaney", mel_scale="slaney").double().numpy()
    mel = mag @ fb
    db = 20 * np.log10(np.maximum(mel, 1e-5))
    db = np.maximum(db, db.max() - 80.0)
    return db / 80.0 + 1.0


def test_log_mel_matches_direct_computation_and_spans_top_db():
    rng = np.random.default_rng(1)
    t = np.arange(int(0.8 * SAMPLE_RATE)) / SAMPLE_RATE
    wave = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.01 * rng.normal(size=len(t))).astype(np.float32)
    got = views.LogMel()(wave)
    assert got.shape == (1 + len(wave) // 160, 80)
    assert got.dtype == np.float32
    assert got.max() - got.min() <= 1.0 + 1e-6  # top_db (80 dB) of range, in units of top_db
    np.testing.assert_allclose(got, _direct_log_mel(wave), atol=2e-4)
    # dB re. 1.0 (librosa's default), not re. the utterance maximum: gain moves the values
    assert abs(float(views.LogMel(views.MelRecipe(peak_normalize=False))(0.1 * wave).max() - got.max())) > 0.1
    # The loudest band of a 1 kHz tone is the band whose Slaney filter peaks nearest 1 kHz.
    fb = torchaudio.functional.melscale_fbanks(1025, 50.0, 8000.0, 80, SAMPLE_RATE, norm="slaney", mel_scale="slaney")
    peak_hz = fb.argmax(0).numpy() * SAMPLE_RATE / 2048
    assert int(got[5:-5].mean(0).argmax()) == int(np.abs(peak_hz - 1000).argmin())


def test_silence_floor_is_top_db_below_the_peak():
    wave = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    wave[4000:4400] = 0.5
    got = views.LogMel()(wave)
    assert got.min() == pytest.approx(got.max() - 1.0)  # 80 dB or more below the peak -> the floor


# ----------------------------------------------------------------- frame pairing and sampling


def test_frame_pairs_decimate_mel_for_20ms_and_read_fine_layers_at_10ms():
    li, mi = views.frame_pairs(n_layer=50, stride=320, n_mel=101)
    assert len(li) == 50 and list(li[:3]) == [0, 1, 2] and list(mi[:3]) == [0, 2, 4] and mi[-1] == 98
    li, mi = views.frame_pairs(n_layer=100, stride=160, n_mel=101)
    assert np.array_equal(li, mi) and len(li) == 100
    li, mi = views.frame_pairs(n_layer=200, stride=80, n_mel=101)  # 5 ms layer -> every 2nd frame at 10 ms
    assert len(li) == 100 and list(li[:3]) == [0, 2, 4] and list(mi[:3]) == [0, 1, 2]
    li, mi = views.frame_pairs(n_layer=10, stride=320, n_mel=101)  # short layer bounds the pairs
    assert len(li) == 10 and mi[-1] == 18


def test_frame_gatherer_pairs_layer_frames_with_their_mel_frames_and_caps_deterministically():
    layers = [LayerSpec("a", 0, 1, 160), LayerSpec("b", 1, 1, 320), LayerSpec("c", 2, 1, 320)]
    rng = np.random.default_rng(2)
    wave = rng.normal(size=SAMPLE_RATE).astype(np.float32)
    mel = views.LogMel()(wave)
    # Each layer's frame t holds t, so the gathered rows say which frame was taken.
    hidden = [torch.arange(100.0).unsqueeze(1), torch.arange(50.0).unsqueeze(1), torch.arange(50.0).unsqueeze(1)]

    def gather(keep):
        g = views.FrameGatherer(layers, keep, seed=0, mel=views.LogMel())
        g.add(0, wave, hidden, [100, 50, 50])
        return [g.layer(i) for i in range(3)]

    full = gather({160: 1.0, 320: 1.0})
    x, y = full[1]
    assert len(x) == 50
    np.testing.assert_array_equal(y, mel[x[:, 0].astype(int) * 2])
    x, y = full[0]
    np.testing.assert_array_equal(y, mel[x[:, 0].astype(int)])

    half = gather({160: 0.5, 320: 0.5})
    assert len(half[0][0]) == 50 and len(half[1][0]) == 25
    np.testing.assert_array_equal(half[1][0], half[2][0])  # same stride -> same frames
    again = gather({160: 0.5, 320: 0.5})
    np.testing.assert_array_equal(half[0][0], again[0][0])
    fracs = views.FrameGatherer.keep_fractions(layers, seconds=100.0, max_frames=2500)
    assert fracs == {160: 0.25, 320: 0.5}


# ----------------------------------------------------------------- segment sampling


def _seg(key, label, s, e):
    return views.SegmentSample(key, label, s, e)


def test_sample_segments_caps_per_label_and_is_seeded():
    pool = {"a": [_seg(i, "a", 0.0, 0.1) for i in range(50)], "b": [_seg(i, "b", 0.0, 0.1) for i in range(3)]}
    got = views.sample_segments(pool, ["a", "b"], per_label=10, seed=[0, 1])
    assert sum(s.label == "a" for s in got) == 10 and sum(s.label == "b" for s in got) == 3
    assert got == views.sample_segments(pool, ["a", "b"], per_label=10, seed=[0, 1])
    assert got != views.sample_segments(pool, ["a", "b"], per_label=10, seed=[1, 1])
    ranged = views.sample_segments(pool, ["a", "b"], per_label=[20, 30], seed=0)
    n_a = sum(s.label == "a" for s in ranged)
    assert 20 <= n_a <= 30 and sum(s.label == "b" for s in ranged) == 3


def test_frequent_labels_rank_by_count_with_min_count():
    pool = {w: [_seg(0, w, 0, 1)] * n for w, n in {"the": 9, "a": 9, "cat": 4, "sat": 1}.items()}
    assert views.frequent_labels(pool, top=3) == ["a", "the", "cat"]
    assert views.frequent_labels(pool, top=10, min_count=2) == ["a", "the", "cat"]


def test_segment_gatherer_drops_a_segment_without_frames_in_any_layer():
    layers = [LayerSpec("fine", 0, 2, 160), LayerSpec("coarse", 1, 3, 320)]
    samples = [_seg("u", "x", 0.00, 0.10), _seg("u", "y", 0.40, 0.50), _seg("u", "z", 0.58, 0.70)]
    g = views.SegmentGatherer(samples, layers, middle_third=False)
    # fine: 60 valid frames (0.60 s); coarse: 29 valid frames (0.58 s) -> "z" has no coarse frames.
    hidden = [torch.arange(120.0).reshape(60, 2), torch.arange(90.0).reshape(30, 3)]
    g.add("u", hidden, [60, 29])
    g.add("other", hidden, [60, 29])  # utterances without samples are ignored
    rows, labels, skipped = g.result()
    assert labels == ["x", "y"] and skipped == 1
    np.testing.assert_allclose(rows[0][0], hidden[0][0:10].mean(0).numpy())
    np.testing.assert_allclose(rows[1][1], hidden[1][20:25].mean(0).numpy())


def test_one_hot_over_present_classes():
    y, classes = views.one_hot(["b", "a", "b"])
    assert classes == ["a", "b"]
    np.testing.assert_array_equal(y, [[0, 1], [1, 0], [0, 1]])


# ----------------------------------------------------------------- word vectors


def test_word_vector_reader_reads_glove_text_and_filters(tmp_path):
    f = tmp_path / "vec.txt"
    f.write_text("the 0.1 0.2 0.3\nCat 1 2 3\ndog -1 -2 -3.5\n")
    vecs = read_word_vectors(f)
    assert set(vecs) == {"the", "cat", "dog"}
    np.testing.assert_array_equal(vecs["dog"], [-1, -2, -3.5])
    assert set(read_word_vectors(f, words={"cat", "bird"})) == {"cat"}
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("2 2\na 1 2\nb 3 4\n")
    assert set(read_word_vectors(w2v)) == {"a", "b"}


@pytest.mark.parametrize("body, line, what", [
    ("a 1 2\nb 1 x\n", 2, "non-numeric"),
    ("a 1 2\nb 1 2 3\n", 2, "has 3 values"),
    ("a 1 2\nlonely\n", 2, "expected"),
    ("a 1 2\nb nan 2\n", 2, "nan or inf"),
])
def test_word_vector_reader_errors_name_file_and_line(tmp_path, body, line, what):
    f = tmp_path / "bad.txt"
    f.write_text(body)
    with pytest.raises(ValueError, match=rf"bad\.txt:{line}:.*{what}"):
        read_word_vectors(f)


def test_word_vector_reader_missing_or_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_word_vectors(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="no vectors"):
        read_word_vectors(tmp_path / "empty.txt")


def test_sample_sets_repeat_only_where_the_data_allow():
    from bench.views import SegmentSample, sample_segment_sets

    pool = {"A": [SegmentSample(("u", i), "A", i, i + 0.5) for i in range(10)],
            "B": [SegmentSample(("v", i), "B", i, i + 0.5) for i in range(2)]}
    union, sets = sample_segment_sets(pool, ["A", "B"], 3, [0, 1], 3)
    assert len(sets) == 3
    for st in sets:  # each set: 3 of A (the cap), both of B
        assert sorted(union[i].label for i in st) == ["A", "A", "A", "B", "B"]
    assert len({tuple(sorted(st)) for st in sets}) > 1  # independent draws differ
    assert len(union) == len({i for st in sets for i in st})  # one gather covers every set
    union, sets = sample_segment_sets(pool, ["A", "B"], 20, [0, 1], 3)  # the cap takes everything
    assert len(sets) == 1 and len(union) == 12
