"""MR-HuBERT through s3prl from a local random-weight checkpoint (built with s3prl's own
multires_hubert model code and config): every layer at its own stride, matching s3prl's expert
position by position, and every consumer (describe, CCA mel/phone/word/MI, probes with the
weighted sum across rates) on the tiny corpus."""

from __future__ import annotations

import pytest
import torch
from upstream_fixtures import make_s3prl_mrhubert_ckpt, padded_audio, per_utterance_gap

import upstreams
from bench.probe import align_frames, weighted_sum_layers

TWO = ["enc0.T0", "enc0.T1", "enc0.T2", "D0", "mid.T3", "mid.T4", "mid.T5", "U0", "dec0.T6", "dec0.T7", "dec0.T8"]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("mrhubert")
    return {2: make_s3prl_mrhubert_ckpt(root / "mr2.pt"), 3: make_s3prl_mrhubert_ckpt(root / "mr3.pt", (1, 2, 1, 2))}


def _load(path):
    return upstreams.load(f"s3prl:multires_hubert_local,ckpt={path}")


def test_layers_at_their_own_rates(ckpts):
    up = _load(ckpts[2])
    assert [s.name for s in up.layers] == TWO and [s.index for s in up.layers] == list(range(11))
    assert [s.stride for s in up.layers] == [320] * 3 + [640] * 4 + [320] * 4
    assert [s.weighted_sum for s in up.layers] == [n not in ("D0", "U0") for n in TWO]
    three = _load(ckpts[3])
    assert sorted({s.stride for s in three.layers}) == [320, 640, 1280]
    assert [s.name for s in three.layers if not s.weighted_sum] == ["D0", "D1", "U0", "U1"]
    assert [(s.name, s.stride) for s in three.layers if s.name.startswith("mid")] == [
        ("mid.T6", 1280), ("mid.T7", 1280), ("mid.T8", 1280)]
    wavs, lens = padded_audio([16000, 12345, 7001], seed=1)
    with torch.inference_mode():
        out = three(wavs, lens)
    for spec, h, n in zip(three.layers, out.hidden, out.lengths):
        assert h.shape[1] == int(n.max())
        # frame counts follow each layer's own stride (a decoder block may run one frame over)
        assert all(abs(int(k) - -(-int(s) // spec.stride)) <= 1 for k, s in zip(n, lens)), spec.name
    assert per_utterance_gap(three, wavs, lens) < 1e-5


def test_positions_match_s3prl_expert(ckpts):
    """s3prl's own expert repeats every hidden state to the finest rate and cuts all to the
    shortest: our T<t> layers, repeated the same way, are its hidden state t."""
    from s3prl.nn import S3PRLUpstream

    up = _load(ckpts[3])
    ref = S3PRLUpstream("multires_hubert_local", path_or_url=str(ckpts[3])).eval()
    wavs, lens = padded_audio([16000], seed=4)
    with torch.inference_mode():
        ours = up(wavs, lens)
        hs, _ = ref(wavs, lens)
    t_layers = [(i, s) for i, s in enumerate(up.layers) if s.weighted_sum]
    assert len(hs) == len(t_layers) and [s.name.split(".T")[1] for _, s in t_layers] == [str(t) for t in range(len(hs))]
    # the expert cuts to the shortest layer; S3PRLUpstream then pads to ceil(samples / 320) by
    # repeating the last frame: compare the frames the expert computed
    t = min(ours.hidden[i].shape[1] * (s.stride // 320) for i, s in t_layers)
    assert t >= hs[0].shape[1] - 1
    for (i, spec), h in zip(t_layers, hs):
        mine = ours.hidden[i].repeat_interleave(spec.stride // 320, dim=1)
        torch.testing.assert_close(mine[:, :t], h[:, :t], atol=1e-4, rtol=1e-4)


def test_weighted_sum_follows_superb_mrhubert(ckpts):
    specs = _load(ckpts[2]).layers
    ids = weighted_sum_layers(specs)
    assert [specs[i].name for i in ids] == [n for n in TWO if n not in ("D0", "U0")]
    x320 = torch.arange(5.0).reshape(1, 5, 1)
    x640 = torch.tensor([[[10.0], [20.0], [30.0]]])
    xs, lens = align_frames([x320, x640], [torch.tensor([5]), torch.tensor([3])], [1, 2])
    assert xs[1].flatten().tolist() == [10, 10, 20, 20, 30] and xs[0].shape == xs[1].shape and lens.tolist() == [5]
    _, lens = align_frames([x320, x640], [torch.tensor([4]), torch.tensor([1])], [1, 2])
    assert lens.tolist() == [2]


def test_describe_lists_two_and_three_strides(ckpts, capsys):
    from bench.cli import main

    for n, strides in ((2, ["320", "640"]), (3, ["320", "640", "1280"])):
        assert main(["describe", f"s3prl:multires_hubert_local,ckpt={ckpts[n]}"]) == 0
        out = capsys.readouterr().out
        rows = [r for r in (line.split() for line in out.splitlines()) if len(r) == 6 and r[0].isdigit() and r[3].isdigit()]
        assert len(rows) == (11 if n == 2 else 19)
        assert sorted({r[3] for r in rows}, key=int) == strides
        assert "D0" in out and "U0" in out and ("D1" in out) == (n == 3)


@pytest.mark.slow
def test_cca_and_probes_on_the_tiny_corpus(ckpts, synth_root, tmp_path):
    """CCA-mel / phone / word / MI and a frame task (PR) and an utterance task (KS) finish,
    every layer scored at its own stride, the weighted sum spanning both rates."""
    from bench.layerwise_cca import run_cca
    from bench.probe import run_probe

    spec = f"s3prl:multires_hubert_local,ckpt={ckpts[3]}"
    # mel at the quick preset's size: the 80 ms layers need enough frames for every CV part
    small = {"batch": {"max_seconds": 1e9, "max_size": 8},
             "phone": {"per_label": 10}, "word": {"num_words": 8, "min_count": 5, "per_label": 8},
             "mi": {"train_utterances": 30, "train_per_phone": [10, 20], "train_per_word": [5, 10],
                    "k_phone": 10, "k_word": 10}}
    outcomes = run_cca(spec, synth_root, ["mel", "phone", "word", "mi"], preset="quick", overrides=small,
                       out_dir=tmp_path, progress=False, device="cpu")
    assert [o.result.property for o in outcomes] == ["mel", "phone", "word", "mi_phone", "mi_word"]
    for o in outcomes:
        rows = o.result.per_layer
        assert [r.stride for r in rows] == [s.stride for s in _load(ckpts[3]).layers]
        assert all(r.score is not None for r in rows), o.result.property  # no NaN
    mel = outcomes[0].result.details["keep_fraction"]
    assert set(mel) == {"320", "640", "1280"}  # one mel grid per rate
    for task in ("pr", "ks"):
        res = run_probe(spec, task, synth_root, out_dir=tmp_path, progress=False, device="cpu",
                        overrides={"steps": 4, "eval_every": 2, "batch_size": 8}).result
        assert len(res.per_layer) == 19 and all(r.test is not None for r in res.per_layer)
        ws = res.weighted_sum
        assert ws.test is not None and len(ws.layers) == 15
        assert sorted(set(ws.repeat)) == [1, 2, 4]
