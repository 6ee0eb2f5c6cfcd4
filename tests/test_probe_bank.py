"""The probe bank on fake upstreams with known answers: ordering, exactness, divergence, resume."""

from __future__ import annotations

import json

import pytest
import torch
from scipy.stats import spearmanr

from bench import pooled
from bench.config import ConfigError
from bench.extract import forward, load_batch
from bench.probe import ModuleAdam, StackedAdam, plan_probe, run_probe, select_layers, weighted_sum_layers
from tasks.base import PooledHeads
from test_probe_fakes import SignalUpstream, class_corpus, one_thread, phone_corpus  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _scores(result):
    return [r.test for r in result.per_layer]


def test_stacked_adam_is_per_head_adam_with_per_head_clipping():
    torch.manual_seed(0)
    g, dim = 3, 5
    stacked = PooledHeads(g, dim, 7, 4, torch.Generator().manual_seed(1))
    singles = []
    for k in range(g):
        m = PooledHeads(1, dim, 7, 4)
        with torch.no_grad():
            for p, q in zip(m.parameters(), stacked.parameters()):
                p.copy_(q[k : k + 1])
        singles.append(m)
    sopt = StackedAdam(list(stacked.parameters()), g, lr=0.05, clip=0.3)
    mopt = ModuleAdam(singles, lr=0.05, clip=0.3)
    active = torch.ones(g, dtype=torch.bool)
    frozen = None
    for step in range(8):
        x = torch.randn(g, 6, dim) * (1 + 3 * torch.arange(g))[:, None, None]  # different norms per head
        y = torch.randint(0, 4, (6,))
        if step == 4:
            active[1] = False
            frozen = [p[1].detach().clone() for p in stacked.parameters()]
        sopt.zero_grad()
        mopt.zero_grad()
        torch.nn.functional.cross_entropy(stacked(x).reshape(-1, 4), y.repeat(g), reduction="sum").backward()
        for k, m in enumerate(singles):
            torch.nn.functional.cross_entropy(m(x[k : k + 1])[0], y, reduction="sum").backward()
        n1 = sopt.step(active)
        n2 = mopt.step(active)
        assert torch.allclose(n1[active], n2[active], rtol=1e-4)
        assert (n1 > 0.3).all()  # clipping really happened
    for k, m in enumerate(singles):
        for p, q in zip(m.parameters(), stacked.parameters()):
            assert torch.allclose(p[0], q[k], atol=1e-5), k
    for p, f in zip(stacked.parameters(), frozen):
        assert torch.equal(p[1], f)  # a stopped head is left exactly as it was


def test_bank_recovers_layer_order_utterance_level(tmp_path):
    corpus = class_corpus(tmp_path / "ks", classes=6, per_class={"train": 20, "dev": 10, "test": 20})
    up = SignalUpstream([0.5, 1.2, 1.9, 2.6, 3.3])
    out = run_probe(up, "ks", corpus, out_dir=tmp_path / "runs", progress=False,
                    overrides={"steps": 200, "eval_every": 50, "lr": 3e-3})
    scores = _scores(out.result)
    rho = spearmanr(range(len(scores)), scores)[0]
    assert -rho > 0.9, scores
    assert scores[0] > 90 and out.result.weighted_sum.test > 80
    assert out.result.metric == "accuracy" and out.result.higher_is_better is True
    ws = out.result.weighted_sum
    assert len(ws.weights) == 5 and abs(sum(ws.weights) - 1) < 1e-5
    assert ws.weights[0] > ws.weights[-1]  # the weights learnt to prefer the clean layer


@pytest.mark.slow
def test_bank_recovers_layer_order_frame_level(tmp_path):
    corpus = phone_corpus(tmp_path / "pr")
    up = SignalUpstream([0.3, 0.55, 0.8, 1.05, 1.3])
    out = run_probe(up, "pr", corpus, out_dir=tmp_path / "runs", progress=False,
                    overrides={"steps": 100, "eval_every": 25, "targets": {"scheme": "alignment39"}})
    scores = _scores(out.result)
    rho = spearmanr(range(len(scores)), scores)[0]
    assert rho > 0.9, scores  # PER grows with the noise
    assert scores[0] < 10
    assert out.result.metric == "per" and out.result.higher_is_better is False
    assert out.result.timings["extract_s"] > 0
    assert all(1 <= s <= 100 for s in out.result.best_steps.values())


def test_cached_means_give_the_same_logits_as_frames(tmp_path):
    corpus = class_corpus(tmp_path / "c", classes=3, per_class={"train": 3})
    utts = corpus.split("train")
    up = SignalUpstream([0.5, 1.0, 2.0])
    dev = torch.device("cpu")
    kw = dict(split="train", corpus_root=corpus.root, cache_dir=tmp_path / "cache", device=dev, progress=False)
    first, hit1 = pooled.load_or_extract(up, utts, **kw)
    second, hit2 = pooled.load_or_extract(up, utts, **kw)
    assert (hit1, hit2) == (False, True)
    heads = PooledHeads(3, 16, 32, 3, torch.Generator().manual_seed(0))
    wavs, lens = load_batch(utts)  # one padded batch: the on-the-fly path
    out = forward(up, wavs, lens, dev)
    frames = torch.stack([h.clone() for h in out.hidden])
    on_the_fly = heads.forward_frames(frames, out.lengths[0])
    cached = heads(torch.stack(second.mean))
    assert torch.allclose(on_the_fly, cached, atol=1e-5)
    # another split, file list or upstream gets another cache file
    assert pooled.cache_file(tmp_path, up, corpus.root, "train", utts) != pooled.cache_file(
        tmp_path, up, corpus.root, "train", utts[:-1])
    assert pooled.cache_file(tmp_path, up, corpus.root, "train", utts) != pooled.cache_file(
        tmp_path, SignalUpstream([0.5, 1.0, 2.0], seed=3), corpus.root, "train", utts)
    assert pooled.cache_file(tmp_path, up, corpus.root, "train", utts, "bf16") != pooled.cache_file(
        tmp_path, up, corpus.root, "train", utts, "fp32")  # bf16 features never serve an fp32 run


def test_diverged_head_is_flagged_and_the_others_go_on(tmp_path):
    corpus = class_corpus(tmp_path / "ks", classes=3, per_class={"train": 8, "dev": 4, "test": 4})
    up = SignalUpstream([0.3, 0.6, 0.9], nan_layer=0)  # layer 0: NaN features of another width
    out = run_probe(up, "ks", corpus, out_dir=tmp_path / "runs", progress=False,
                    overrides={"steps": 30, "eval_every": 10})
    rows = out.result.per_layer
    assert rows[0].flags == ["diverged", "untrained"] and rows[0].test is None
    assert all("diverged" not in r.flags and r.test is not None for r in rows[1:])
    ws = out.result.weighted_sum
    assert ws.layers == [1, 2] and "diverged" not in ws.flags and ws.test is not None
    assert out.result.diverged_at == {"layer0": 1}
    on_disk = json.loads(out.path.read_text())
    assert on_disk["per_layer"][0]["flags"] == ["diverged", "untrained"]


def test_nonfinite_skip_goes_on_like_s3prl(tmp_path):
    """`nonfinite: skip` (the superb presets): a NaN-gradient step is skipped for that head only,
    which keeps training and is tested; the other heads are untouched by it."""
    corpus = class_corpus(tmp_path / "ks", classes=3, per_class={"train": 8, "dev": 4, "test": 4})
    up = SignalUpstream([0.3, 0.6, 0.9], nan_layer=0)
    kw = dict(out_dir=tmp_path / "runs", progress=False)
    out = run_probe(up, "ks", corpus, overrides={"steps": 30, "eval_every": 10, "nonfinite": "skip"}, **kw)
    rows = out.result.per_layer
    assert rows[0].flags == ["nonfinite_steps"] and rows[0].test is not None
    assert out.result.skipped_steps == {"layer0": 30} and out.result.diverged_at == {}
    stop = run_probe(up, "ks", corpus, overrides={"steps": 30, "eval_every": 10}, force=True, **kw)
    assert [r.test for r in rows[1:]] == [r.test for r in stop.result.per_layer[1:]]


def test_not_converged_flag_marks_heads_still_improving_at_the_last_evaluation():
    from types import SimpleNamespace

    from bench.probe import _flags

    grp = SimpleNamespace(diverged=[-1, -1, 3, -1], skipped=[0, 2, 0, 0], best_dev=[50.0, 60.0, None, 70.0],
                          best_step=[100, 40, None, 20])
    assert [_flags(grp, g, 100, 20) for g in range(4)] == [["not_converged"], ["nonfinite_steps"],
                                                           ["diverged", "untrained"], []]
    assert _flags(grp, 3, 20, 20) == []  # one evaluation only: nothing to compare with


def test_huge_learning_rate_diverges_without_stopping_other_tasks(tmp_path):
    corpus = phone_corpus(tmp_path / "pr", counts={"train-clean-100": 8, "dev-clean": 3, "test-clean": 3})
    up = SignalUpstream([0.3, 0.6])
    out = run_probe(up, "pr", corpus, out_dir=tmp_path / "runs", progress=False, layers="0",
                    overrides={"steps": 6, "eval_every": 3, "lr": 1e30, "weighted_sum": {"enabled": False}})
    (row,) = out.result.per_layer
    assert "diverged" in row.flags
    assert out.result.weighted_sum is None


def test_skip_if_done_and_force(tmp_path, monkeypatch):
    corpus = class_corpus(tmp_path / "ks", classes=3, per_class={"train": 6, "dev": 3, "test": 3})
    up = SignalUpstream([0.3, 0.6])
    kw = dict(out_dir=tmp_path / "runs", progress=False, overrides={"steps": 10, "eval_every": 5})
    first = run_probe(up, "ks", corpus, **kw)
    assert not first.skipped and first.path.is_file()
    import bench.probe as probe_mod

    def boom(*a, **k):
        raise AssertionError("a finished unit was recomputed")

    monkeypatch.setattr(probe_mod, "build_groups", boom)
    second = run_probe(up, "ks", corpus, **kw)
    assert second.skipped and second.result.config_hash == first.result.config_hash
    monkeypatch.undo()
    third = run_probe(up, "ks", corpus, force=True, **kw)
    assert not third.skipped
    changed = run_probe(up, "ks", corpus, out_dir=tmp_path / "runs", progress=False,
                        overrides={"steps": 11, "eval_every": 5})
    assert not changed.skipped  # another config is another unit


def test_same_seed_same_result(tmp_path):
    corpus = class_corpus(tmp_path / "ks", classes=3, per_class={"train": 6, "dev": 3, "test": 3})
    up = SignalUpstream([0.8, 1.6])
    kw = dict(progress=False, overrides={"steps": 12, "eval_every": 4, "lr": 1e-2})
    a = run_probe(up, "ks", corpus, out_dir=tmp_path / "a", **kw).result
    b = run_probe(up, "ks", corpus, out_dir=tmp_path / "b", **kw).result
    assert a.per_layer == b.per_layer and a.weighted_sum == b.weighted_sum


def test_plan_records_config_without_loading(tmp_path):
    path, cfg, h = plan_probe("randinit:hubert-tiny", "asr", tmp_path, preset="superb", layers="every:2",
                              overrides={"lr": 3e-4}, out_dir=tmp_path / "runs", seed=3)
    assert path == tmp_path / "runs" / "probe" / "randinit_hubert-tiny__asr__seed3.json"
    assert cfg["params"]["lr"] == 3e-4 and cfg["params"]["steps"] == 200000 and cfg["layers"] == "every:2"
    assert cfg["corpus"] == str(tmp_path.resolve()) and cfg["seed"] == 3 and cfg["preset"] == "superb"
    assert plan_probe("randinit:hubert-tiny", "asr", tmp_path, out_dir=tmp_path / "runs")[2] != h
    with pytest.raises(ConfigError, match="unknown key 'lrr'.*did you mean 'lr'"):
        plan_probe("fbank", "ks", tmp_path, overrides={"lrr": 1})
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        plan_probe("fbank", "ks", tmp_path, preset="fast")
    with pytest.raises(ConfigError, match=r"ks preset 'quick' \(.*ks.yaml with overrides\): steps must be an integer >= 1, got 0"):
        plan_probe("fbank", "ks", tmp_path, overrides={"steps": 0})
    with pytest.raises(ValueError, match="unknown task 'kws'"):
        plan_probe("fbank", "kws", tmp_path)


def test_layer_selection():
    up = SignalUpstream([0.1] * 6, nan_layer=5)
    specs = up.layers
    assert select_layers("all", specs) == [0, 1, 2, 3, 4, 5]
    assert select_layers("every:2", specs) == [0, 2, 4]
    assert select_layers([1, 4], specs) == [1, 4]
    assert select_layers("none", specs) == []
    with pytest.raises(ValueError, match=r"layers \[9\] do not exist"):
        select_layers([9], specs)
    assert weighted_sum_layers(specs) == [0, 1, 2, 3, 4]  # the odd-width layer is left out
    from bench.probe import normalize_layers

    assert normalize_layers("0, 3,5") == [0, 3, 5] and normalize_layers(None) == "all"
    with pytest.raises(ConfigError):
        normalize_layers("every:x")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bank_on_cuda_matches_cpu_ordering(tmp_path):
    corpus = class_corpus(tmp_path / "ks", classes=6, per_class={"train": 20, "dev": 10, "test": 20})
    up = SignalUpstream([0.5, 1.2, 1.9, 2.6, 3.3])
    kw = dict(progress=False, overrides={"steps": 200, "eval_every": 50, "lr": 3e-3})
    gpu = run_probe(up, "ks", corpus, out_dir=tmp_path / "gpu", device="cuda", **kw).result
    assert gpu.device.startswith("cuda")
    scores = _scores(gpu)
    assert -spearmanr(range(len(scores)), scores)[0] > 0.9, scores
    pr = run_probe(SignalUpstream([0.3, 0.55, 0.8, 1.05, 1.3]), "pr", phone_corpus(tmp_path / "pr"),
                   out_dir=tmp_path / "gpu", device="cuda", progress=False,
                   overrides={"steps": 100, "eval_every": 25}).result
    assert spearmanr(range(5), _scores(pr))[0] > 0.9


def test_kept_eval_features_change_nothing_but_forwards(tmp_path):
    corpus = phone_corpus(tmp_path / "pr", counts={"train-clean-100": 10, "dev-clean": 4, "test-clean": 4})
    up = SignalUpstream([0.3, 0.8])
    res = []
    for keep in (False, True):
        extract = {"max_seconds": 80.0, "max_size": 32, "bf16": True, "keep_eval": keep}
        res.append(run_probe(up, "pr", corpus, out_dir=tmp_path / str(keep), progress=False,
                             overrides={"steps": 6, "eval_every": 2, "extract": extract}).result)
    assert res[0].per_layer == res[1].per_layer and res[0].weighted_sum == res[1].weighted_sum


def test_kept_train_features_forward_each_utterance_once_and_change_nothing(tmp_path):
    corpus = phone_corpus(tmp_path / "pr", counts={"train-clean-100": 12, "dev-clean": 4, "test-clean": 4})

    class Counting(SignalUpstream):
        utterances = 0

        def forward(self, wavs, wav_lens):
            Counting.utterances += wavs.shape[0]
            return super().forward(wavs, wav_lens)

    up = Counting([0.3, 0.8])
    res, forwarded = [], []
    for keep in (False, True):
        Counting.utterances = 0
        extract = {"max_seconds": 80.0, "max_size": 32, "bf16": True, "keep_eval": True, "keep_train": keep}
        # batch 4 of 12 utterances: 3 batches an epoch, 9 steps = 3 epochs
        res.append(run_probe(up, "pr", corpus, out_dir=tmp_path / str(keep), progress=False,
                             overrides={"steps": 9, "eval_every": 3, "batch_size": 4, "extract": extract}).result)
        forwarded.append(Counting.utterances)
    assert res[0].per_layer == res[1].per_layer and res[0].weighted_sum == res[1].weighted_sum
    assert forwarded == [3 * 12 + 8, 12 + 8]  # train epochs (+ dev and test once, kept)


def test_weighted_sum_slice_is_its_own_adam_with_the_layer_weights():
    from bench.featurize import WeightedSum

    torch.manual_seed(0)
    stacked = PooledHeads(2, 4, 6, 3, torch.Generator().manual_seed(2))  # slice 1 = weighted-sum head
    feat = WeightedSum(3)
    stacked.trained_inputs(torch.tensor([1]))  # as the bank does: slice 0's input is a fixed feature
    ref_head, ref_feat = PooledHeads(1, 4, 6, 3), WeightedSum(3)
    with torch.no_grad():
        for p, q in zip(ref_head.parameters(), stacked.parameters()):
            p.copy_(q[1:2])
    sopt = StackedAdam(list(stacked.parameters()), 2, lr=0.1, clip=0.5, extra={1: list(feat.parameters())})
    ref = ModuleAdam([torch.nn.ModuleList([ref_head, ref_feat])], lr=0.1, clip=0.5)
    for _ in range(6):
        layers = torch.randn(3, 5, 4) * torch.tensor([1.0, 3.0, 0.5])[:, None, None]
        single = torch.randn(1, 5, 4)
        y = torch.randint(0, 3, (5,))
        sopt.zero_grad()
        ref.zero_grad()
        logits = stacked(torch.cat([single, feat(layers)[None]]))
        torch.nn.functional.cross_entropy(logits.reshape(-1, 3), y.repeat(2), reduction="sum").backward()
        torch.nn.functional.cross_entropy(ref_head(ref_feat(layers)[None])[0], y, reduction="sum").backward()
        n1 = sopt.step(torch.ones(2, dtype=torch.bool))
        n2 = ref.step(torch.ones(1, dtype=torch.bool))
        assert torch.allclose(n1[1], n2[0], rtol=1e-4)
    assert torch.allclose(feat.weights, ref_feat.weights, atol=1e-5)
    assert not torch.allclose(feat.weights, torch.zeros(3))  # the layer weights did train
    for p, q in zip(ref_head.parameters(), stacked.parameters()):
        assert torch.allclose(p[0], q[1], atol=1e-5)
    state = sopt.snapshot(1)
    with torch.no_grad():
        feat.weights.add_(1.0)
    sopt.restore(1, state)
    assert torch.allclose(feat.weights, ref_feat.weights, atol=1e-5)  # checkpoints include the layer weights


def test_layer_norm_option_pooled_matches_frames(tmp_path):
    """The cached mean of layer-normed frames is what the frame path would sum."""
    import torch.nn.functional as F

    from bench.featurize import masked_mean

    corpus = class_corpus(tmp_path / "c", classes=2, per_class={"train": 2})
    utts = corpus.split("train")
    up = SignalUpstream([0.5, 2.0])
    got, _ = pooled.load_or_extract(up, utts, split="train", corpus_root=corpus.root, cache_dir=None,
                                    device=torch.device("cpu"), progress=False)
    out = forward(up, *load_batch(utts), torch.device("cpu"))
    for l in range(2):
        want = masked_mean(F.layer_norm(out.hidden[l], (16,)), out.lengths[l])
        assert torch.allclose(got.ln_mean[l], want, atol=1e-5)
    res = run_probe(up, "ks", class_corpus(tmp_path / "k", classes=2, per_class={"train": 4, "dev": 2, "test": 2}),
                    out_dir=tmp_path / "runs", progress=False,
                    overrides={"steps": 4, "eval_every": 2, "weighted_sum": {"layer_norm": True}}).result
    assert res.weighted_sum.layer_norm is True and res.weighted_sum.test is not None


def test_training_buckets_halve_over_the_length_limit():
    """s3prl halves a training bucket with a long utterance (PR: over 300000 samples; ASR: always)."""
    from itertools import islice

    from dataclasses import replace

    from bench.probe import resolve_params, train_batches, typed_params

    durs = [2.0] * 16 + [19.0] * 16
    params = replace(typed_params("pr", resolve_params("pr", "superb")), max_batch_seconds=400.0, batch_size=16,
                     half_batch_over_s=18.75)
    epoch = list(islice(train_batches(durs, params, seed=0), 3))
    assert sorted(len(b) for b in epoch) == [8, 8, 16] and all(len(b) == 8 for b in epoch if durs[b[0]] > 18.75)
    assert sorted(i for b in epoch for i in b) == list(range(32))  # both halves are used
    whole = list(islice(train_batches(durs, replace(params, half_batch_over_s=None), seed=0), 2))
    assert sorted(len(b) for b in whole) == [16, 16]


def test_utterance_batches_keep_the_partial_batch_unless_balanced():
    """IC's s3prl loader ends an epoch with a partial batch; KS's balanced loader drops it."""
    from itertools import islice

    from bench.probe import _shuffled_batches

    plain = list(islice(_shuffled_batches(70, 32, seed=0, balance=None), 4))
    assert [len(b) for b in plain] == [32, 32, 6, 32] and sorted(i for b in plain[:3] for i in b) == list(range(70))
    labels = ["a"] * 60 + ["b"] * 10
    balanced = list(islice(_shuffled_batches(70, 32, seed=0, balance=(labels, list(range(70)))), 3))
    assert [len(b) for b in balanced] == [32, 32, 32]  # 70 draws per epoch: the last 6 are dropped


def test_input_gradient_only_for_trained_slices_changes_no_other_gradient():
    """The first Linear skips the input gradient of fixed-feature slices; everything else is baddbmm's."""
    from tasks.base import StackedLinear

    torch.manual_seed(0)
    full = StackedLinear(4, 5, 3, torch.Generator().manual_seed(3))
    part = StackedLinear(4, 5, 3, torch.Generator().manual_seed(3))
    part.input_grad = torch.tensor([1, 3])
    x = torch.randn(4, 2, 6, 5)
    outs = []
    for lin in (full, part):
        xi = x.clone().requires_grad_(True)
        y = lin(xi)
        (y * torch.arange(y.numel()).reshape(y.shape).sin()).sum().backward()
        outs.append((y.detach(), xi.grad, lin.weight.grad, lin.bias.grad))
    (y1, gx1, gw1, gb1), (y2, gx2, gw2, gb2) = outs
    assert torch.equal(y1, y2) and torch.allclose(gw1, gw2, atol=1e-6) and torch.allclose(gb1, gb2, atol=1e-6)
    assert torch.allclose(gx2[[1, 3]], gx1[[1, 3]], atol=1e-6) and gx1[[1, 3]].abs().sum() > 0
    assert torch.equal(gx2[[0, 2]], torch.zeros_like(gx2[[0, 2]]))  # skipped: never needed


def test_frame_heads_in_one_product_are_the_two_linears():
    """PR's Linear -> Linear computed as x (W1 W2) + (b1 W2 + b2): same logits, same gradients."""
    from tasks.base import FrameLinearHeads

    torch.manual_seed(0)
    heads = FrameLinearHeads(3, 6, 16, 5, torch.Generator().manual_seed(4))
    heads.trained_inputs(torch.tensor([2]))  # slice 2 stands for a weighted sum
    x = torch.randn(3, 2, 7, 6)
    weights = torch.randn(3, 2, 7, 5)
    grads = []
    for fn in (lambda v: heads.out(heads.proj(v)), heads):
        heads.zero_grad()
        xi = x.clone().requires_grad_(True)
        y = fn(xi)
        (y * weights).sum().backward()
        grads.append((y.detach(), xi.grad[2], *[p.grad.clone() for p in heads.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
