"""Spec resolution, error messages, user-defined (py:) upstreams and `layerbench list`."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from upstream_fixtures import padded_audio

import upstreams
from bench.cli import main
from bench.types import Upstream

USER_MODULE = '''
import torch
from bench.types import LayerSpec, UpstreamOutput


class FrameEnergy(torch.nn.Module):
    """Two layers: log energy of 20 ms frames, and a linear map of the frames."""

    def __init__(self, dim=4):
        super().__init__()
        self.proj = torch.nn.Linear(320, dim)
        self.layers = [LayerSpec("energy", 0, 1, 320), LayerSpec("proj", 1, dim, 320)]

    def forward(self, wavs, wav_lens):
        frames = wavs[:, : wavs.shape[1] // 320 * 320].reshape(wavs.shape[0], -1, 320)
        lens = wav_lens // 320
        energy = frames.pow(2).mean(-1, keepdim=True).add(1e-8).log()
        return UpstreamOutput(hidden=[energy, self.proj(frames)], lengths=[lens, lens])


class Broken(FrameEnergy):
    def forward(self, wavs, wav_lens):
        out = super().forward(wavs, wav_lens)
        return UpstreamOutput(hidden=out.hidden[:1], lengths=out.lengths[:1])


class NoLayers(torch.nn.Module):
    def forward(self, wavs, wav_lens):
        return None
'''


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    root = tmp_path_factory.mktemp("userpkg")
    (root / "my_upstream_mod.py").write_text(textwrap.dedent(USER_MODULE))
    sys.path.insert(0, str(root))
    yield "my_upstream_mod"
    sys.path.remove(str(root))


def test_custom_upstream(user_module):
    up = upstreams.load(f"py:{user_module}:FrameEnergy", dim=3)
    assert isinstance(up, Upstream) and isinstance(up, torch.nn.Module)
    assert [s.name for s in up.layers] == ["energy", "proj"] and up.layers[1].dim == 3
    assert up.num_params == 320 * 3 + 3 and up.revision.startswith("sha256:")
    assert not any(p.requires_grad for p in up.parameters())
    wavs, lens = padded_audio([3200, 1600])
    with torch.inference_mode():
        out = up(wavs, lens)
    assert out.lengths[0].tolist() == [10, 5]
    expected = wavs[1, :320].pow(2).mean().add(1e-8).log()
    torch.testing.assert_close(out.hidden[0][1, 0, 0], expected)


def test_custom_upstream_errors(user_module):
    with pytest.raises(ValueError, match="returned 1 hidden / 1 lengths for 2 declared layers"):
        with torch.inference_mode():
            upstreams.load(f"py:{user_module}:Broken")(*padded_audio([3200]))
    with pytest.raises(ValueError, match=r"NoLayers.layers must be a non-empty list"):
        upstreams.load(f"py:{user_module}:NoLayers")
    with pytest.raises(ValueError, match=r"'py:no_such_module_x:A'.*cannot import module 'no_such_module_x'"):
        upstreams.load("py:no_such_module_x:A")
    with pytest.raises(ValueError, match=r"has no 'Missing'"):
        upstreams.load(f"py:{user_module}:Missing")
    with pytest.raises(ValueError, match=r"write py:package.module:ClassName"):
        upstreams.load("py:justamodule")


@pytest.mark.parametrize(
    "spec,pattern",
    [
        ("hubret:facebook/x", r"spec 'hubret:facebook/x': unknown upstream family 'hubret'.*known: fbank, hf, mfcc, py, "
                              r"randinit, s3prl, torchaudio\..*"),
        ("fbnak", r"unknown upstream family 'fbnak'.*did you mean 'fbank'"),
        ("randinit:hubert-bsae", r"spec 'randinit:hubert-bsae': unknown randinit preset 'hubert-bsae'.*hubert-large.*"
                                 r"did you mean 'hubert-base'"),
        ("torchaudio:HUBERT_BASS", r"spec 'torchaudio:HUBERT_BASS': unknown torchaudio pipeline.*did you mean 'HUBERT_BASE'"),
        ("hf:/definitely/not/here", r"spec 'hf:/definitely/not/here': local model folder '/definitely/not/here' does not exist"),
        ("randinit:/not/here/config.json", r"spec 'randinit:/not/here/config.json': config file .* does not exist"),
        ("", r"empty"),
    ],
)
def test_unresolvable_specs_name_the_spec(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        upstreams.load(spec)


def test_local_dir_without_config(tmp_path):
    with pytest.raises(ValueError, match=r"has no config.json"):
        upstreams.load(f"hf:{tmp_path}")


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match=r"option\(s\) ckpt not accepted by family 'randinit'; it takes: seed, cnn_layers"):
        upstreams.load("randinit:hubert-tiny", ckpt="x.pt")


def test_cli_list_and_errors(capsys):
    assert main(["list", "upstreams"]) == 0
    out = capsys.readouterr().out
    for family in upstreams.families():
        assert f"\n  {family} " in out
    for preset in ("wav2vec2-base", "wav2vec2-large", "hubert-base", "hubert-large", "wavlm-base", "wavlm-large",
                   "hubert-tiny", "data2vec-audio-tiny"):
        assert f"\n  {preset} " in out
    assert main(["describe", "randinit:nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerbench describe: error: upstream spec 'randinit:nope'")


def test_cli_describe_tiny_and_features(capsys):
    assert main(["describe", "randinit:sew-tiny"]) == 0
    out = capsys.readouterr().out
    assert "3  layer3   64     640    25.00        no" in out and "4 layers, 144,336 parameters" in out
    assert main(["describe", "mfcc"]) == 0
    assert "0  mfcc   39     160   100.00        no" in capsys.readouterr().out
