"""The ASR BiLSTM heads: the fused CPU pass (`tasks.base.fused_bilstm`) against nn.LSTM per head."""

from __future__ import annotations

import json

import pytest
import torch

import tasks
from bench.probe import run_probe
from tasks.base import LSTM_PATH_ENV, BiLSTMHead, ModuleHeads, lstm_path
from test_probe_fakes import one_thread  # noqa: F401


def _heads(groups: int, dropout: float) -> ModuleHeads:
    torch.manual_seed(0)
    return ModuleHeads([BiLSTMHead(6, 5, 4, 2, dropout, 32) for _ in range(groups)])


def _step(heads: ModuleHeads, x: torch.Tensor, lens: torch.Tensor, batch, path: str, monkeypatch):
    """Logits, per-head CTC losses and every gradient (parameters and input) of one backward."""
    monkeypatch.setenv(LSTM_PATH_ENV, path)
    asr = tasks.get("asr")
    heads.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    logits = heads(x, lens)
    losses = asr.losses(logits, lens, batch, asr.fit([]))
    losses.sum().backward()
    return logits.detach(), losses.detach(), [p.grad.clone() for p in heads.parameters()] + [x.grad]


@pytest.mark.parametrize("dropout,train", [(0.0, True), (0.3, False)])
def test_fused_bilstm_equals_per_head_nn_lstm(dropout, train, monkeypatch):
    """G=3 heads, 2 LSTM layers, random lengths (one of a single frame, one padded to 0): the
    fused pass gives nn.LSTM-on-packed-sequences' logits, losses and gradients."""
    heads = _heads(3, dropout).train(train)
    gen = torch.Generator().manual_seed(1)
    lens = torch.tensor([23, 1, 17, 0, 9])
    x = torch.randn(3, 5, 23, 6, generator=gen)
    y_lens = torch.tensor([5, 1, 4, 1, 3])
    from bench.types import Batch

    batch = Batch(torch.randint(4, 32, (5, 5), generator=gen), y_lens)
    ref = _step(heads, x, lens, batch, "per-head", monkeypatch)
    got = _step(heads, x, lens, batch, "fused", monkeypatch)
    assert torch.allclose(got[0], ref[0], atol=1e-5)
    assert torch.allclose(got[1], ref[1], atol=1e-5)
    assert len(got[2]) == len(ref[2]) == 3 * (2 + 16 + 2) + 1  # per head: proj, 4 tensors x 2 layers x 2 directions, out; and x
    for g, r in zip(got[2], ref[2]):
        assert torch.allclose(g, r, atol=1e-5), (g - r).abs().max()
    # past its length a sequence's LSTM output is zero: the logits there are the output bias
    bias = torch.stack([h.out.bias for h in heads.heads]).detach()
    assert torch.allclose(got[0][:, 2, 17:], bias[:, None].expand(3, 6, 32))


def test_fused_bilstm_reverse_starts_at_each_sequence_end(monkeypatch):
    """Padding never reaches a sequence's frames: the reverse direction starts at its own last frame."""
    monkeypatch.setenv(LSTM_PATH_ENV, "fused")
    heads = _heads(2, 0.2).eval()
    x = torch.randn(2, 1, 9, 6)
    long = heads(torch.cat([x, torch.randn(2, 1, 5, 6)], 2), torch.tensor([9]))
    assert torch.allclose(long[:, :, :9], heads(x, torch.tensor([9])), atol=1e-6)


def test_fused_bilstm_dropout_only_in_training(monkeypatch):
    monkeypatch.setenv(LSTM_PATH_ENV, "fused")
    heads = _heads(2, 0.5)
    x, lens = torch.randn(2, 3, 8, 6), torch.tensor([8, 5, 2])
    evals = [heads.eval()(x, lens) for _ in range(2)]
    assert torch.equal(evals[0], evals[1])
    train = heads.train()(x, lens)
    assert not torch.allclose(train, evals[0])


def test_lstm_path_choice(monkeypatch):
    monkeypatch.delenv(LSTM_PATH_ENV, raising=False)
    assert lstm_path(torch.device("cpu")) == "fused"
    assert lstm_path(torch.device("cuda")) == "per-head"  # cuDNN's kernels on a GPU
    monkeypatch.setenv(LSTM_PATH_ENV, "per-head")
    assert lstm_path(torch.device("cpu")) == "per-head"
    monkeypatch.setenv(LSTM_PATH_ENV, "fast")
    with pytest.raises(ValueError, match=r"\$LAYERBENCH_LSTM='fast': must be one of auto, fused, per-head"):
        lstm_path(torch.device("cpu"))
    assert not ModuleHeads([BiLSTMHead(6, 5, 4, 2, 0.0, 32), BiLSTMHead(6, 5, 8, 2, 0.0, 32)]).fusable


@pytest.mark.slow
def test_asr_probe_same_scores_fused_and_per_head(synth_root, tmp_path, monkeypatch, one_thread):
    """A short ASR bank with dropout 0 gives the same per-layer scores either way (float rounding only)."""
    results = {}
    for path in ("per-head", "fused"):
        monkeypatch.setenv(LSTM_PATH_ENV, path)
        out = run_probe("randinit:hubert-tiny", "asr", synth_root, out_dir=tmp_path / path, progress=False,
                        overrides={"steps": 4, "eval_every": 2, "batch_size": 4, "head": {"dropout": 0.0}})
        results[path] = json.loads(out.path.read_text())
    ref, got = results["per-head"], results["fused"]
    assert ref["config_hash"] == got["config_hash"]
    for a, b in zip(ref["per_layer"] + [ref["weighted_sum"]], got["per_layer"] + [got["weighted_sum"]]):
        for key in ("dev", "test", "test_cer"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a.get("name"), key)
    # the learnt layer weights went through the LSTMs' gradients: equal up to rounding
    assert ref["weighted_sum"]["weights"] == pytest.approx(got["weighted_sum"]["weights"], abs=1e-5)
    assert ref["weighted_sum"]["weights"] != pytest.approx([0.25] * 4, abs=1e-4)  # they moved
