"""torchaudio: the common indexing on top of torchaudio's Wav2Vec2Model, on tiny random models."""

from __future__ import annotations

import pytest
import torch
from upstream_fixtures import padded_audio, per_utterance_gap

import upstreams
from upstreams.torchaudio_pipelines import TorchaudioUpstream

CONV = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2


def tiny_model(layer_norm_first: bool):
    from torchaudio.models import wav2vec2_model

    torch.manual_seed(0)
    return wav2vec2_model(
        extractor_mode="layer_norm" if layer_norm_first else "group_norm", extractor_conv_layer_config=CONV,
        extractor_conv_bias=layer_norm_first, encoder_embed_dim=64, encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=3, encoder_num_heads=2,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=128, encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0, encoder_layer_norm_first=layer_norm_first, encoder_layer_drop=0.0, aux_num_out=None,
    )


@pytest.mark.parametrize("layer_norm_first", [False, True], ids=["base-like", "large-like"])
def test_layers_map_onto_extract_features(layer_norm_first):
    model = tiny_model(layer_norm_first)
    up = TorchaudioUpstream(model, "torchaudio:tiny", "test", normalize=layer_norm_first, cnn_layers=True)
    assert [s.name for s in up.layers] == [f"cnn{i}" for i in range(1, 8)] + [f"layer{i}" for i in range(4)]
    assert [s.final_norm for s in up.layers[7:]] == [False] * 3 + [layer_norm_first]
    wavs, lens = padded_audio([9600, 7001, 9600], seed=2)
    with torch.inference_mode():
        out = up(wavs, lens)
        w = wavs[1:2, :7001]
        if layer_norm_first:
            w = torch.nn.functional.layer_norm(w, w.shape)
        ref, ref_len = model.extract_features(w)
        feats, _ = model.feature_extractor(w, None)
    assert out.lengths[-1].tolist() == [29, 21, 29]
    # layers 1..L are torchaudio's transformer outputs; L gets the final LayerNorm if pre-LN
    for i, r in enumerate(ref, start=1):
        if layer_norm_first and i == len(ref):
            r = model.encoder.transformer.layer_norm(r)
        torch.testing.assert_close(out.hidden[7 + i][1, :21], r[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.hidden[6][1, :21], feats[0], atol=1e-5, rtol=1e-5)  # cnn7
    # layer 0 differs from the conv output (projection, positions) and feeds layer 1
    assert out.hidden[7].shape[-1] == 64 and not torch.allclose(out.hidden[7][1, :21], ref[0][0], atol=1e-3)
    assert per_utterance_gap(up, wavs, lens) < 1e-4


def test_pipeline_architecture_without_weights():
    up = upstreams.load("torchaudio:HUBERT_BASE", pretrained=False, seed=0)
    assert len(up.layers) == 13 and {(s.dim, s.stride) for s in up.layers} == {(768, 320)}
    assert up.revision == "randinit-seed0" and not up.layers[-1].final_norm
    large = upstreams.load("torchaudio:WAV2VEC2_LARGE_LV60K", pretrained=False)
    assert large.normalize and large.layers[-1].final_norm and len(large.layers) == 25


def test_wavlm_pipeline_runs_with_position_bias():
    """WavLM layers pass a relative position bias from layer to layer."""
    up = upstreams.load("torchaudio:WAVLM_BASE", pretrained=False, seed=1)
    wavs, lens = padded_audio([4800, 3333], seed=4)
    with torch.inference_mode():
        out = up(wavs, lens)
    assert out.lengths[-1].tolist() == [14, 10] and out.hidden[-1].shape == (2, 14, 768)
    assert per_utterance_gap(up, wavs, lens) < 1e-4
