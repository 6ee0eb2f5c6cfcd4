"""randinit: seeded random-weight architectures, and the CLI that describes them."""

from __future__ import annotations

import json
import re

import pytest
import torch
from upstream_fixtures import padded_audio

import upstreams
from bench.cli import main


@pytest.fixture(scope="module")
def audio():
    return padded_audio([8000, 5000], seed=5)


def _run(up, audio):
    with torch.inference_mode():
        return up(*audio)


def test_same_seed_identical_different_seed_different(audio):
    a = upstreams.load("randinit:hubert-tiny")
    b = upstreams.load("randinit:hubert-tiny", seed=0)
    c = upstreams.load("randinit:hubert-tiny", seed=1)
    assert a.revision == b.revision == "randinit-seed0" and c.revision == "randinit-seed1"
    oa, ob, oc = _run(a, audio), _run(b, audio), _run(c, audio)
    for x, y, z in zip(oa.hidden, ob.hidden, oc.hidden):
        assert torch.equal(x, y)
        assert not torch.allclose(x, z, atol=1e-3)


def test_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    upstreams.load("randinit:wavlm-tiny", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_config_file(tmp_path, audio):
    from upstreams.randinit import preset_config

    cfg = preset_config("wav2vec2-tiny").to_dict()
    cfg["num_hidden_layers"] = 2
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    up = upstreams.load(f"randinit:{path}", seed=2)
    assert [s.name for s in up.layers] == ["layer0", "layer1", "layer2"]
    assert up.revision.startswith("randinit-seed2-sha256:")
    out = _run(up, audio)
    assert out.lengths[0].tolist() == [24, 15]


def _describe(capsys, *args):
    assert main(["describe", *args]) == 0
    return capsys.readouterr().out


def _rows(text):
    return [line.split() for line in text.splitlines() if re.match(r"^\s*-?\d+\s+(layer|cnn)\d", line)]


def test_describe_hubert_base(capsys):
    out = _describe(capsys, "randinit:hubert-base")
    rows = _rows(out)
    assert len(rows) == 13
    assert [r[0] for r in rows] == [str(i) for i in range(13)]
    assert {(r[2], r[3], r[4], r[5]) for r in rows} == {("768", "320", "50.00", "no")}
    assert "94,371,712 parameters" in out  # HF HubertModel base: 94.37 M


def test_describe_wav2vec2_large_with_cnn(capsys):
    out = _describe(capsys, "randinit:wav2vec2-large", "--cnn-layers")
    rows = _rows(out)
    cnn, tf = rows[:7], rows[7:]
    assert [r[1] for r in cnn] == [f"cnn{i}" for i in range(1, 8)]
    assert [int(r[3]) for r in cnn] == [5, 10, 20, 40, 80, 160, 320]
    assert len(tf) == 25 and {(r[2], r[3]) for r in tf} == {("1024", "320")}
    assert [r[5] for r in tf] == ["no"] * 24 + ["yes"]
    assert "315,438,720 parameters" in out  # wav2vec2-large-lv60 base model: 315.4 M
