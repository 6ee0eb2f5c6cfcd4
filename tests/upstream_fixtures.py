"""Helpers shared by the upstream tests: audio with known lengths, tiny HF model folders
saved with save_pretrained, and an s3prl-format HuBERT checkpoint with its HF twin."""

from __future__ import annotations

from pathlib import Path

import torch

# the tiny architecture of upstreams.randinit's *-tiny presets, in fairseq notation
TINY_CONV = "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2"


def padded_audio(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 'speech' (noise with a slow envelope) zero-padded to the longest; [B, S], [B]."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths, dtype=torch.long)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        t = torch.arange(n) / 16000
        env = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t + i)
        wavs[i, :n] = 0.1 * env * torch.randn(n, generator=g)
    return wavs, lens


def save_tiny_hf(preset: str, folder: Path, do_normalize: bool, attention_mask: bool, seed: int = 0) -> Path:
    """Save a randomly initialised tiny `preset` model plus a feature-extractor config."""
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    from upstreams.randinit import preset_config

    torch.manual_seed(seed)
    model = AutoModel.from_config(preset_config(preset))
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0,
        do_normalize=do_normalize, return_attention_mask=attention_mask,
    ).save_pretrained(folder)
    return folder


def make_s3prl_hubert_ckpt(path: Path, seed: int = 0, layer_norm_first: bool = False) -> Path:
    """A random-weight tiny HuBERT checkpoint in s3prl's converted format
    (task_cfg, model_cfg, model_weight, dictionaries_symbols; see
    s3prl/upstream/hubert/convert.py:load_converted_model)."""
    from upstreams.s3prl_compat import install

    install()
    from dataclasses import asdict

    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

    model_cfg = HubertConfig(
        label_rate=50.0, extractor_mode="layer_norm" if layer_norm_first else "default",
        encoder_layers=3, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=2,
        conv_feature_layers=TINY_CONV, conv_pos=16, conv_pos_groups=4, final_dim=16,
        layer_norm_first=layer_norm_first, conv_bias=layer_norm_first,
    )
    task_cfg = HubertPretrainingConfig(label_rate=50.0, normalize=layer_norm_first)
    symbols = [[f"c{i}" for i in range(10)]]
    torch.manual_seed(seed)
    model = HubertModel(model_cfg, task_cfg, symbols)
    # fairseq initialises LayerNorms to identity; randomise them so a wrong mapping shows
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("feature_extractor.conv_layers.0.2.weight"):
                p.add_(0.1 * torch.randn_like(p))
    torch.save(
        {"task_cfg": asdict(task_cfg), "model_cfg": asdict(model_cfg),
         "model_weight": model.state_dict(), "dictionaries_symbols": symbols},
        path,
    )
    return path


def _hf_name(k: str) -> str | None:
    """fairseq/s3prl HuBERT parameter name -> transformers HubertModel name (None: not in HF)."""
    if k.startswith(("label_embs_concat", "final_proj")):
        return None
    rules = [
        ("mask_emb", "masked_spec_embed"),
        ("post_extract_proj.", "feature_projection.projection."),
        ("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
        ("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
        ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
        (".self_attn_layer_norm.", ".layer_norm."),
        (".self_attn.", ".attention."),
        (".fc1.", ".feed_forward.intermediate_dense."),
        (".fc2.", ".feed_forward.output_dense."),
    ]
    if k.startswith("layer_norm."):
        return "feature_projection.layer_norm." + k.split(".", 1)[1]
    if k.startswith("feature_extractor.conv_layers."):
        parts = k.split(".")  # feature_extractor.conv_layers.<i>.<j>.<weight|bias>
        sub = {"0": "conv", "2": "layer_norm"}[parts[3]]
        if parts[3] == "2" and len(parts) == 6 and parts[4] in ("weight", "bias"):
            return f"feature_extractor.conv_layers.{parts[2]}.layer_norm.{parts[4]}"
        if parts[3] == "2":  # layer-norm mode: Sequential(TransposeLast, Fp32LayerNorm, TransposeLast)
            return f"feature_extractor.conv_layers.{parts[2]}.layer_norm.{parts[-1]}"
        return f"feature_extractor.conv_layers.{parts[2]}.{sub}.{parts[-1]}"
    for a, b in rules:
        k = k.replace(a, b)
    return k


def s3prl_hubert_to_hf(ckpt: Path, folder: Path) -> Path:
    """Write the same weights as a transformers HubertModel folder (+ feature extractor)."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    mc, tc = state["model_cfg"], state["task_cfg"]
    convs = eval(mc["conv_feature_layers"])  # our own literal from TINY_CONV
    lnf = bool(mc["layer_norm_first"])
    config = HubertConfig(
        hidden_size=mc["encoder_embed_dim"], num_hidden_layers=mc["encoder_layers"],
        num_attention_heads=mc["encoder_attention_heads"], intermediate_size=mc["encoder_ffn_embed_dim"],
        conv_dim=[c[0] for c in convs], conv_kernel=[c[1] for c in convs], conv_stride=[c[2] for c in convs],
        conv_bias=bool(mc["conv_bias"]), feat_extract_norm="layer" if lnf else "group",
        do_stable_layer_norm=lnf, num_conv_pos_embeddings=mc["conv_pos"],
        num_conv_pos_embedding_groups=mc["conv_pos_groups"], feat_proj_layer_norm=True, layer_norm_eps=1e-5,
    )
    model = HubertModel(config)
    mapped = {}
    for k, v in state["model_weight"].items():
        name = _hf_name(k)
        if name is not None:
            mapped[name] = v
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise AssertionError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=bool(tc["normalize"]), return_attention_mask=lnf).save_pretrained(folder)
    return folder


def per_utterance_gap(up, wavs: torch.Tensor, lens: torch.Tensor) -> float:
    """Largest |padded-batch - alone| over every layer's valid frames; also checks that each
    utterance's frame counts are the same in the batch and alone."""
    with torch.inference_mode():
        batch = up(wavs, lens)
        gap = 0.0
        for i, n in enumerate(lens.tolist()):
            alone = up(wavs[i : i + 1, :n], lens[i : i + 1])
            for spec, hb, nb, ha, na in zip(up.layers, batch.hidden, batch.lengths, alone.hidden, alone.lengths):
                t = int(na[0])
                assert int(nb[i]) == t, f"{spec.name}: {int(nb[i])} frames in batch, {t} alone"
                assert ha.shape[1] == t
                gap = max(gap, (hb[i, :t] - ha[0, :t]).abs().max().item())
    return gap


def make_s3prl_mrhubert_ckpt(path: Path, label_rate_ratios: tuple[int, ...] = (1, 2), seed: int = 0) -> Path:
    """A random-weight tiny MR-HuBERT checkpoint built with s3prl's own multires_hubert model code
    and config, in the converted format its expert loads (task_cfg, model_cfg, model_weight,
    dictionaries_symbols; s3prl/upstream/multires_hubert/convert.py). `label_rate_ratios` (1, 2)
    is the published two-rate model (20 and 40 ms); (1, 2, 1, 2) a three-rate ablation (80 ms)."""
    from upstreams.s3prl_compat import install

    install()
    from dataclasses import asdict

    from s3prl.upstream.multires_hubert.hubert_model import (
        MultiresHubertConfig,
        MultiresHubertModel,
        MultiresHubertPretrainingConfig,
    )

    ratios = list(label_rate_ratios)
    model_cfg = MultiresHubertConfig(
        label_rate=50.0, label_rate_ratios=ratios, encoder_layers=2, encoder_embed_dim=64,
        encoder_ffn_embed_dim=128, encoder_attention_heads=2, conv_feature_layers=TINY_CONV, conv_pos=16,
        conv_pos_groups=4, final_dim=16, conv_adapator_kernal=3,
    )
    task_cfg = MultiresHubertPretrainingConfig(label_rate=50.0, label_rate_ratios=ratios)
    symbols = [[f"c{i}" for i in range(10)] for _ in range(len(ratios) // 2 + 1)]
    torch.manual_seed(seed)
    model = MultiresHubertModel(model_cfg, task_cfg, symbols)
    torch.save({"task_cfg": asdict(task_cfg), "model_cfg": asdict(model_cfg),
                "model_weight": model.state_dict(), "dictionaries_symbols": symbols}, path)
    return path
