"""`randinit:<preset-or-config.json>`: published architectures with random weights.

The paper's control: the same architecture, never trained, seeded. Weights come from the
model class's own HF initialisation under `torch.manual_seed(seed)` (default 0), so the same
seed gives identical outputs and another seed different ones; the result files record
`revision = "randinit-seed<N>"`.

Presets are the published sizes (base: 12 x 768, large: 24 x 1024, 320-sample stride; the
`-large` presets are the pre-LN "stable layer norm" LibriLight-60k architecture with a
layer-norm conv encoder, as in wav2vec2-large-lv60 / hubert-large-ll60k / wavlm-large) and
`-tiny` versions of every HF family for tests and the CPU demo (3 layers x 64, 32 channels
per conv layer, the same 7-layer conv stack with a total stride of 320).

Input convention (no feature-extractor file exists for a random model): audio is
normalised per utterance (as every published checkpoint's extractor does). `padding=`
(exact | s3prl) is the hf adapter's padding mode (see `upstreams.hf`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from upstreams.base import file_checksum, unresolved
from upstreams.hf import HFUpstream

_LARGE = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
)
_TINY = dict(
    hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=128,
    conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
)
_TINY_LARGE = dict(_TINY, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
# The demo's pre-trained architecture (`layerbench pretrain --arch hubert-small`): 3.4 M
# parameters (6.8 MB in fp16, so a few checkpoints ship in the package), pre-LN with a
# layer-norm conv encoder, no dropout (an hour of CPU training).
_SMALL = dict(
    hidden_size=192, num_hidden_layers=6, num_attention_heads=4, intermediate_size=768,
    conv_dim=(64, 64, 128, 128, 256, 256, 256), conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
    num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16,
    hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
    final_dropout=0.0, layerdrop=0.0,
)

# preset -> (HF model_type, config overrides on top of that type's defaults, description)
PRESETS: dict[str, tuple[str, dict, str]] = {
    "wav2vec2-base": ("wav2vec2", {}, "wav2vec 2.0 Base, 12 x 768"),
    "wav2vec2-large": ("wav2vec2", _LARGE, "wav2vec 2.0 Large (LV-60 architecture), 24 x 1024"),
    "hubert-base": ("hubert", {}, "HuBERT Base, 12 x 768"),
    "hubert-large": ("hubert", _LARGE, "HuBERT Large, 24 x 1024"),
    "wavlm-base": ("wavlm", {}, "WavLM Base, 12 x 768"),
    "wavlm-large": ("wavlm", dict(_LARGE, conv_bias=False), "WavLM Large, 24 x 1024"),
    "data2vec-audio-base": ("data2vec-audio", {}, "data2vec-audio Base, 12 x 768"),
    "data2vec-audio-large": (
        "data2vec-audio",
        dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
        "data2vec-audio Large, 24 x 1024",
    ),
    "wav2vec2-tiny": ("wav2vec2", _TINY, "tiny wav2vec 2.0 (group-norm conv, post-LN), 3 x 64"),
    "wav2vec2-large-tiny": ("wav2vec2", _TINY_LARGE, "tiny wav2vec 2.0 Large architecture (pre-LN), 3 x 64"),
    "hubert-tiny": ("hubert", _TINY, "tiny HuBERT, 3 x 64"),
    "hubert-small": ("hubert", _SMALL, "small HuBERT (pre-LN), 6 x 192: the demo's pre-trained architecture"),
    "hubert-large-tiny": ("hubert", _TINY_LARGE, "tiny HuBERT Large architecture (pre-LN), 3 x 64"),
    "wavlm-tiny": ("wavlm", dict(_TINY, num_buckets=64, max_bucket_distance=200), "tiny WavLM, 3 x 64"),
    "data2vec-audio-tiny": (
        "data2vec-audio",
        dict(_TINY, num_conv_pos_embeddings=3, conv_pos_kernel_size=5),
        "tiny data2vec-audio, 3 x 64",
    ),
    "unispeech-sat-tiny": ("unispeech-sat", _TINY, "tiny UniSpeech-SAT, 3 x 64"),
    "sew-tiny": ("sew", dict(_TINY, squeeze_factor=2), "tiny SEW (squeeze 2: transformer at 640 samples), 3 x 64"),
    "sew-d-tiny": (
        "sew-d",
        dict(_TINY, squeeze_factor=2, max_position_embeddings=128, position_buckets=32),
        "tiny SEW-D (squeeze 2), 3 x 64",
    ),
    "wav2vec2-conformer-tiny": (
        "wav2vec2-conformer",
        dict(_TINY, conv_depthwise_kernel_size=7),
        "tiny wav2vec2-conformer (relative positions), 3 x 64",
    ),
}


def presets() -> dict[str, str]:
    """Preset name -> one-line description (for `layerbench list upstreams`)."""
    return {k: v[2] for k, v in PRESETS.items()}


def preset_config(name: str, spec: str | None = None):
    """The HF config object of a preset (tests save tiny models from these)."""
    from transformers import AutoConfig

    if name not in PRESETS:
        raise unresolved(spec or f"randinit:{name}", "randinit preset", name, list(PRESETS))
    model_type, overrides, _ = PRESETS[name]
    return AutoConfig.for_model(model_type, **overrides)


def _config_from_file(name: str, spec: str):
    from transformers import AutoConfig

    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"upstream spec {spec!r}: config file {str(path)!r} does not exist")
    try:
        d = json.loads(path.read_text())
        model_type = d.pop("model_type")
    except (json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"upstream spec {spec!r}: {str(path)!r} is not an HF config.json with a model_type ({e})") from e
    for k in ("architectures", "transformers_version", "torch_dtype", "dtype"):
        d.pop(k, None)
    return AutoConfig.for_model(model_type, **d), file_checksum([path])


def load_randinit(name: str, *, spec: str, seed: int = 0, cnn_layers: bool = False,
                  padding: str = "exact") -> HFUpstream:
    """Build the preset (or config file) with weights drawn under `seed`."""
    from transformers import AutoModel

    if name.endswith(".json") or "/" in name or Path(name).is_dir():
        config, checksum = _config_from_file(name, spec)
        revision = f"randinit-seed{int(seed)}-{checksum}"
    else:
        config = preset_config(name, spec)
        revision = f"randinit-seed{int(seed)}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = AutoModel.from_config(config)
    return HFUpstream(model, spec=spec, revision=revision, do_normalize=True, cnn_layers=cnn_layers,
                      padding=padding)
