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

Fine-tuned CTC checkpoints (`Wav2Vec2ForCTC`, `HubertForCTC`, `WavLMForCTC`, ...; recognised
by `architectures` in config.json) expose their encoder exactly like the base model, same
names and positions, so a pre-trained model and its fine-tuned twin line up layer by layer.
`ctc_logits=True` adds the CTC head's output as one more layer, `ctc_logits` (index L+1, dim
= vocabulary size, at the transformer's rate): the head applied to the last layer as the
model computes it (dropout is off in eval), before any softmax.

Padding (`padding=`, an upstream option recorded in the spec and the config hash):

- `exact` (default): the padded batch runs in ONE forward and every utterance gets the hidden
  states it gets alone. Where padding would leak, the HF modules' own weights run through a
  masked computation (`ValidLengths` carries the batch's valid lengths to them):
  * group-norm conv encoders (wav2vec2 / HuBERT / WavLM / SEW Base): the first conv layer's
    GroupNorm takes its statistics over each utterance's valid frames only (`ValidGroupNorm`).
    Nothing else in the conv stack can leak: a valid output frame t < floor((n - k) / s) + 1
    reads inputs t*s .. t*s + k - 1 <= n - 1, i.e. valid inputs only;
  * the transformer gets the frame mask; HF zeroes padded frames before the positional conv,
    whose zero padding then matches the utterance's own border;
  * data2vec-audio's stacked positional convs and the conformer's depthwise convs read frames
    past the valid end: padded frames are re-zeroed before each of them (pre-hooks);
  * SEW / SEW-D pool `squeeze_factor` frames: HF's pooled mask keeps a window that straddles
    the valid end (max-pool of the frame mask), a window that does not exist alone; the pooled
    mask here keeps floor(frames / squeeze) windows, the utterance's own count, and SEW-D's
    conv after its first layer sees re-zeroed padded windows;
  * WavLM's relative position bias depends on offsets only, so it is exact under the mask.
  The equal-length grouping of `upstreams.base.run_in_length_groups` remains only for
  model types this adapter does not know (remote code), whose padding behaviour is unverified.
- `s3prl`: the padded batch as s3prl runs its fairseq experts: one plain transformers call
  with the padding mask for the transformer, nothing else masked, so padding leaks into
  group-norm statistics, data2vec / conformer convolutions and straddling SEW windows.
  (Frame validity follows HF's conv-length rule; fairseq's `forward_padding_mask` counts a
  frame valid while any of its samples is, which can add one frame.)
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
# model_types whose padded batch is made exact below (module docstring); others run in
# equal-length groups.
_EXACT_TYPES = {"wav2vec2", "hubert", "wavlm", "unispeech", "unispeech-sat", "data2vec-audio", "sew", "sew-d",
                "wav2vec2-conformer"}
PADDING_MODES = ("exact", "s3prl")


def has_final_norm(config) -> bool:
    """Whether the encoder ends with a LayerNorm over the last layer's output."""
    return bool(getattr(config, "do_stable_layer_norm", False)) or config.model_type in _ALWAYS_FINAL_NORM


def conv_is_per_frame(config) -> bool:
    """True when the conv encoder normalises per frame (layer norm) so padding cannot leak.

    data2vec-audio has no `feat_extract_norm`: its conv blocks always use layer norm.
    """
    return getattr(config, "feat_extract_norm", "layer") == "layer"


def check_padding(padding: str, spec: str) -> str:
    if padding not in PADDING_MODES:
        raise ValueError(f"upstream spec {spec!r}: padding={padding!r} is not one of {', '.join(PADDING_MODES)}")
    return padding


class ValidLengths:
    """The valid sample counts of the batch being run, at every rate the masked modules need.

    Set for the duration of one exact forward (`active`); outside it (s3prl padding, or a
    bare `model(wavs)` call) every masked module computes exactly what HF's module does.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.samples: torch.Tensor | None = None
        self._cache: dict[str, torch.Tensor] = {}

    def active(self, samples: torch.Tensor) -> "ValidLengths":
        self.samples, self._cache = samples, {}
        return self

    def __enter__(self) -> "ValidLengths":
        return self

    def __exit__(self, *exc) -> None:
        self.samples, self._cache = None, {}

    def memo(self, key: str, make):
        """`make()` once per forward (masks and lengths are shared by every layer)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def conv(self, layer: int) -> torch.Tensor:
        """Valid frames after conv layer `layer` (0-based) of the feature encoder."""
        cfg = self.model.config
        return self.memo(f"conv{layer}", lambda: conv_out_lengths(
            self.samples if layer == 0 else self.conv(layer - 1), int(cfg.conv_kernel[layer]),
            int(cfg.conv_stride[layer])))

    def frames(self) -> torch.Tensor:
        return self.conv(len(self.model.config.conv_kernel) - 1)

    def pooled(self) -> torch.Tensor:
        """SEW / SEW-D windows an utterance has alone: min(frames // squeeze, positional conv frames)."""
        def make() -> torch.Tensor:
            n = self.frames()
            pos = self.model.encoder.pos_conv_embed
            k, s, p = pos.conv.kernel_size[0], pos.conv.stride[0], pos.conv.padding[0]
            pos_n = conv_out_lengths(n + 2 * p, k, s) - int(getattr(pos.padding, "num_pad_remove", 0))
            return torch.minimum(torch.div(n, int(self.model.config.squeeze_factor), rounding_mode="floor"), pos_n)
        return self.memo("pooled", make)


class ValidGroupNorm(torch.nn.Module):
    """The conv encoder's GroupNorm (wav2vec2 Base's first conv layer: one group per channel,
    normalised over time) with statistics over each utterance's valid frames only.

    It takes over the HF GroupNorm's own weight and bias (same state-dict names). Without
    active lengths it is `F.group_norm`, i.e. HF's module. Statistics are float32 (as autocast
    runs group_norm), one `var_mean` over each utterance's valid frames, then one fused
    multiply-add over the batch: no more memory traffic than the unmasked GroupNorm.
    """

    def __init__(self, norm: torch.nn.GroupNorm, lengths: ValidLengths, layer: int):
        super().__init__()
        self.num_groups, self.eps = norm.num_groups, norm.eps
        self.weight, self.bias = norm.weight, norm.bias
        self.lengths, self.layer = lengths, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lengths.samples is None:
            return torch.nn.functional.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        g, per_group = self.num_groups, x.shape[1] // self.num_groups
        var, mean = zip(*(torch.var_mean(x[i, :, : max(n, 1)].float().reshape(g, -1), dim=1, correction=0)
                          for i, n in enumerate(self.lengths.conv(self.layer).tolist())))
        rstd = torch.rsqrt(torch.stack(var) + self.eps).repeat_interleave(per_group, dim=1)  # [B, C]
        scale = rstd * self.weight.float()
        shift = self.bias.float() - torch.stack(mean).repeat_interleave(per_group, dim=1) * scale
        return torch.addcmul(shift[:, :, None], x, scale[:, :, None])


class HFUpstream(UpstreamBase):
    """Wraps a transformers audio base model (Wav2Vec2Model, HubertModel, ...)."""

    def __init__(
        self,
        model: torch.nn.Module,
        spec: str,
        revision: str,
        do_normalize: bool,
        cnn_layers: bool = False,
        padding: str = "exact",
        ctc_head: torch.nn.Linear | None = None,
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
        self.ctc_head = ctc_head
        self.spec = spec
        self.revision = revision
        self.do_normalize = bool(do_normalize)
        self.cnn_layers = bool(cnn_layers)
        self.padding = check_padding(padding, spec)
        self.final_norm = has_final_norm(cfg)
        self.squeeze = int(getattr(cfg, "squeeze_factor", 1) or 1)
        self.valid = ValidLengths(model)
        # one padded forward per batch, except for model types whose padding is unverified
        known = cfg.model_type in _EXACT_TYPES
        self.batched = self.padding == "s3prl" or known
        if self.padding == "exact" and known:
            self._install_masks()
        elif not self.batched:
            log.warning("%s: model_type %r is not known to be padding-exact; batches run in equal-length groups",
                        spec, cfg.model_type)
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
        if ctc_head is not None:
            tf_layers.append(LayerSpec(name="ctc_logits", index=n_tf + 1, dim=int(ctc_head.out_features),
                                       stride=conv_hop * self.squeeze, weighted_sum=False))
        cnn = cnn_layer_specs(cfg.conv_kernel, cfg.conv_stride, cfg.conv_dim) if self.cnn_layers else []
        self.layers = cnn + tf_layers
        self.freeze()

    # ------------------------------------------------------------ exact padding

    def _install_masks(self) -> None:
        """Put the masked computations of the module docstring into the model (inactive
        until `self.valid` holds lengths)."""
        model, valid = self.model, self.valid
        for i, layer in enumerate(model.feature_extractor.conv_layers):
            if isinstance(getattr(layer, "layer_norm", None), torch.nn.GroupNorm):
                layer.layer_norm = ValidGroupNorm(layer.layer_norm, valid, i)
        kind = model.config.model_type
        if kind == "data2vec-audio":
            for layer in model.encoder.pos_conv_embed.layers:
                layer.conv.register_forward_pre_hook(self._zero_padded(valid.frames))
        elif kind == "wav2vec2-conformer":
            for layer in model.encoder.layers:
                layer.conv_module.depthwise_conv.register_forward_pre_hook(self._zero_padded(valid.frames))
        elif kind == "sew":
            for layer in model.encoder.layers:
                layer.register_forward_pre_hook(self._sew_layer_mask, with_kwargs=True)
        elif kind == "sew-d":
            model.encoder.encoder.register_forward_pre_hook(self._sewd_pooled_mask)
            if model.encoder.encoder.conv is not None:
                model.encoder.encoder.conv.conv.register_forward_pre_hook(self._zero_padded(valid.pooled))

    def _zero_padded(self, lengths):
        """Forward pre-hook for a Conv1d over [B, C, T] frames: padded frames -> 0."""
        def hook(module, args):
            if self.valid.samples is None:
                return None
            x = args[0]
            keep = valid_mask(lengths(), x.shape[-1])[:, None, :].to(x.dtype)
            return (x * keep, *args[1:])
        return hook

    def _sew_layer_mask(self, module, args, kwargs):
        """SEW layers attend over the utterance's own pooled windows (not HF's max-pooled mask)."""
        if self.valid.samples is None:
            return None
        from transformers.masking_utils import create_bidirectional_mask

        hidden = args[0]
        kwargs["attention_mask"] = self.valid.memo("sew_mask", lambda: create_bidirectional_mask(
            config=self.model.config, inputs_embeds=hidden,
            attention_mask=valid_mask(self.valid.pooled(), hidden.shape[1])))
        return args, kwargs

    def _sewd_pooled_mask(self, module, args):
        """SEW-D's transformer gets the utterance's own pooled windows as its mask."""
        if self.valid.samples is None:
            return None
        hidden = args[0]
        return (hidden, valid_mask(self.valid.pooled(), hidden.shape[1]).long(), *args[2:])

    # ------------------------------------------------------------ forward

    def _run(self, wavs: torch.Tensor, attention_mask: torch.Tensor | None) -> list[torch.Tensor]:
        """One model call; returns [cnn..., layer0..layerL(, ctc_logits)] as [B, T, D]."""
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
        if self.ctc_head is not None:
            hidden.append(self.ctc_head(out.last_hidden_state))
        return captured + hidden

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.to(wavs.device).long()
        if self.do_normalize:
            wavs = normalize_valid(wavs, wav_lens)
        if not self.batched:
            return run_in_length_groups(lambda w: self._run(w, torch.ones_like(w, dtype=torch.long)), wavs, wav_lens)
        mask = valid_mask(wav_lens, wavs.shape[1]).long()
        if self.padding == "s3prl":
            hidden = self._run(wavs, mask)
        else:
            with self.valid.active(wav_lens):
                hidden = self._run(wavs, mask)
        with self.valid.active(wav_lens):
            n_conv = len(self.model.config.conv_kernel)
            lengths = [self.valid.conv(i) for i in range(n_conv)] if self.cnn_layers else []
            frames = self.valid.pooled() if self.squeeze > 1 else self.valid.frames()
        lengths += [frames] * (len(hidden) - len(lengths))
        return UpstreamOutput(hidden=hidden, lengths=lengths)


# Models made by this project and shipped in the package (`layerbench pretrain`): the spec
# `hf:layerbench/<name>` loads the folder upstreams/pretrained/layerbench/<name>/, never the hub.
SHIPPED_DIR = Path(__file__).parent / "pretrained"


def shipped_models() -> dict[str, Path]:
    """'<org>/<name>' -> folder, for every shipped save_pretrained folder."""
    return {f"{p.parent.parent.name}/{p.parent.name}": p.parent for p in sorted(SHIPPED_DIR.glob("*/*/config.json"))}


def _is_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).exists()


def load_hf(
    name: str,
    *,
    spec: str,
    cnn_layers: bool = False,
    padding: str = "exact",
    trust_remote_code: bool = False,
    revision: str | None = None,
    ctc_logits: bool = False,
) -> HFUpstream:
    """Load `name` (hub id, local dir, or a shipped `layerbench/<name>`) with AutoConfig/AutoModel/
    AutoFeatureExtractor; a CTC fine-tuned checkpoint with AutoModelForCTC, keeping its encoder
    (and head, when asked). Weights load in fp32 whatever the stored dtype (the shipped
    checkpoints are fp16); bf16 is extract's opt-in."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForCTC

    if not name:
        raise ValueError(f"upstream spec {spec!r}: give a hub id or a local folder after 'hf:'")
    shipped = shipped_models().get(name)
    local = shipped is not None or _is_local(name)
    if shipped is not None:
        name = str(shipped)
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
        is_ctc = any(str(a).endswith("ForCTC") for a in getattr(config, "architectures", None) or [])
        if ctc_logits and not is_ctc:
            raise ValueError(f"upstream spec {spec!r}: ctc_logits asks for a CTC head, but {src!r} is not a CTC "
                             f"fine-tuned checkpoint (architectures: {getattr(config, 'architectures', None)})")
        ctc_head = None
        if is_ctc:
            ctc = AutoModelForCTC.from_pretrained(src, config=config, dtype=torch.float32, **kw)
            model = getattr(ctc, ctc.base_model_prefix)
            ctc_head = ctc.lm_head if ctc_logits else None
        else:
            model = AutoModel.from_pretrained(src, config=config, dtype=torch.float32, **kw)
    except OSError as e:
        raise ValueError(f"upstream spec {spec!r}: could not load {src!r} from the hub or disk: {e}") from e
    try:
        fe = AutoFeatureExtractor.from_pretrained(src, **kw)
        do_normalize = bool(getattr(fe, "do_normalize", False))
    except (OSError, ValueError) as e:
        # HF convention of the published checkpoints: layer-norm conv encoders were trained on
        # normalised audio, group-norm ones on raw audio.
        do_normalize = conv_is_per_frame(config)
        log.warning("%s: no feature-extractor config (%s); using do_normalize=%s",
                    spec, e.__class__.__name__, do_normalize)
    if local:
        files = [p for p in Path(src).iterdir() if p.suffix in {".json", ".safetensors", ".bin"}]
        rev = file_checksum(files)
    else:
        rev = getattr(config, "_commit_hash", None) or revision or "unresolved"
    return HFUpstream(model, spec=spec, revision=rev, do_normalize=do_normalize, cnn_layers=cnn_layers,
                      padding=padding, ctc_head=ctc_head)
