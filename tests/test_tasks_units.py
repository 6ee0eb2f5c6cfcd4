"""Task definitions: targets, heads, losses, decoding, metrics and presets, on handmade inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tasks
from bench.data.manifest import Segment, Utterance
from bench import schema
from bench.config import ConfigError
from bench.featurize import WeightedSum, masked_mean, spec_augment
from bench.params import SpecAugParams
from bench.probe import resolve_params, typed_params
from tasks.base import BiLSTMHead, ModuleHeads, PooledHeads, ctc_greedy, ctc_losses, error_rate


def _utt(**kw) -> Utterance:
    return Utterance(kw.pop("id", "u"), Path("/nonexistent.wav"), 1.0, **kw)


def test_registry_names_and_unknown_name():
    assert tasks.names() == ["pr", "asr", "ic", "slurp_scenario", "slurp_action", "ks"]
    assert tasks.get("ic").slots == ("action", "object", "location")
    with pytest.raises(ValueError, match=r"unknown task 'slurp'.*known tasks: pr, asr"):
        tasks.get("slurp")


def _lexicon(tmp_path: Path) -> Path:
    """Two lexicon files in s3prl's format; HELLO is listed three times (the first entry wins)."""
    (tmp_path / "lexicon").mkdir()
    (tmp_path / "lexicon" / "a.txt").write_text("HELLO\tHH AH0 L OW1\nWORLD  W ER1 L D\nHELLO\tHH EH0 L OW1\n\n")
    (tmp_path / "lexicon" / "b.txt").write_text("HELLO\tHH AH1 L OW0\nTHE\tDH AH0\n")
    return tmp_path / "LibriSpeech"


def _params(task: str, **overrides):
    """The task's quick preset values, typed, with `overrides`."""
    return typed_params(task, resolve_params(task, "quick", overrides))


PR_CFG = _params("pr", targets={"scheme": "lexicon", "lexicon": ["lexicon/a.txt", "lexicon/b.txt"]})


def test_pr_lexicon_targets_match_s3prl_word_encoder(tmp_path):
    from upstreams.s3prl_compat import install

    install()
    from s3prl.downstream.ctc.text import WordTextEncoder

    from bench.data.arpabet import PHONES71

    pr = tasks.get("pr")
    space = pr.fit([], PR_CFG, _lexicon(tmp_path))
    u = _utt(text="THE WORLD HELLO")
    phones = ["DH", "AH0", "W", "ER1", "L", "D", "HH", "AH0", "L", "OW1"]  # first pronunciation of each word
    assert pr.tokens(u, space) == phones
    # s3prl's encoder over its phoneme vocabulary (downstream/ctc/vocab/phoneme.txt = PHONES71)
    (tmp_path / "phoneme.txt").write_text("\n".join(PHONES71) + "\n")
    enc = WordTextEncoder.load_from_file(str(tmp_path / "phoneme.txt"))
    b = pr.targets([u], space)
    assert b.y[0].tolist() == enc.encode(" ".join(phones)) and enc.encode(" ".join(phones))[-1] == enc.eos_idx
    assert space.size == enc.vocab_size == 74 and b.y_lens.tolist() == [11]
    assert b.refs == [enc.decode(b.y[0].tolist())] == [" ".join(phones)]  # the eos is not scored
    info = pr.target_info(space)
    assert (info["scheme"], info["outputs"], info["blank"], info["eos"]) == ("lexicon", 74, "<pad>", "<eos>")
    assert [Path(x["path"]).name for x in info["lexicon"]] == ["a.txt", "b.txt"]
    # hypotheses drop blanks and eos as s3prl does (eos mid-sequence included)
    bee = space.symbols.index("B")
    ids = [0, bee, 1, bee, 0, 1]  # blank, B, eos, B, blank, eos
    logits = torch.nn.functional.one_hot(torch.tensor([ids]), 74).float()[None]
    assert pr.predict(logits, torch.tensor([6]), space) == [["B B"]]
    with pytest.raises(ValueError, match="utterance u: word 'GOODBYE' is in no lexicon file"):
        pr.targets([_utt(text="GOODBYE")], space)


def test_pr_lexicon_errors_name_the_file(tmp_path):
    pr = tasks.get("pr")
    root = _lexicon(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt.*s3prl/downstream/ctc/lexicon/"):
        pr.fit([], _params("pr", targets={"lexicon": ["lexicon/missing.txt"]}), root)
    (tmp_path / "lexicon" / "bad.txt").write_text("OK\tOW1 K EY1\nNO\tN OW9\n")
    with pytest.raises(ValueError, match=r"bad\.txt line 2: 'NO' uses phone\(s\) \['OW9'\]"):
        pr.fit([], _params("pr", targets={"lexicon": ["lexicon/bad.txt"]}), root)
    with pytest.raises(ConfigError, match=r"pr.yaml with overrides\): targets.scheme must be one of lexicon, "
                                          r"alignment39, got 'g2p'"):
        _params("pr", targets={"scheme": "g2p"})


def test_pr_alignment39_targets_strip_stress_and_drop_silence():
    pr = tasks.get("pr")
    space = pr.fit([], _params("pr", targets={"scheme": "alignment39"}), Path("."))
    u = _utt(phones=[Segment("", 0, .1), Segment("HH", .1, .2), Segment("AH0", .2, .3), Segment("sp", .3, .4),
                     Segment("L", .4, .5), Segment("OW1", .5, .6), Segment("sil", .6, .7)])
    assert pr.tokens(u, space) == ["HH", "AH", "L", "OW"]
    b = pr.targets([u], space)
    assert b.refs == ["HH AH L OW"] and b.y_lens.tolist() == [4] and (b.y > 0).all()  # no eos
    assert space.decode(b.y[0].tolist()) == ["HH", "AH", "L", "OW"]
    assert pr.target_info(space)["outputs"] == 40 and pr.target_info(space)["eos"] is None
    with pytest.raises(ValueError, match="has no phone alignment"):
        pr.tokens(_utt(id="x"), space)
    with pytest.raises(ValueError, match="utterance bad.*'QQ'"):
        pr.tokens(_utt(id="bad", phones=[Segment("QQ", 0, 1)]), space)


def test_asr_targets_match_s3prl_dictionary(tmp_path):
    from types import SimpleNamespace

    from upstreams.s3prl_compat import install

    install()
    from s3prl.downstream.asr.dataset import SequenceDataset
    from s3prl.downstream.asr.dictionary import Dictionary

    from tasks.asr import CHARS

    asr = tasks.get("asr")
    space = asr.fit([])
    # s3prl's transcript processing on a LibriSpeech chapter file, and its fairseq dictionary
    chapter = tmp_path / "train-clean-100" / "19" / "198"
    chapter.mkdir(parents=True)
    text = "IT'S A TEST OF THE CHARACTER TARGETS"
    (chapter / "19-198.trans.txt").write_text(f"19-198-0001 {text}\n")
    ref = SequenceDataset._load_transcript(SimpleNamespace(libri_root=str(tmp_path)),
                                           ["train-clean-100/19/198/19-198-0001.flac"])["19-198-0001"]
    (tmp_path / "char.dict").write_text("".join(f"{c} {1000 - i}\n" for i, c in enumerate(CHARS)))
    d = Dictionary.load(str(tmp_path / "char.dict"))
    want = d.encode_line(ref, line_tokenizer=lambda x: x.split(), add_if_not_exist=False).tolist()
    b = asr.targets([_utt(text=text.lower())], space)
    assert b.y[0].tolist() == want and want[-1] == d.eos() and want[-2] == d.index("|")
    assert space.size == len(d) == 32 and space.blank == d.bos()
    assert b.refs == [text]
    info = asr.target_info(space)
    assert (info["outputs"], info["blank"], info["eos"]) == (32, "<s>", "</s>")
    assert asr.render(list("|HELLO||WORLD|")) == "HELLO WORLD"
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
    heads = ic.make_heads(2, 4, space, _params("ic", head={"hidden": 8}), torch.Generator().manual_seed(0))
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


def test_ks_is_balanced_by_file_and_slurp_uses_one_slot():
    ks = tasks.get("ks")
    train = [_utt(id=str(i), labels={"keyword": w}) for i, w in enumerate(["yes", "yes", "no"])]
    labels, items = ks.balanced_draw(train)
    assert labels == ["yes", "yes", "no"] and len(set(items)) == 1  # handmade utterances share one path
    assert tasks.get("slurp_action").slots == ("action",) and tasks.get("slurp_scenario").balanced_draw(train) is None
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


SPECAUG = {"enabled": True, "apply_time_warp": True, "time_warp_window": 5, "num_time_mask": 2,
           "time_mask_width_range": [0, 40], "num_freq_mask": 4, "freq_mask_width_range": [0, 50]}


def test_spec_augment_with_time_warp_equals_s3prl_specaug():
    from upstreams.s3prl_compat import install

    install()
    from s3prl.downstream.specaug import SpecAug

    s3prl_cfg = {k: v for k, v in SPECAUG.items() if k != "enabled"}
    lens = torch.tensor([120, 97, 60, 8])  # the last is too short to warp (s3prl leaves it)
    x = torch.randn(2, 4, 130, 64)  # [G, B, T, D]: two heads
    for seed in range(5):
        torch.manual_seed(seed)  # s3prl draws from torch's global generator
        ref, _ = SpecAug(**s3prl_cfg)([x[0, i, : lens[i]].clone() for i in range(4)])
        y = spec_augment(x, lens, schema.load(SpecAugParams, SPECAUG, "test"), torch.Generator().manual_seed(seed))
        assert y.shape == x.shape and torch.equal(y[0] == 0, y[1] == 0)  # the same draws for every head
        for i in range(4):
            assert torch.allclose(y[0, i, : lens[i]], ref[i], atol=1e-6)
            assert (y[:, i, lens[i]:] == 0).all()  # past the length: zeros, as s3prl's re-padded batch
    # mask statistics: widths in [0, 50) over the whole feature axis (no cap), time bands over the batch
    torch.manual_seed(0)
    frac = torch.stack([(spec_augment(torch.ones(1, 8, 100, 64), torch.full((8,), 100),
                                      schema.load(SpecAugParams, dict(SPECAUG, apply_time_warp=False), "test"),
                                      torch.Generator().manual_seed(s)) == 0)
                        .float().mean() for s in range(50)]).mean()
    s3 = SpecAug(**dict(s3prl_cfg, apply_time_warp=False))
    ref = torch.stack([(torch.stack(s3([torch.ones(100, 64) for _ in range(8)])[0]) == 0).float().mean()
                       for _ in range(50)]).mean()
    assert abs(frac - ref) < 0.05 and frac > 0.3  # 4 bands up to 49 of 64 features mask a lot
    assert spec_augment(x, lens, SpecAugParams(enabled=False), torch.Generator()) is x


def test_superb_presets_follow_the_design_table():
    # (steps, lr, batch, accumulation, eval interval): s3prl's config.yaml / libriphone.yaml runner values
    want = {"pr": (100000, 1e-2, 16, 2, 1000), "asr": (200000, 1e-4, 32, 1, 2000), "ic": (200000, 1e-4, 32, 1, 5000),
            "ks": (200000, 1e-4, 32, 1, 5000), "slurp_scenario": (200000, 1e-4, 32, 1, 5000),
            "slurp_action": (200000, 1e-4, 32, 1, 5000)}
    for name in tasks.names():
        presets = tasks.get(name).presets()
        assert set(presets) == {"superb", "quick"}
        s = presets["superb"]
        assert (s["steps"], s["lr"], s["batch_size"], s["accumulate"], s["eval_every"]) == want[name], name
        assert s["clip"] == 1.0 and s["weighted_sum"] == {"enabled": True, "layer_norm": False}
        assert s["extract"]["bf16"] is False, name  # SUPERB runs the upstream in fp32
        assert s["nonfinite"] == "skip", name  # s3prl skips NaN-gradient steps
        assert set(presets["quick"]) == set(s), name  # every superb key can be overridden in quick too
    asr = tasks.get("asr").presets()["superb"]
    assert asr["head"] == {"proj": 1024, "hidden": 1024, "layers": 2, "dropout": 0.2}
    assert asr["half_batch_over_s"] == 2000 / 16000  # HALF_BATCHSIZE_TIME: 16 effective
    assert asr["specaug"] == SPECAUG  # asr/config.yaml, time warping included
    pr = tasks.get("pr").presets()["superb"]
    assert pr["head"] == {"hidden": 256} and pr["half_batch_over_s"] == 300000 / 16000
    assert pr["targets"]["scheme"] == "lexicon" and [Path(p).name for p in pr["targets"]["lexicon"]] == [
        "librispeech-lexicon-200k-g2p.txt", "librispeech-lexicon-allothers-g2p.txt"]
    assert tasks.get("ks").presets()["superb"]["dev_sampler"] == "balanced"
    assert "dev_sampler" not in tasks.get("ic").presets()["superb"]  # KS's delta only


def test_presets_are_defaults_plus_deltas_with_errors_naming_the_file(tmp_path):
    from bench.config import ConfigError, load_presets

    (tmp_path / "base.yaml").write_text("superb: {steps: 10, lr: 0.1, head: {hidden: 4}}\n"
                                        "quick: {base: superb, steps: 2, head: {hidden: 2}}\n")
    (tmp_path / "more.yaml").write_text("extends: base.yaml\nquick: {extra: 1}\n")
    assert load_presets(tmp_path / "more.yaml") == {
        "superb": {"steps": 10, "lr": 0.1, "head": {"hidden": 4}},
        "quick": {"steps": 2, "lr": 0.1, "head": {"hidden": 2}, "extra": 1}}
    (tmp_path / "typo.yaml").write_text("superb: {steps: 10}\nquick: {base: superb, stepz: 2}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'stepz' in .*typo.yaml preset 'quick' \(did you mean 'steps'"):
        load_presets(tmp_path / "typo.yaml")
    (tmp_path / "nobase.yaml").write_text("quick: {base: superbb, steps: 2}\n")
    with pytest.raises(ConfigError, match=r"base preset 'superbb' is not defined above it"):
        load_presets(tmp_path / "nobase.yaml")
