"""Task definitions: targets, heads, losses, decoding, metrics and presets, on handmade inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tasks
from bench.config import CONFIG_DIR, load_yaml
from bench.data.manifest import Segment, Utterance
from tasks.base import (BiLSTMHead, ModuleHeads, PooledHeads, WeightedSum, ctc_greedy, ctc_losses, error_rate,
                        masked_mean, spec_augment)


def _utt(**kw) -> Utterance:
    return Utterance(kw.pop("id", "u"), Path("/nonexistent.wav"), 1.0, **kw)


def test_registry_names_and_unknown_name():
    assert tasks.names() == ["pr", "asr", "ic", "slurp_scenario", "slurp_action", "ks"]
    assert tasks.get("ic").slots == ("action", "object", "location")
    with pytest.raises(ValueError, match=r"unknown task 'slurp'.*known tasks: pr, asr"):
        tasks.get("slurp")


def test_pr_targets_strip_stress_and_drop_silence():
    pr = tasks.get("pr")
    u = _utt(phones=[Segment("", 0, .1), Segment("HH", .1, .2), Segment("AH0", .2, .3), Segment("sp", .3, .4),
                     Segment("L", .4, .5), Segment("OW1", .5, .6), Segment("sil", .6, .7)])
    assert pr.tokens(u) == ["HH", "AH", "L", "OW"]
    space = pr.fit([u])
    b = pr.targets([u], space)
    assert b.refs == ["HH AH L OW"] and b.y_lens.tolist() == [4] and (b.y > 0).all()
    assert space.decode(b.y[0].tolist()) == ["HH", "AH", "L", "OW"]
    with pytest.raises(ValueError, match="has no phone alignment"):
        pr.tokens(_utt(id="x"))
    with pytest.raises(ValueError, match="utterance bad.*'QQ'"):
        pr.tokens(_utt(id="bad", phones=[Segment("QQ", 0, 1)]))


def test_asr_characters_and_rendering():
    asr = tasks.get("asr")
    u = _utt(text="it's a  TEST")
    assert asr.tokens(u) == list("IT'S|A|TEST")
    assert asr.render(list("|HELLO||WORLD|")) == "HELLO WORLD"
    space = asr.fit([u])
    assert space.size == 29  # blank + | + ' + 26 letters
    with pytest.raises(ValueError, match="characters outside A-Z"):
        asr.tokens(_utt(id="n", text="ROOM 101"))


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    ids = torch.tensor([[0, 2, 2, 0, 2, 3, 3, 1, 1]])
    logits = torch.nn.functional.one_hot(ids, 4).float()
    assert ctc_greedy(logits, torch.tensor([9])) == [[2, 2, 3, 1]]
    assert ctc_greedy(logits, torch.tensor([3])) == [[2]]  # padding beyond the length is ignored


def test_ctc_losses_per_head_match_torch_mean_reduction():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 12, 6)
    lens = torch.tensor([12, 10, 8])
    y = torch.tensor([[1, 2, 3], [4, 5, 0], [1, 0, 0]])
    ylen = torch.tensor([3, 2, 1])
    got = ctc_losses(logits, lens, y, ylen)
    for g in range(2):
        ref = torch.nn.functional.ctc_loss(logits[g].log_softmax(-1).transpose(0, 1), y, lens, ylen,
                                           zero_infinity=True)  # reduction='mean': / target length, mean
        assert torch.allclose(got[g], ref, atol=1e-5)


def test_error_rate_is_jiwer_percent():
    assert error_rate(["A B C D"], ["A X C"]) == pytest.approx(50.0)
    assert error_rate(["A B", ""], ["A B", "Z"]) == 0.0  # empty references are not scored
    assert error_rate(["A"], ["B C D"]) == pytest.approx(300.0)  # insertions can exceed 100


def test_ic_accuracy_needs_all_three_slots():
    ic = tasks.get("ic")
    train = [_utt(id=f"t{i}", labels={"action": a, "object": o, "location": l})
             for i, (a, o, l) in enumerate([("activate", "lights", "kitchen"), ("deactivate", "music", "none"),
                                             ("increase", "heat", "bedroom")])]
    space = ic.fit(train)
    assert space.sizes == [3, 3, 3]
    b = ic.targets(train, space)
    assert b.y.shape == (3, 3)
    heads = ic.make_heads(2, 4, space, {"head": {"hidden": 8}}, torch.Generator().manual_seed(0))
    logits = torch.full((2, 3, 9), -5.0)
    for i, row in enumerate(b.y.tolist()):  # head 0: all right; head 1: object of utterance 0 wrong
        for k, c in enumerate(row):
            logits[:, i, 3 * k + c] = 5.0
    logits[1, 0, 3:6] = torch.tensor([0.0, 0.0, 0.0])
    logits[1, 0, 3 + (b.y[0, 1] + 1) % 3] = 9.0
    preds = ic.predict(logits, None, space)
    refs = ic.references(b, space)
    assert ic.score(refs, preds[0]) == 100.0
    assert ic.score(refs, preds[1]) == pytest.approx(200 / 3)
    losses = ic.losses(logits, None, b, space)
    assert losses.shape == (2,) and losses[0] < losses[1]
    assert isinstance(heads, PooledHeads)
    unseen = ic.targets([_utt(labels={"action": "dance", "object": "lights", "location": "kitchen"})], space)
    assert unseen.y[0, 0] == -1  # a label never seen in training counts as wrong, never crashes


def test_ks_is_balanced_and_slurp_uses_one_slot():
    ks = tasks.get("ks")
    train = [_utt(id=str(i), labels={"keyword": w}) for i, w in enumerate(["yes", "yes", "no"])]
    assert ks.train_labels(train) == ["yes", "yes", "no"]
    assert tasks.get("slurp_action").slots == ("action",) and tasks.get("slurp_scenario").train_labels(train) is None
    with pytest.raises(ValueError, match="lack label 'scenario'"):
        tasks.get("slurp_scenario").fit(train)


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    assert masked_mean(x, torch.tensor([2, 3])).flatten().tolist() == [2.0, 4.0]


def test_weighted_sum_starts_uniform_and_sums_layers():
    ws = WeightedSum(3)
    layers = torch.stack([torch.full((2, 4), v) for v in (1.0, 2.0, 6.0)])
    assert torch.allclose(ws(layers), torch.full((2, 4), 3.0))
    with torch.no_grad():
        ws.weights.copy_(torch.tensor([0.0, 0.0, 50.0]))
    assert torch.allclose(ws(layers), torch.full((2, 4), 6.0))


def test_bilstm_heads_respect_lengths():
    torch.manual_seed(0)
    heads = ModuleHeads([BiLSTMHead(4, 6, 5, 2, 0.2, 7) for _ in range(2)]).eval()
    x = torch.randn(2, 1, 9, 4)
    long = heads(torch.cat([x, torch.randn(2, 1, 3, 4)], 2), torch.tensor([9]))
    assert long.shape == (2, 1, 12, 7)
    assert torch.allclose(long[:, :, :9], heads(x, torch.tensor([9])), atol=1e-5)  # padding never leaks in


def test_spec_augment_masks_bands_within_lengths():
    cfg = {"enabled": True, "num_time_mask": 2, "time_mask_width_range": [3, 3], "num_freq_mask": 1,
           "freq_mask_width_range": [2, 2]}
    x = torch.ones(3, 2, 20, 8)  # [G, B, T, D]
    y = spec_augment(x, torch.tensor([20, 10]), cfg, torch.Generator().manual_seed(0))
    assert torch.equal(y[0], y[1]) and torch.equal(y[0], y[2])  # the same masks for every head
    zero_cols = (y[0, 0] == 0).all(0).sum()
    assert zero_cols == 2
    assert (y[0, 1, 10:] != 0).any(-1).all()  # time masks stay inside the 10 valid frames
    assert spec_augment(x, torch.tensor([20, 10]), {"enabled": False}, torch.Generator()) is x


def test_superb_presets_follow_the_design_table():
    want = {"pr": (100000, 1e-2, 16, 2, 1000), "asr": (200000, 1e-4, 16, 1, 2000), "ic": (200000, 1e-4, 32, 1, 4000),
            "ks": (200000, 1e-4, 32, 1, 4000), "slurp_scenario": (200000, 1e-4, 32, 1, 4000),
            "slurp_action": (200000, 1e-4, 32, 1, 4000)}
    for name in tasks.names():
        presets = load_yaml(CONFIG_DIR / "tasks" / f"{name}.yaml")
        assert set(presets) == {"superb", "quick"}
        s = presets["superb"]
        assert (s["steps"], s["lr"], s["batch_size"], s["accumulate"], s["eval_every"]) == want[name], name
        assert s["clip"] == 1.0 and s["weighted_sum"] == {"enabled": True, "layer_norm": False}
        assert s["extract"]["bf16"] is False, name  # SUPERB runs the upstream in fp32
        assert set(presets["quick"]) == set(s), name  # every superb key can be overridden in quick too
    assert load_yaml(CONFIG_DIR / "tasks" / "asr.yaml")["superb"]["head"] == {
        "proj": 1024, "hidden": 1024, "layers": 2, "dropout": 0.2}
    assert load_yaml(CONFIG_DIR / "tasks" / "pr.yaml")["superb"]["head"] == {"hidden": 256}
