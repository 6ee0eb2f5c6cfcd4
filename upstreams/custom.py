"""`py:package.module:ClassName`: a user's own upstream.

The class is imported, instantiated with the keyword options given to `upstreams.load`,
and checked against the contract (a torch.nn.Module with a non-empty `layers` list of
LayerSpec and a `forward(wavs, wav_lens) -> UpstreamOutput`). It is wrapped so that it is
frozen like every other upstream, reports `num_params` and `revision` (the class's own
`revision` attribute, else a checksum of its source file), and so that a wrong output
(missing layer, wrong dim or batch size) fails with an error naming the spec and layer.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from bench.plugins import import_object
from bench.types import LayerSpec, UpstreamOutput
from upstreams.base import UpstreamBase, file_checksum


class CustomUpstream(UpstreamBase):
    def __init__(self, inner: torch.nn.Module, spec: str):
        super().__init__()
        layers = getattr(inner, "layers", None)
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(x, LayerSpec) for x in layers):
            raise ValueError(f"upstream spec {spec!r}: {type(inner).__name__}.layers must be a non-empty list of "
                             "bench.types.LayerSpec")
        self.inner = inner
        self.spec = spec
        self.layers = list(layers)
        revision = getattr(inner, "revision", None)
        if not revision:
            src = inspect.getsourcefile(type(inner))
            revision = file_checksum([Path(src)]) if src else "unversioned"
        self.revision = str(revision)
        self.freeze()

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        out = self.inner(wavs, wav_lens)
        if not isinstance(out, UpstreamOutput):
            raise ValueError(f"upstream {self.spec!r} returned {type(out).__name__}, expected bench.types.UpstreamOutput")
        if len(out.hidden) != len(self.layers) or len(out.lengths) != len(self.layers):
            raise ValueError(f"upstream {self.spec!r} returned {len(out.hidden)} hidden / {len(out.lengths)} lengths "
                             f"for {len(self.layers)} declared layers")
        for spec_l, h, n in zip(self.layers, out.hidden, out.lengths):
            if h.dim() != 3 or h.shape[0] != wavs.shape[0] or h.shape[2] != spec_l.dim:
                raise ValueError(f"upstream {self.spec!r} layer {spec_l.name!r}: hidden shape {tuple(h.shape)}, "
                                 f"expected [{wavs.shape[0]}, T, {spec_l.dim}]")
            if n.shape != (wavs.shape[0],) or (n.numel() and int(n.max()) > h.shape[1]):
                raise ValueError(f"upstream {self.spec!r} layer {spec_l.name!r}: lengths {n.tolist()} do not fit "
                                 f"{h.shape[1]} frames")
        return out


def load_custom(name: str, *, spec: str, **kwargs) -> CustomUpstream:
    cls = import_object(name, f"upstream spec {spec!r}")
    class_name = name.rpartition(":")[2]
    inner = cls(**kwargs)
    if not isinstance(inner, torch.nn.Module):
        raise ValueError(f"upstream spec {spec!r}: {class_name} must be a torch.nn.Module, got {type(inner).__name__}")
    return CustomUpstream(inner, spec)
