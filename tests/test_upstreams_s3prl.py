"""s3prl: the import shim, and an s3prl upstream from a local random-weight HuBERT checkpoint
whose layers agree with the hf: adapter on the same weights."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from upstream_fixtures import make_s3prl_hubert_ckpt, padded_audio, per_utterance_gap, s3prl_hubert_to_hf

import upstreams

LENGTHS = [9600, 7001, 9600]


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_s3prl_needs_the_shim_and_imports_with_it():
    bare = _py("import s3prl.nn")
    assert bare.returncode != 0 and "set_audio_backend" in bare.stderr
    shimmed = _py(
        "from upstreams.s3prl_compat import install; install()\n"
        "import s3prl.nn, torchaudio.sox_effects as se\n"
        "try:\n    se.apply_effects_tensor(None, 16000, [])\nexcept RuntimeError as e:\n    print('stand-in:', e)\n"
    )
    assert shimmed.returncode == 0, shimmed.stderr[-2000:]
    assert "stand-in: torchaudio.sox_effects.apply_effects_tensor was removed" in shimmed.stdout


@pytest.fixture(scope="module", params=[False, True], ids=["post-LN", "layer_norm_first"])
def pair(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("s3prl")
    ckpt = make_s3prl_hubert_ckpt(root / "hubert_tiny.pt", seed=4, layer_norm_first=request.param)
    s3 = upstreams.load("s3prl:hubert_local", ckpt=str(ckpt))
    hf = upstreams.load(f"hf:{s3prl_hubert_to_hf(ckpt, root / 'hf')}")
    return request.param, s3, hf


def test_layers_agree_with_hf(pair):
    layer_norm_first, s3, hf = pair
    assert [(s.name, s.index, s.dim, s.stride) for s in s3.layers] == [(f"layer{i}", i, 64, 320) for i in range(4)]
    assert [s.final_norm for s in s3.layers] == [s.final_norm for s in hf.layers] == [False] * 3 + [layer_norm_first]
    assert s3.revision.startswith("sha256:")
    wavs, lens = padded_audio(LENGTHS, seed=9)
    if layer_norm_first:
        # s3prl normalises the waveform with eps 1e-5, HF's extractor with 1e-7: at speech
        # level (unit variance) the difference is far below the tolerance
        wavs = wavs * 10
    with torch.inference_mode():
        a, b = s3(wavs, lens), hf(wavs, lens)
    assert len(a.hidden) == len(b.hidden) == 4
    for x, y, nx, ny in zip(a.hidden, b.hidden, a.lengths, b.lengths):
        # s3prl counts ceil(samples / 320) frames (its last frame repeated); HF the conv arithmetic
        assert nx.tolist() == [-(-n // 320) for n in LENGTHS]
        assert ny.tolist() == [(n - 400) // 320 + 1 for n in LENGTHS]
        for i, n in enumerate(ny.tolist()):
            torch.testing.assert_close(x[i, :n], y[i, :n], atol=1e-4, rtol=1e-4)
    assert per_utterance_gap(s3, wavs, lens) < 1e-5


def test_missing_checkpoint_names_spec(tmp_path):
    with pytest.raises(ValueError, match=r"s3prl:hubert_local.*does not exist"):
        upstreams.load("s3prl:hubert_local", ckpt=str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match=r"unknown s3prl upstream 'hubret_local'.*did you mean 'hubert_local'"):
        upstreams.load("s3prl:hubret_local")
