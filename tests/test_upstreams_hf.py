"""hf: adapter on tiny models of every HF family, saved with save_pretrained and loaded back
through the real `hf:<dir>` path."""

from __future__ import annotations

import pytest
import torch
from upstream_fixtures import padded_audio, per_utterance_gap, save_tiny_hf

import upstreams
import upstreams.hf
from upstreams.base import conv_out_lengths

# preset, feature-extractor (do_normalize, return_attention_mask), expected stride, final LN
FAMILIES = [
    ("wav2vec2-tiny", (True, False), 320, False),
    ("wav2vec2-large-tiny", (True, True), 320, True),
    ("hubert-tiny", (False, False), 320, False),
    ("hubert-large-tiny", (True, True), 320, True),
    ("wavlm-tiny", (False, True), 320, False),  # wavlm-base: group-norm conv but masks on
    ("data2vec-audio-tiny", (True, True), 320, False),
    ("unispeech-sat-tiny", (True, False), 320, False),
    ("sew-tiny", (True, False), 640, False),
    ("sew-d-tiny", (True, False), 640, False),
    ("wav2vec2-conformer-tiny", (True, True), 320, True),
]
LENGTHS = [9600, 7001, 9600, 4321]


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {p: save_tiny_hf(p, root / p, *fe) for p, fe, _, _ in FAMILIES}


@pytest.fixture(scope="module")
def audio():
    return padded_audio(LENGTHS, seed=3)


@pytest.fixture
def no_grouping(monkeypatch):
    """Fail if an adapter falls back to equal-length groups instead of one padded forward."""
    def refuse(*a, **k):
        raise AssertionError("equal-length fallback ran")

    monkeypatch.setattr(upstreams.hf, "run_in_length_groups", refuse)


@pytest.mark.parametrize("preset,fe,stride,final_norm", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_layers_lengths_and_padding(hf_dirs, audio, no_grouping, preset, fe, stride, final_norm):
    """One padded forward (no equal-length fallback) gives every utterance its features alone."""
    up = upstreams.load(f"hf:{hf_dirs[preset]}")
    assert up.batched and up.padding == "exact"
    cfg = up.model.config
    assert up.spec == f"hf:{hf_dirs[preset]}"
    assert [s.index for s in up.layers] == list(range(cfg.num_hidden_layers + 1)) == list(range(4))
    assert all(s.dim == 64 and s.stride == stride for s in up.layers)
    assert [s.final_norm for s in up.layers] == [False, False, False, final_norm]
    assert up.revision.startswith("sha256:") and up.num_params > 0
    assert not up.training and not any(p.requires_grad for p in up.parameters())
    up.train()  # probes call train() on everything; the upstream must stay frozen
    assert not up.training

    wavs, lens = audio
    with torch.inference_mode():
        out = up(wavs, lens)
    conv = up.model._get_feat_extract_output_lengths(lens)
    expected = conv // (stride // 320)  # SEW/SEW-D pool pairs of frames
    for h, n in zip(out.hidden, out.lengths):
        assert h.shape == (len(LENGTHS), int(expected.max()), 64)
        assert n.tolist() == expected.tolist()
    assert per_utterance_gap(up, wavs, lens) < 1e-4


@pytest.mark.parametrize("preset", ["hubert-tiny", "wav2vec2-large-tiny", "wav2vec2-conformer-tiny"])
def test_positions_match_transformers(hf_dirs, audio, preset):
    """Layer i is HF hidden_states[i] on the feature extractor's own input; the last layer
    is last_hidden_state (the final LayerNorm, where the model has one)."""
    from transformers import AutoFeatureExtractor, AutoModel

    up = upstreams.load(f"hf:{hf_dirs[preset]}")
    model = AutoModel.from_pretrained(hf_dirs[preset]).eval()
    fe = AutoFeatureExtractor.from_pretrained(hf_dirs[preset])
    wavs, lens = audio
    n = int(lens[1])
    inputs = fe(wavs[1, :n].numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        ref = model(inputs["input_values"], output_hidden_states=True)
        ours = up(wavs[1:2, :n], lens[1:2])
    expected = list(ref.hidden_states[:-1]) + [ref.last_hidden_state]
    for h, r in zip(ours.hidden, expected, strict=True):
        torch.testing.assert_close(h, r, atol=1e-4, rtol=1e-4)
    # a real difference: transformers 5 leaves the final LayerNorm out of hidden_states (the
    # conformer's layers already end in a LayerNorm, so there it is nearly idempotent)
    if up.layers[-1].final_norm and up.model.config.model_type != "wav2vec2-conformer":
        assert not torch.allclose(ref.hidden_states[-1], ref.last_hidden_state, atol=1e-3)


def test_input_normalisation_uses_valid_samples_only(hf_dirs):
    """A quiet utterance padded next to a loud one is normalised by its own statistics."""
    up = upstreams.load(f"hf:{hf_dirs['wav2vec2-tiny']}")
    assert up.do_normalize and up.batched
    wavs, lens = padded_audio([8000, 16000], seed=1)
    scaled = wavs.clone()
    scaled[0] *= 7.0  # normalisation makes the scale irrelevant
    with torch.inference_mode():
        a, b = up(wavs, lens), up(scaled, lens)
    for x, y in zip(a.hidden, b.hidden):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("preset", ["wav2vec2-tiny", "wav2vec2-large-tiny"])
def test_cnn_layers(hf_dirs, audio, no_grouping, preset):
    up = upstreams.load(f"hf:{hf_dirs[preset]}", cnn_layers=True)
    cfg = up.model.config
    names = [s.name for s in up.layers]
    assert names[:7] == [f"cnn{i}" for i in range(1, 8)] and names[7] == "layer0"
    assert [s.index for s in up.layers[:7]] == list(range(-7, 0))
    assert [s.stride for s in up.layers[:7]] == [5, 10, 20, 40, 80, 160, 320]
    wavs, lens = audio
    with torch.inference_mode():
        out = up(wavs, lens)
    n = lens
    for k, s, h, got in zip(cfg.conv_kernel, cfg.conv_stride, out.hidden[:7], out.lengths[:7]):
        n = conv_out_lengths(n, k, s)
        assert got.tolist() == n.tolist() and h.shape[2] == 32
    assert out.lengths[6].tolist() == out.lengths[7].tolist()
    assert per_utterance_gap(up, wavs, lens) < 1e-4


def test_missing_feature_extractor_falls_back_to_config_convention(tmp_path):
    from transformers import AutoModel

    from upstreams.randinit import preset_config

    AutoModel.from_config(preset_config("wav2vec2-large-tiny")).save_pretrained(tmp_path)
    up = upstreams.load(f"hf:{tmp_path}")
    assert up.do_normalize and up.batched


@pytest.mark.parametrize("preset,leaks", [("wav2vec2-tiny", True), ("data2vec-audio-tiny", True),
                                           ("sew-tiny", True), ("wav2vec2-large-tiny", False)])
def test_s3prl_padding_is_the_plain_padded_call(hf_dirs, audio, preset, leaks):
    """padding=s3prl is transformers' own padded forward with the padding mask (as s3prl runs
    fairseq models): padding leaks where the architecture lets it, and nowhere else."""
    from transformers import AutoModel

    up = upstreams.load(f"hf:{hf_dirs[preset]}", padding="s3prl")
    assert up.padding == "s3prl"
    wavs, lens = audio
    model = AutoModel.from_pretrained(hf_dirs[preset]).eval()
    mask = (torch.arange(wavs.shape[1])[None] < lens[:, None]).long()
    with torch.inference_mode():
        ours = up(wavs, lens)
        ref = model(upstreams.hf.normalize_valid(wavs, lens) if up.do_normalize else wavs,
                    attention_mask=mask, output_hidden_states=True)
    expected = list(ref.hidden_states[:-1]) + [ref.last_hidden_state if up.final_norm else ref.hidden_states[-1]]
    for h, r, n in zip(ours.hidden, expected, ours.lengths, strict=True):
        for i, t in enumerate(n.tolist()):
            torch.testing.assert_close(h[i, :t], r[i, :t], atol=1e-5, rtol=1e-5)
    gap = per_utterance_gap(up, wavs, lens)
    assert gap > 1e-2 if leaks else gap < 1e-4


def test_padding_option_is_checked(hf_dirs):
    with pytest.raises(ValueError, match=r"padding='fairseq' is not one of exact, s3prl"):
        upstreams.load(f"hf:{hf_dirs['hubert-tiny']}", padding="fairseq")
    with pytest.raises(ValueError, match="padding="):
        upstreams.load("randinit:hubert-tiny", padding="none")


def test_padding_mode_is_part_of_the_upstream_identity(hf_dirs):
    """padding=s3prl in the spec names another unit (spec, config hash, pooled cache) than the
    default exact padding, which the canonical spelling leaves out."""
    from bench.pooled import cache_key

    d = hf_dirs["hubert-tiny"]
    exact, s3 = upstreams.load(f"hf:{d},padding=exact"), upstreams.load(f"hf:{d},padding=s3prl")
    assert (exact.padding, s3.padding) == ("exact", "s3prl")
    assert exact.spec == f"hf:{d}" == upstreams.canonical(f"hf:{d}", padding="exact")
    assert s3.spec == f"hf:{d},padding=s3prl"
    assert cache_key(exact, "/c", "train", []) != cache_key(s3, "/c", "train", [])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset", ["wav2vec2-tiny", "wavlm-tiny", "data2vec-audio-tiny", "sew-d-tiny",
                                    "wav2vec2-conformer-tiny"])
def test_exact_padding_on_cuda(hf_dirs, audio, no_grouping, monkeypatch, preset):
    """The masked modules on the device: one padded forward == each utterance alone (fp32;
    TF32 off, whose 10-bit products would differ between batch shapes by more than 1e-4)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    up = upstreams.load(f"hf:{hf_dirs[preset]}").to("cuda")
    wavs, lens = audio
    assert per_utterance_gap(up, wavs.cuda(), lens.cuda()) < 1e-4
