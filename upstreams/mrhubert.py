"""MR-HuBERT (multi-resolution HuBERT) through s3prl, every layer at its own frame rate.

`s3prl:multires_hubert_base` / `_large` / `_multilingual_*` (s3prl's hub downloads them) or
`s3prl:multires_hubert_local,ckpt=/path/x.pt` (a converted s3prl checkpoint) load through
s3prl's own expert (`s3prl.hub`) and model code; this adapter then runs the model itself.

Why not `S3PRLUpstream`: s3prl's MR-HuBERT expert repeats every hidden state up to the finest
rate (`repeat_interleave` by lcm(rates) / rate), cuts all to the shortest, and reports one
stride (320) for all, which is what its Featurizer needs. Here each layer keeps its own
stride and frame count, so every consumer reads it at its own rate.

The model is a U-net of transformer blocks: encoder blocks at falling rates, each followed by
a down-sampling module, a middle block at the coarsest rate, then up-sampling modules each
followed by a decoder block at rising rates. Layers, in depth order (index = position):

- `enc<i>.T<t>`, `mid.T<t>`, `dec<i>.T<t>`: the transformer positions exactly as s3prl's
  expert lists them (per block: the input of each transformer layer, then the block's
  output), `T<t>` numbering them 0..L across the whole network as s3prl's hidden states;
- `D<i>` / `U<i>`: the outputs of the i-th down- / up-sampling module (s3prl does not list
  them; the MR-HuBERT analyses treat them as layers).

The stride of each layer is the model's `feature_ds_rates` of its block (320 and 640 samples
for the published two-rate models; a three-rate ablation adds 1280). A decoder block can run
one frame longer than its matching encoder block (the up-sampler rounds up); each layer's
length is its own frame count. Layer inputs captured inside a block are cut to the block's
length (fairseq pads blocks to an even length for fp16 and masks the pad in attention).

Weighted sum across rates: SUPERB's MR-HuBERT runs sum s3prl's hidden states (the T
positions, not D/U, which are marked `weighted_sum=False`) after repeating each to the finest
rate and cutting to the shortest; the probe bank does the same (`bench.probe.align_frames`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from bench.types import LayerSpec, UpstreamOutput
from upstreams.base import UpstreamBase, file_checksum, run_in_length_groups


class MRHubertAdapter(UpstreamBase):
    def __init__(self, expert: torch.nn.Module, spec: str, revision: str):
        super().__init__()
        expert.remove_all_hooks()  # the adapter hooks the model itself, at native rates
        self.model = expert.model
        self.normalize = bool(expert.task_cfg.normalize)
        self.spec, self.revision = spec, revision
        m = self.model
        rates = [int(r) for r in m.feature_ds_rates]
        n_res = len(rates)
        dim = int(m.mask_emb.shape[0])  # encoder_embed_dim: every block and sampling module keeps it
        # (block name, module, stride, is_transformer_block) in execution order
        plan: list[tuple[str, torch.nn.Module, int, bool]] = []
        for i in range(n_res - 1):
            plan += [(f"enc{i}", m.encoders[i], rates[i], True), (f"D{i}", m.downsample_modules[i], rates[i + 1], False)]
        plan.append(("mid", m.middle_encoder, rates[-1], True))
        for i in range(n_res - 1):
            plan += [(f"U{i}", m.upsample_modules[i], rates[n_res - 2 - i], False),
                     (f"dec{i}", m.decoders[i], rates[n_res - 2 - i], True)]
        self.plan = plan
        layers, t = [], 0
        for name, module, stride, is_block in plan:
            if is_block:
                for _ in range(len(module.layers) + 1):
                    layers.append(LayerSpec(name=f"{name}.T{t}", index=len(layers), dim=dim, stride=stride))
                    t += 1
            else:
                layers.append(LayerSpec(name=name, index=len(layers), dim=dim, stride=stride, weighted_sum=False))
        self.layers = layers
        self.freeze()

    def _run(self, wavs: torch.Tensor) -> list[torch.Tensor]:
        """One unpadded group [G, S] -> every layer [G, T_l, D] in `layers` order."""
        captured: list[tuple[str, torch.Tensor]] = []
        hooks = []
        for name, module, _, is_block in self.plan:
            if is_block:
                for layer in module.layers:  # the input of each layer is [T, B, C]
                    hooks.append(layer.register_forward_hook(
                        lambda mod, inp, out: captured.append(("in", inp[0].transpose(0, 1)))))
            hooks.append(module.register_forward_hook(lambda mod, inp, out: captured.append(("out", out[0]))))
        try:
            if self.normalize:
                wavs = F.layer_norm(wavs, wavs.shape[-1:])
            pad = torch.zeros(wavs.shape, dtype=torch.bool, device=wavs.device)
            self.model.extract_features(wavs, padding_mask=pad, mask=False)
        finally:
            for h in hooks:
                h.remove()
        hidden, pending = [], []
        for kind, x in captured:
            if kind == "in":
                pending.append(x)
                continue
            hidden += [p[:, : x.shape[1]] for p in pending] + [x]  # block inputs cut to the block's length
            pending = []
        return hidden

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        return run_in_length_groups(self._run, wavs, wav_lens.to(wavs.device).long())


def load_mrhubert(name: str, spec: str, ckpt: str | None) -> MRHubertAdapter:
    """Build s3prl's MR-HuBERT expert by hub name (ckpt for *_local / *_custom) and wrap it."""
    import s3prl.hub

    fn = getattr(s3prl.hub, name)
    try:
        expert = fn(ckpt=str(ckpt)) if ckpt is not None else fn()
    except OSError as e:
        raise ValueError(f"upstream spec {spec!r}: s3prl could not fetch the checkpoint of {name!r} "
                         f"({type(e).__name__}: {e}); offline, use multires_hubert_local with ckpt=<path>") from e
    except TypeError as e:
        raise ValueError(f"upstream spec {spec!r}: {name} needs ckpt=<path> ({e})") from e
    revision = file_checksum([Path(ckpt)]) if ckpt and Path(ckpt).is_file() else f"s3prl-{name}-{ckpt or 'default'}"
    return MRHubertAdapter(expert, spec=spec, revision=revision)
