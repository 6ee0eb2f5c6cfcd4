"""Pre-trained versus fine-tuned: `hf:` on CTC checkpoints (XxxForCTC saved with save_pretrained
next to its base model) exposes the encoder exactly like the base model, plus the CTC logits
as a named layer when asked; a suite analyses both in one run, lined up in one plot."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from upstream_fixtures import padded_audio, save_tiny_hf

import upstreams

VOCAB = 12


def save_ctc_twin(preset: str, base_dir, folder, finetune_last: bool, seed: int = 1):
    """A CTC model whose encoder starts from the base model's weights (as fine-tuning does);
    with `finetune_last` the last transformer layer's weights are moved, the rest stay."""
    from transformers import AutoModel, AutoModelForCTC, Wav2Vec2FeatureExtractor

    base = AutoModel.from_pretrained(base_dir)
    config = base.config
    config.vocab_size = VOCAB
    torch.manual_seed(seed)
    ctc = AutoModelForCTC.from_config(config)
    encoder = getattr(ctc, ctc.base_model_prefix)
    encoder.load_state_dict(base.state_dict())
    if finetune_last:
        with torch.no_grad():
            for p in encoder.encoder.layers[-1].parameters():
                p.add_(0.2 * torch.randn_like(p))
    ctc.save_pretrained(folder)
    Wav2Vec2FeatureExtractor.from_pretrained(base_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    out = {}
    for preset, fe in (("hubert-tiny", (False, False)), ("wav2vec2-large-tiny", (True, True)),
                       ("wavlm-tiny", (False, True))):
        base = save_tiny_hf(preset, root / preset, *fe)
        out[preset] = (base, save_ctc_twin(preset, base, root / f"{preset}-ctc", finetune_last=True),
                       save_ctc_twin(preset, base, root / f"{preset}-ctc-same", finetune_last=False))
    return out


@pytest.mark.parametrize("preset", ["hubert-tiny", "wav2vec2-large-tiny", "wavlm-tiny"])
def test_ctc_twin_exposes_the_base_layers(twins, preset):
    base_dir, ctc_dir, same_dir = twins[preset]
    base, ctc, same = (upstreams.load(f"hf:{d}") for d in (base_dir, ctc_dir, same_dir))
    assert json.loads((ctc_dir / "config.json").read_text())["architectures"][0].endswith("ForCTC")
    assert ctc.layers == base.layers and [s.name for s in ctc.layers] == ["layer0", "layer1", "layer2", "layer3"]
    wavs, lens = padded_audio([9600, 7001, 4321], seed=5)
    with torch.inference_mode():
        b, c, s = base(wavs, lens), ctc(wavs, lens), same(wavs, lens)
    for hb, hs, nb, ns in zip(b.hidden, s.hidden, b.lengths, s.lengths):
        torch.testing.assert_close(hs, hb)  # the encoder weights came through, none re-initialised
        assert ns.tolist() == nb.tolist()
    for i, (hb, hc) in enumerate(zip(b.hidden, c.hidden)):
        moved = not torch.allclose(hb, hc, atol=1e-4)
        assert moved == (i == len(b.hidden) - 1), f"layer{i}: only the fine-tuned last layer may change"


@pytest.mark.parametrize("preset", ["hubert-tiny", "wav2vec2-large-tiny"])
def test_ctc_logits_layer_is_the_heads_output(twins, preset):
    from transformers import AutoFeatureExtractor, AutoModelForCTC

    base_dir, ctc_dir, _ = twins[preset]
    up = upstreams.load(f"hf:{ctc_dir},ctc_logits=true")
    last = up.layers[-1]
    assert (last.name, last.index, last.dim, last.stride, last.weighted_sum) == ("ctc_logits", 4, VOCAB, 320, False)
    assert up.layers[:-1] == upstreams.load(f"hf:{base_dir}").layers
    wavs, lens = padded_audio([9600, 6000], seed=2)
    ref_model = AutoModelForCTC.from_pretrained(ctc_dir).eval()
    fe = AutoFeatureExtractor.from_pretrained(ctc_dir)
    with torch.inference_mode():
        out = up(wavs, lens)
        for i, n in enumerate(lens.tolist()):
            inputs = fe(wavs[i, :n].numpy(), sampling_rate=16000, return_tensors="pt")
            ref = ref_model(inputs["input_values"]).logits[0]
            assert int(out.lengths[-1][i]) == ref.shape[0]
            torch.testing.assert_close(out.hidden[-1][i, : ref.shape[0]], ref, atol=1e-4, rtol=1e-4)


def test_ctc_logits_on_a_base_model_is_a_clear_error(twins):
    base_dir = twins["hubert-tiny"][0]
    with pytest.raises(ValueError, match="ctc_logits.*not a CTC fine-tuned checkpoint"):
        upstreams.load(f"hf:{base_dir}", ctc_logits=True)


@pytest.mark.slow
def test_base_and_ctc_twin_in_one_suite_run(twins, synth_root, tmp_path):
    """One `layerbench run`: both models' CCA-mel and CCA-phone per layer, same layer indices,
    and one overlay plot per property lining them up."""
    from bench.cli import main

    base_dir, ctc_dir, _ = twins["hubert-tiny"]
    suite = {
        "name": "twins",
        "zoo": [{"name": "base", "spec": f"hf:{base_dir}"}, {"name": "ctc", "spec": f"hf:{ctc_dir}"}],
        "cca": {"properties": ["mel", "phone"], "preset": "quick",
                "overrides": {"mel": {"num_utterances": 12}, "phone": {"per_label": 8}}},
        "corpora": {"synthetic": {"dir": str(synth_root), "size": "tiny", "seed": 0}},
        "out": str(tmp_path / "out"),
        "seeds": [0],
        "device": "cpu",
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["run", str(path), "--no-progress"]) == 0
    results = tmp_path / "out" / "results"
    files = sorted(results.rglob("*.json"))
    per = {}
    for f in files:
        r = json.loads(f.read_text())
        per[(r["label"], r["property"])] = {e["layer"]: e["score"] for e in r["per_layer"]}
    assert set(per) == {(m, p) for m in ("base", "ctc") for p in ("mel", "phone")}
    for prop in ("mel", "phone"):
        base, ctc = per[("base", prop)], per[("ctc", prop)]
        assert sorted(base) == sorted(ctc) == [0, 1, 2, 3]
        for layer in (0, 1, 2):  # untouched by the fine-tuning: identical features, identical scores
            assert ctc[layer] == pytest.approx(base[layer], abs=1e-9)
        assert ctc[3] != pytest.approx(base[3], abs=1e-6)
    plots = sorted(p.name for p in (tmp_path / "out").rglob("overlay_cca_*.png"))
    assert plots == ["overlay_cca_mel.png", "overlay_cca_phone.png"]
