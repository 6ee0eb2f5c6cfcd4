"""`s3prl:<name>`: any s3prl upstream through `s3prl.nn.S3PRLUpstream`.

`ckpt=` is passed as `path_or_url` (needed by the `*_local` / `*_custom` names, e.g.
`s3prl:hubert_local` with a converted s3prl HuBERT checkpoint). The compatibility shim in
`upstreams.s3prl_compat` is installed before s3prl is imported.

Layers are S3PRLUpstream's hidden states, in its order (for HuBERT/wav2vec2: input of the
first transformer layer, then every layer's output, the last one after the final LayerNorm
for pre-LN "layer_norm_first" models). Lengths are S3PRLUpstream's own: ceil(samples /
stride), with the last frame repeated where the conv arithmetic gives one frame fewer. s3prl
runs its group-norm models on a zero-padded batch, so batches run here in equal-length
groups to keep every utterance's features identical to running it alone.

MR-HuBERT (`multires_hubert_*`) goes to `upstreams.mrhubert`, which keeps each layer at its
own frame rate (S3PRLUpstream repeats them all to the finest rate).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.types import LayerSpec, UpstreamOutput
from upstreams.base import UpstreamBase, file_checksum, run_in_length_groups, unresolved
from upstreams.s3prl_compat import install as install_shim


def _layer_norm_first(upstream: torch.nn.Module) -> bool:
    """Whether a fairseq-style encoder applies its LayerNorm after the last layer."""
    encoder = getattr(getattr(upstream, "model", None), "encoder", None)
    return bool(getattr(encoder, "layer_norm_first", False))


class S3PRLAdapter(UpstreamBase):
    def __init__(self, name: str, spec: str, ckpt: str | None = None):
        super().__init__()
        from s3prl.nn import S3PRLUpstream

        try:
            self.upstream = S3PRLUpstream(name, path_or_url=None if ckpt is None else str(ckpt))
        except OSError as e:  # requests' ConnectionError and urllib's URLError are OSErrors
            raise ValueError(
                f"upstream spec {spec!r}: s3prl could not fetch the checkpoint of {name!r} ({type(e).__name__}: {e}); "
                "offline, use a *_local name with ckpt=<path>"
            ) from e
        self.spec = spec
        self.revision = file_checksum([Path(ckpt)]) if ckpt and Path(ckpt).is_file() else f"s3prl-{name}-{ckpt or 'default'}"
        final = _layer_norm_first(self.upstream.upstream)
        n = self.upstream.num_layers
        self.layers = [
            LayerSpec(name=f"layer{i}", index=i, dim=int(d), stride=int(r), final_norm=final and i == n - 1)
            for i, (d, r) in enumerate(zip(self.upstream.hidden_sizes, self.upstream.downsample_rates))
        ]
        self.freeze()

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        def one_group(w: torch.Tensor) -> list[torch.Tensor]:
            lens = torch.full((w.shape[0],), w.shape[1], dtype=torch.long, device=w.device)
            hs, hs_len = self.upstream(w, lens)
            return [h[:, : int(n.max())] for h, n in zip(hs, hs_len)]

        return run_in_length_groups(one_group, wavs, wav_lens.to(wavs.device).long())


def load_s3prl(name: str, *, spec: str, ckpt: str | None = None) -> UpstreamBase:
    """S3PRLAdapter, or for the multi-rate MR-HuBERT names the adapter that keeps each
    layer's own rate (`upstreams.mrhubert`)."""
    if not name:
        raise ValueError(f"upstream spec {spec!r}: give an s3prl upstream name after 's3prl:' (e.g. hubert_local)")
    install_shim()
    from s3prl.nn import S3PRLUpstream

    available = S3PRLUpstream.available_names()
    if name not in available:
        raise unresolved(spec, "s3prl upstream", name, available)
    if ckpt is not None and not str(ckpt).startswith("http") and not Path(ckpt).is_file():
        raise ValueError(f"upstream spec {spec!r}: checkpoint file {str(ckpt)!r} does not exist")
    if name.startswith("multires_hubert"):
        from upstreams.mrhubert import load_mrhubert

        return load_mrhubert(name, spec=spec, ckpt=ckpt)
    return S3PRLAdapter(name, spec=spec, ckpt=ckpt)
