"""Layer-wise CCA orchestration: one upstream pass for all properties, results, resume, CLI.

The handmade corpus has phones that are pure tones (each phone its own frequency), so a
layer of band energies carries phone identity and a noise layer does not: the right
ordering of scores is known in advance.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.config import ConfigError
from bench.data.manifest import Corpus, Segment, Utterance
from bench.cca_properties import expand as expand_properties
from bench.layerwise_cca import plan_cca, run_cca
from bench.types import SAMPLE_RATE, LayerSpec, UpstreamOutput

PHONE_HZ = {"AA1": 300.0, "IY1": 700.0, "S": 1500.0, "M": 2300.0, "F": 3100.0, "UW0": 3900.0}
WORDS = {"ma": ["M", "AA1"], "see": ["S", "IY1"], "few": ["F", "UW0"], "sam": ["S", "AA1", "M"], "me": ["M", "IY1"]}


def _utterance(folder, uid: str, rng: np.random.Generator) -> Utterance:
    pieces, words, phones = [np.zeros(1600)], [], [Segment("sil", 0.0, 0.1)]
    t = 0.1
    for w in rng.choice(list(WORDS), size=int(rng.integers(3, 6))):
        w_start = t
        for p in WORDS[w]:
            n = int(rng.integers(6, 15)) * 160
            k = np.arange(n) / SAMPLE_RATE
            pieces.append(0.3 * np.sin(2 * np.pi * PHONE_HZ[p] * k + rng.uniform(0, 6)))
            phones.append(Segment(p, t, t + n / SAMPLE_RATE))
            t += n / SAMPLE_RATE
        words.append(Segment(str(w).upper() if rng.random() < 0.5 else str(w), w_start, t))
    pieces.append(np.zeros(1600))
    phones.append(Segment("", t, t + 0.1))
    wave = np.concatenate(pieces) + 0.003 * rng.normal(size=sum(len(p) for p in pieces))
    path = folder / f"{uid}.wav"
    sf.write(path, wave.astype(np.float32), SAMPLE_RATE)
    return Utterance(id=uid, path=path, duration=len(wave) / SAMPLE_RATE, words=words, phones=phones)


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory) -> Corpus:
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    splits = {
        "dev-clean": [_utterance(folder, f"dev-{i}", rng) for i in range(24)],
        "train-clean-100": [_utterance(folder, f"train-{i}", rng) for i in range(24)],
    }
    return Corpus(kind="librispeech", root=folder, splits=splits)


class CountingUpstream:
    """Three layers: band energies at 10 ms, their 20 ms pooled rotation, and 20 ms noise."""

    spec = "fake:tones"
    revision = "test"
    num_params = 0

    def __init__(self):
        self.calls = 0
        self.layers = [LayerSpec("bands", 0, 8, 160), LayerSpec("pooled", 1, 8, 320), LayerSpec("noise", 2, 8, 320)]
        self.rot = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))[0]

    def to(self, device):
        return self

    def __call__(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        self.calls += 1
        padded = torch.nn.functional.pad(wavs, (0, 240))
        spec = torch.stft(padded, n_fft=400, hop_length=160, window=torch.hann_window(400), center=False,
                          return_complex=True).abs().transpose(1, 2)  # [B, T, 201]
        bands = torch.log(spec[:, :, 1:193].reshape(*spec.shape[:2], 8, 24).mean(-1) + 1e-4)
        n10 = wav_lens // 160
        t20 = bands.shape[1] // 2
        pooled = bands[:, : 2 * t20].reshape(bands.shape[0], t20, 2, 8).mean(2) @ self.rot
        noise = torch.randn(pooled.shape, generator=torch.Generator().manual_seed(self.calls))
        return UpstreamOutput(hidden=[bands, pooled, noise], lengths=[n10, n10 // 2, n10 // 2])


SMALL = {
    "batch": {"max_seconds": 1e9, "max_size": 4},
    "mel": {"num_utterances": 10, "max_frames": 1500},
    "phone": {"per_label": 30},
    "word": {"num_words": 5, "min_count": 3, "per_label": 12},
    "mi": {"train_per_phone": [20, 40], "train_per_word": [10, 20], "k_phone": 12, "k_word": 10},
}


def test_all_properties_from_one_pass_and_known_score_order(tone_corpus, tmp_path):
    up = CountingUpstream()
    outcomes = run_cca(up, tone_corpus, ["mel", "phone", "word", "mi"], preset="quick", overrides=SMALL,
                       out_dir=tmp_path, progress=False, device="cpu")
    assert [o.result.property for o in outcomes] == ["mel", "phone", "word", "mi_phone", "mi_word"]
    n_utts = outcomes[0].result.timings["pass_utterances"]
    # One forward per batch of 4 for everything: not per layer, not per property.
    assert up.calls == math.ceil(n_utts / 4)
    for o in outcomes:
        r = json.loads(o.path.read_text())
        assert r["kind"] == "cca" and r["upstream"] == "fake:tones" and r["config_hash"] == o.result.config_hash
        assert [e["name"] for e in r["per_layer"]] == ["bands", "pooled", "noise"]
        for e in r["per_layer"]:
            assert -1.0 <= e["score"] <= 1.0 and e["n_samples"] > 0
    by = {o.result.property: {e.name: e.score for e in o.result.per_layer} for o in outcomes}
    for prop in ("mel", "phone", "word", "mi_phone"):
        assert by[prop]["bands"] > by[prop]["noise"] + 0.2, (prop, by[prop])
        assert by[prop]["pooled"] > by[prop]["noise"] + 0.2, (prop, by[prop])
    print(by)
    assert by["phone"]["bands"] > 0.6
    phone = outcomes[1].result
    # All layers describe the same segments; 6 phones x up to 30, words lower-cased into 5 classes.
    assert len({e.extra["n_samples"] for e in phone.per_layer}) == 1
    assert phone.details["n_classes"] == 6
    assert outcomes[2].result.details["n_classes"] == 5
    assert outcomes[3].result.per_layer[0].extra["splits"][0]["k"] == 12


def test_resume_skips_finished_properties_and_hash_follows_relevant_config(tone_corpus, tmp_path):
    up = CountingUpstream()
    first = run_cca(up, tone_corpus, ["mel", "phone"], preset="quick", overrides=SMALL, out_dir=tmp_path,
                    progress=False, device="cpu")
    calls = up.calls
    again = run_cca(up, tone_corpus, ["mel", "phone"], preset="quick", overrides=SMALL, out_dir=tmp_path,
                    progress=False, device="cpu")
    assert up.calls == calls and all(o.skipped for o in again)
    assert [o.result.per_layer for o in again] == [o.result.per_layer for o in first]
    plan = {p: h for p, _, _, h in plan_cca(up, tone_corpus, ["mel", "phone"], preset="quick",
                                            overrides=SMALL, out_dir=tmp_path)}
    assert plan == {o.result.property: o.result.config_hash for o in first}
    changed = {**SMALL, "phone": {"per_label": 25}}
    plan2 = {p: h for p, _, _, h in plan_cca(up, tone_corpus, ["mel", "phone"], preset="quick",
                                             overrides=changed, out_dir=tmp_path)}
    assert plan2["mel"] == plan["mel"] and plan2["phone"] != plan["phone"]
    # Only the changed property runs, with the same scores for the same seed when nothing changed.
    mixed = run_cca(up, tone_corpus, ["mel", "phone"], preset="quick", overrides=changed, out_dir=tmp_path,
                    progress=False, device="cpu")
    assert [o.skipped for o in mixed] == [True, False] and up.calls > calls


def test_shuffled_labels_control_and_word_vectors(tone_corpus, tmp_path):
    vec = tmp_path / "vectors.txt"
    rng = np.random.default_rng(3)
    vec.write_text("".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=6)) + "\n"
                           for w in ["ma", "see", "few", "sam"]))  # "me" is missing on purpose
    props = ["phone", f"glove:{vec}"]
    real = run_cca(CountingUpstream(), tone_corpus, props, preset="quick", overrides=SMALL,
                   out_dir=tmp_path / "real", progress=False, device="cpu")
    ctrl = run_cca(CountingUpstream(), tone_corpus, props, preset="quick", overrides={**SMALL, "shuffle_labels": True},
                   out_dir=tmp_path / "ctrl", progress=False, device="cpu")
    score = lambda o: o.result.per_layer[0].score  # noqa: E731
    assert score(real[0]) > score(ctrl[0]) + 0.5
    assert score(real[1]) > score(ctrl[1]) + 0.3
    g = real[1].result.details
    assert g["n_missing_words"] == 1 and g["missing_words"] == ["me"] and g["n_words"] == 4
    assert g["n_missing_segments"] > 0
    # 4 words span 3 centred dimensions: the 6-d vectors are used on their 3 principal axes.
    assert g["vector_dims_in_file"] == 6 and g["vector_dims_used"] == 3


def test_property_and_config_errors(tone_corpus, tmp_path):
    assert expand_properties("mel,mi,mel") == ["mel", "mi_phone", "mi_word"]
    with pytest.raises(ConfigError, match=r"unknown CCA property 'phones'.*mel, phone, word"):
        expand_properties(["phones"])
    with pytest.raises(ConfigError, match="unknown CCA preset 'fast'"):
        plan_cca("fbank", tone_corpus, ["mel"], preset="fast")
    with pytest.raises(ConfigError, match="unknown key 'num_utts'"):
        plan_cca("fbank", tone_corpus, ["mel"], overrides={"mel": {"num_utts": 3}})
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        plan_cca("fbank", tone_corpus, [f"glove:{tmp_path / 'nope.txt'}"])


# ----------------------------------------------------------------- the synthetic corpus, real upstreams

# The tiny corpus's dev-clean has 15 utterances; its train split (60) gives every phone
# enough segments for 10 stratified parts.
TINY = {"split": "train-clean-100", "mel": {"num_utterances": 20, "max_frames": 3000}, "phone": {"per_label": 20}}


def test_fbank_phone_cca_far_above_shuffled_labels_on_synthetic_corpus(synth_root, tmp_path):
    real = run_cca("fbank", synth_root, ["phone"], preset="quick", overrides=TINY, out_dir=tmp_path / "real",
                   progress=False, device="cpu")[0].result
    ctrl = run_cca("fbank", synth_root, ["phone"], preset="quick", overrides={**TINY, "shuffle_labels": True},
                   out_dir=tmp_path / "ctrl", progress=False, device="cpu")[0].result
    s_real, s_ctrl = real.per_layer[0].score, ctrl.per_layer[0].score
    assert real.details["n_classes"] >= 20 and real.per_layer[0].extra["n_samples"] >= 300
    assert s_real > 0.3 and s_real > s_ctrl + 0.25, (s_real, s_ctrl)
    assert abs(s_ctrl) < 0.15


def test_cli_cca_on_synthetic_corpus_for_fbank_and_randinit(synth_root, tmp_path, capsys):
    import argparse

    from bench.cli import cca as cli_cca

    parser = argparse.ArgumentParser(prog="layerbench")
    cli_cca.register(parser.add_subparsers(dest="command"))
    for spec, n_layers in (("fbank", 1), ("randinit:hubert-tiny", 4)):
        args = parser.parse_args(["cca", "--upstream", spec, "--corpus", str(synth_root), "--property", "mel,phone",
                                  "--preset", "quick", "--out", str(tmp_path), "--device", "cpu", "--no-progress",
                                  "--set", "mel.num_utterances=8", "--set", "mel.max_frames=2000",
                                  "--set", "phone.per_label=12"])
        assert args.func(args) == 0
        out = capsys.readouterr().out
        assert out.strip().splitlines()[-1] == f"2 CCA result(s) for {spec} in {tmp_path / 'cca'}"
        assert "mel" in out.splitlines()[0] and "phone" in out.splitlines()[0]
        for prop in ("mel", "phone"):
            r = json.loads((tmp_path / "cca" / f"{spec.replace(':', '_')}__{prop}.json").read_text())
            assert len(r["per_layer"]) == n_layers
            assert all(-1.0 <= e["score"] <= 1.0 for e in r["per_layer"])
            assert r["corpus"]["split"] == "dev-clean" and r["versions"]["torch"]
            assert (r["upstream_info"]["num_params"] > 10_000) == spec.startswith("randinit")
    bad = parser.parse_args(["cca", "--upstream", "fbank", "--corpus", str(synth_root), "--property", "mel,pitch"])
    with pytest.raises(ConfigError, match="'pitch'"):
        bad.func(bad)
