"""`layerbench pretrain`: HuBERT-style masked prediction that learns, resumes exactly, and saves
checkpoints that load through `hf:` with `randinit:<arch>` as their untrained twin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import upstreams
from bench.cli import main
from bench.pretrain import PretrainConfig, build_model, model_frames, mfcc_features, pretrain, span_mask

ARCH = "hubert-large-tiny"  # pre-LN, layer-norm conv encoder, 3 x 64: seconds per run


def _cfg(root, **kw) -> PretrainConfig:
    base = dict(corpus=str(root), arch=ARCH, steps=6, clusters=20, batch_size=4, max_crop_s=1.5,
                state_every=2, log_every=2, kmeans_frames=5000)
    return PretrainConfig(**(base | kw))


def _weights(folder) -> dict[str, torch.Tensor]:
    return upstreams.load(f"hf:{folder}").model.state_dict()


@pytest.mark.slow
def test_resume_equals_uninterrupted_and_checkpoints_load(synth_root, tmp_path):
    cfg = _cfg(synth_root, snapshot_every=3)
    whole = pretrain(cfg, tmp_path / "whole", threads=1, log=lambda m: None)
    part = pretrain(cfg, tmp_path / "resumed", threads=1, stop_after=4, log=lambda m: None)
    assert not part.final.exists() and (tmp_path / "resumed" / "state.pt").exists()
    resumed = pretrain(cfg, tmp_path / "resumed", threads=1, log=lambda m: None)
    a, b = _weights(whole.final), _weights(resumed.final)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in whole.history] == [h["loss"] for h in resumed.history]
    assert [p.name for p in whole.snapshots] == ["checkpoint-3"]
    # the checkpoint is a real hf: upstream with every layer, and records how it was made
    up = upstreams.load(f"hf:{whole.final}")
    assert [s.index for s in up.layers] == [0, 1, 2, 3] and up.do_normalize
    info = json.loads((whole.final / "pretrain.json").read_text())
    assert info["step"] == 6 and info["config"]["seed"] == 0 and info["kmeans_source"] == "mfcc39"
    # training moved the weights away from the seeded init, which is exactly randinit's draw
    twin = upstreams.load(f"randinit:{ARCH}").model.state_dict()
    init, _ = build_model(cfg)
    assert all(torch.equal(twin[k], v) for k, v in init.state_dict().items())
    assert not torch.equal(twin["encoder.layers.0.attention.q_proj.weight"], a["encoder.layers.0.attention.q_proj.weight"])


@pytest.mark.slow
def test_loss_falls_and_iteration_2_clusters_the_teacher_layer(synth_root, tmp_path):
    it1 = pretrain(_cfg(synth_root, steps=40, log_every=10, state_every=40), tmp_path / "it1", threads=1,
                   log=lambda m: None)
    first, last = it1.history[0]["masked_ce"], it1.history[-1]["masked_ce"]
    assert first > np.log(20) - 0.3 and last < first - 0.05, (first, last)  # seeded: 3.01 -> 2.93
    lines = []
    it2 = pretrain(_cfg(synth_root, iteration=2, teacher=str(it1.final), teacher_layer=1, init=str(it1.final),
                        steps=2), tmp_path / "it2", threads=1, log=lines.append)
    info = json.loads((it2.final / "pretrain.json").read_text())
    assert info["kmeans_source"] == f"{it1.final}#layer1"
    assert any("k-means k=20" in line for line in lines)


def test_targets_align_with_model_frames_and_masks_cover_about_prob(synth_root):
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert mfcc_features(wav).shape == (model_frames(16000), 39) == (49, 39)
    gen = torch.Generator().manual_seed(0)
    m = span_mask(16, 150, 0.65, 10, gen)
    assert m.shape == (16, 150) and 0.3 < m.float().mean().item() < 0.65


def test_bad_options_are_named(synth_root, tmp_path, capsys):
    with pytest.raises(ValueError, match="--teacher"):
        PretrainConfig(corpus=str(synth_root), iteration=2)
    assert main(["pretrain", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"), "--arch", ARCH]) == 2
    assert "no LibriSpeech-layout folder" in capsys.readouterr().err
    pretrain(_cfg(synth_root, steps=1), tmp_path / "run", threads=1, stop_after=0, log=lambda m: None)
    with pytest.raises(ValueError, match="differs in: lr"):
        pretrain(_cfg(synth_root, steps=1, lr=1e-3), tmp_path / "run", threads=1, log=lambda m: None)
