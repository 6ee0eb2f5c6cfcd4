"""`hf:<hub-id-or-local-dir>`: HF transformers speech SSL models with every layer exposed.

Families: wav2vec2 (incl. XLS-R / XLSR-53 / MMS checkpoints), HuBERT, WavLM, data2vec-audio,
UniSpeech(-SAT), SEW, SEW-D, wav2vec2-conformer — anything whose config describes a conv
feature encoder (conv_kernel/conv_stride) and whose model returns `hidden_states`.

Layer positions: layer 0..L are the positions of HF `hidden_states` (0 = input of the first
transformer layer). transformers 5.x no longer puts the encoder's final LayerNorm into
`hidden_states[-1]` for pre-LN ("stable layer norm") encoders and the conformer; s3prl and
transformers 4.x did. We follow s3prl: for those models the last layer is
`last_hidden_state` (final LayerNorm applied) and its LayerSpec has final_norm=True.
SEW / SEW-D pool frames by `squeeze_factor` before the transformer: all their transformer
positions run at conv stride x squeeze_factor (e.g. 640 samples).

Padding invariance: with a per-frame (layer-norm) conv encoder, an attention mask and no
pooling, the padded batch runs at once with the mask. Otherwise (group-norm conv encoders
such as wav2vec2-base normalise over time, padding included; SEW pooling windows straddle
the end) the batch runs in groups of equal valid length, unpadded, which is exactly the
per-utterance computation.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from bench.types import LayerSpec, UpstreamOutput
from upstreams.base import (
    UpstreamBase,
    cnn_layer_specs,
    conv_out_lengths,
    file_checksum,
    normalize_valid,
    run_in_length_groups,
    valid_mask,
)

log = logging.getLogger(__name__)

# model_type values whose encoder applies a LayerNorm after the last transformer layer
# regardless of config (the pre-LN families are detected from `do_stable_layer_norm`).
_ALWAYS_FINAL_NORM = {"wav2vec2-conformer"}
# model_types whose encoder is exactly padding-invariant under an attention mask. Others leak
# padding into valid frames even with a mask: data2vec-audio's stacked positional convs and
# the conformer's depthwise convs read the (non-zero) padded frames of the previous step.
_MASK_EXACT = {"wav2vec2", "hubert", "wavlm", "unispeech", "unispeech-sat"}


def has_final_norm(config) -> bool:
    """Whether the encoder ends with a LayerNorm over the last layer's output."""
    return bool(getattr(config, "do_stable_layer_norm", False)) or config.model_type in _ALWAYS_FINAL_NORM


def conv_is_per_frame(config) -> bool:
    """True when the conv encoder normalises per frame (layer norm) so padding cannot leak.

    data2vec-audio has no `feat_extract_norm`: its conv blocks always use layer norm.
    """
    return getattr(config, "feat_extract_norm", "layer") == "layer"


class HFUpstream(UpstreamBase):
    """Wraps a transformers audio base model (Wav2Vec2Model, HubertModel, ...)."""

    def __init__(
        self,
        model: torch.nn.Module,
        spec: str,
        revision: str,
        do_normalize: bool,
        use_attention_mask: bool,
        cnn_layers: bool = False,
    ):
        super().__init__()
        cfg = model.config
        for attr in ("conv_kernel", "conv_stride", "conv_dim", "hidden_size", "num_hidden_layers"):
            if not hasattr(cfg, attr):
                raise ValueError(
                    f"upstream spec {spec!r}: model_type {cfg.model_type!r} is not a supported speech SSL model "
                    f"(its config has no {attr!r}); supported: wav2vec2, hubert, wavlm, data2vec-audio, "
                    "unispeech-sat, sew, sew-d, wav2vec2-conformer"
                )
        self.model = model
        self.spec = spec
        self.revision = revision
        self.do_normalize = bool(do_normalize)
        self.use_attention_mask = bool(use_attention_mask)
        self.cnn_layers = bool(cnn_layers)
        self.final_norm = has_final_norm(cfg)
        self.squeeze = int(getattr(cfg, "squeeze_factor", 1) or 1)
        # Batched-with-mask is exact only when nothing normalises, pools or convolves across
        # time over padded frames; everything else runs in equal-length groups.
        self.batched = (self.use_attention_mask and conv_is_per_frame(cfg) and self.squeeze == 1
                        and cfg.model_type in _MASK_EXACT)
        conv_hop = math.prod(int(s) for s in cfg.conv_stride)
        n_tf = int(cfg.num_hidden_layers)
        tf_layers = [
            LayerSpec(
                name=f"layer{i}",
                index=i,
                dim=int(cfg.hidden_size),
                stride=conv_hop * self.squeeze,
                final_norm=self.final_norm and i == n_tf,
            )
            for i in range(n_tf + 1)
        ]
        cnn = cnn_layer_specs(cfg.conv_kernel, cfg.conv_stride, cfg.conv_dim) if self.cnn_layers else []
        self.layers = cnn + tf_layers
        self.freeze()

    def _run(self, wavs: torch.Tensor, attention_mask: torch.Tensor | None) -> list[torch.Tensor]:
        """One model call; returns [cnn..., layer0..layerL] as [B, T, D]."""
        captured: list[torch.Tensor] = []
        hooks = []
        if self.cnn_layers:
            for conv in self.model.feature_extractor.conv_layers:
                hooks.append(conv.register_forward_hook(lambda m, i, o: captured.append(o.transpose(1, 2))))
        try:
            out = self.model(wavs, attention_mask=attention_mask, output_hidden_states=True)
        finally:
            for h in hooks:
                h.remove()
        hidden = list(out.hidden_states)
        if self.final_norm:
            hidden[-1] = out.last_hidden_state
        return captured + hidden

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.to(wavs.device).long()
        if self.do_normalize:
            wavs = normalize_valid(wavs, wav_lens)
        if not self.batched:
            def one_group(w: torch.Tensor) -> list[torch.Tensor]:
                mask = torch.ones_like(w, dtype=torch.long) if self.use_attention_mask else None
                return self._run(w, mask)

            return run_in_length_groups(one_group, wavs, wav_lens)
        hidden = self._run(wavs, valid_mask(wav_lens, wavs.shape[1]).long())
        cfg = self.model.config
        lengths = []
        n = wav_lens
        if self.cnn_layers:
            for k, s in zip(cfg.conv_kernel, cfg.conv_stride):
                n = conv_out_lengths(n, int(k), int(s))
                lengths.append(n)
        frames = self.model._get_feat_extract_output_lengths(wav_lens).long()
        lengths += [frames] * (len(hidden) - len(lengths))
        return UpstreamOutput(hidden=hidden, lengths=lengths)


def _is_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).exists()


def load_hf(
    name: str,
    *,
    spec: str,
    cnn_layers: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> HFUpstream:
    """Load `name` (hub id or local dir) with AutoConfig/AutoModel/AutoFeatureExtractor."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    if not name:
        raise ValueError(f"upstream spec {spec!r}: give a hub id or a local folder after 'hf:'")
    local = _is_local(name)
    if local:
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ValueError(f"upstream spec {spec!r}: local model folder {str(path)!r} does not exist")
        if not (path / "config.json").is_file():
            raise ValueError(f"upstream spec {spec!r}: {str(path)!r} has no config.json (save it with save_pretrained)")
        src = str(path)
    else:
        src = name
    kw = dict(trust_remote_code=trust_remote_code, revision=revision)
    try:
        config = AutoConfig.from_pretrained(src, **kw)
        model = AutoModel.from_pretrained(src, config=config, **kw)
    except OSError as e:
        raise ValueError(f"upstream spec {spec!r}: could not load {src!r} from the hub or disk: {e}") from e
    try:
        fe = AutoFeatureExtractor.from_pretrained(src, **kw)
        do_normalize = bool(getattr(fe, "do_normalize", False))
        use_mask = bool(getattr(fe, "return_attention_mask", False))
    except (OSError, ValueError) as e:
        # HF convention of the published checkpoints: layer-norm conv encoders were trained on
        # normalised audio with masks, group-norm ones take neither.
        use_mask = do_normalize = conv_is_per_frame(config)
        log.warning("%s: no feature-extractor config (%s); using do_normalize=%s, attention mask=%s",
                    spec, e.__class__.__name__, do_normalize, use_mask)
    if local:
        files = [p for p in Path(src).iterdir() if p.suffix in {".json", ".safetensors", ".bin"}]
        rev = file_checksum(files)
    else:
        rev = getattr(config, "_commit_hash", None) or revision or "unresolved"
    return HFUpstream(model, spec=spec, revision=rev, do_normalize=do_normalize,
                      use_attention_mask=use_mask, cnn_layers=cnn_layers)
