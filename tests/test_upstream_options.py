"""Upstream options are written inside the spec and are part of every unit's identity."""

from __future__ import annotations

import json

import pytest

import upstreams
from bench.cli import main
from bench.layerwise_cca import plan_cca
from bench.probe import plan_probe
from test_probe_fakes import one_thread  # noqa: F401
from upstream_fixtures import make_s3prl_hubert_ckpt

QUICK = ["--set", "steps=4", "--set", "eval_every=2", "--no-progress"]


def test_parse_and_canonical_spelling():
    spec = upstreams.parse_spec("s3prl:multires_hubert_local,ckpt=/m/a.pt")
    assert (spec.family, spec.arg, spec.options) == ("s3prl", "multires_hubert_local", (("ckpt", "/m/a.pt"),))
    assert upstreams.parse_spec("py:my_mod:Energy,dim=8").options == (("dim", 8),)
    assert upstreams.parse_spec("hf:/data/a,b/model").arg == "/data/a,b/model"  # a comma not before key=
    # sorted, typed, defaults dropped: one unit has one spelling
    assert upstreams.canonical("randinit:hubert-tiny,seed=2,cnn_layers=true") == "randinit:hubert-tiny,cnn_layers=true,seed=2"
    assert upstreams.canonical("randinit:hubert-tiny,seed=0") == "randinit:hubert-tiny"
    assert upstreams.canonical("randinit:hubert-tiny", seed=3) == "randinit:hubert-tiny,seed=3"


def test_bad_options_name_the_spec_and_the_option():
    with pytest.raises(ValueError, match=r"'randinit:hubert-tiny,sede=2'.*sede.*it takes: seed, cnn_layers"):
        upstreams.load("randinit:hubert-tiny,sede=2")
    with pytest.raises(ValueError, match=r"option 'seed' is given twice"):
        upstreams.parse_spec("randinit:hubert-tiny,seed=1,seed=2")
    with pytest.raises(ValueError, match=r"option 'seed' is 1 in the spec but 2 as a keyword"):
        upstreams.load("randinit:hubert-tiny,seed=1", seed=2)


def test_options_reach_the_model_and_its_spec():
    a, b = upstreams.load("randinit:hubert-tiny,seed=1"), upstreams.load("randinit:hubert-tiny,seed=2")
    assert a.spec == "randinit:hubert-tiny,seed=1" and b.spec == "randinit:hubert-tiny,seed=2"
    wa, wb = next(a.parameters()), next(b.parameters())
    assert not (wa == wb).all()
    assert any(s.name == "cnn1" for s in upstreams.load("randinit:hubert-tiny,cnn_layers=true").layers)


def test_options_and_seeds_are_in_hashes_and_file_names(tmp_path):
    p1, _, h1 = plan_probe("randinit:hubert-tiny,seed=1", "ks", tmp_path)
    p2, _, h2 = plan_probe("randinit:hubert-tiny,seed=2", "ks", tmp_path)
    p0, c0, h0 = plan_probe("randinit:hubert-tiny", "ks", tmp_path)
    assert len({p1, p2, p0}) == 3 and len({h1, h2, h0}) == 3
    assert c0["upstream"] == "randinit:hubert-tiny" and p0.name == "randinit_hubert-tiny__ks.json"
    assert plan_probe("randinit:hubert-tiny,seed=0", "ks", tmp_path)[2] == h0  # the default names the same unit
    s1 = plan_probe("fbank", "ks", tmp_path, seed=1)
    assert s1[0].name == "fbank__ks__seed1.json" and s1[2] != plan_probe("fbank", "ks", tmp_path)[2]
    (m0, _, c0h), = [x[1:] for x in plan_cca("randinit:hubert-tiny", tmp_path, ["mel"])]
    (m1, _, c1h), = [x[1:] for x in plan_cca("randinit:hubert-tiny,cnn_layers=true", tmp_path, ["mel"])]
    assert m0 != m1 and c0h != c1h


@pytest.mark.slow
def test_probe_cli_two_weight_seeds_write_two_results(synth_root, tmp_path, capsys, one_thread):
    for seed in (1, 2):
        args = ["probe", "--upstream", f"randinit:hubert-tiny,seed={seed}", "--task", "ks",
                "--corpus", str(synth_root), "--out", str(tmp_path), *QUICK]
        assert main(args) == 0
        assert "already done" not in capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "probe").glob("*.json"))
    assert files == ["randinit_hubert-tiny_seed_1__ks.json", "randinit_hubert-tiny_seed_2__ks.json"]
    results = [json.loads((tmp_path / "probe" / f).read_text()) for f in files]
    assert [r["upstream"] for r in results] == ["randinit:hubert-tiny,seed=1", "randinit:hubert-tiny,seed=2"]
    assert results[0]["config_hash"] != results[1]["config_hash"]
    assert results[0]["upstream_info"]["revision"] != results[1]["upstream_info"]["revision"]


@pytest.mark.slow
def test_s3prl_local_checkpoint_probed_and_described_through_the_cli(synth_root, tmp_path, capsys, one_thread):
    ckpt = make_s3prl_hubert_ckpt(tmp_path / "hubert_tiny.pt", seed=4)
    spec = f"s3prl:hubert_local,ckpt={ckpt}"
    assert main(["describe", spec]) == 0
    assert f"upstream {spec}" in capsys.readouterr().out
    assert main(["probe", "--upstream", spec, "--task", "ks", "--corpus", str(synth_root),
                 "--out", str(tmp_path / "runs"), *QUICK]) == 0
    (path,) = (tmp_path / "runs" / "probe").glob("*.json")
    result = json.loads(path.read_text())
    assert result["upstream"] == spec and result["config"]["upstream"] == spec
    assert len(result["per_layer"]) == len(upstreams.load(spec).layers)
