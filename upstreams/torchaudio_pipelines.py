"""`torchaudio:<PIPELINE>`: torchaudio.pipelines wav2vec2 / HuBERT / WavLM bundles.

`bundle.get_model()` downloads the weights (offline it fails with a clear error);
`pretrained=False` builds the same architecture from the bundle's parameters with random
weights under `seed` (for tests and as a control).

Mapping onto the common indexing: torchaudio's `extract_features` returns only the L
transformer-layer outputs, and for pre-LN models (`encoder.transformer.layer_norm_first`
False in torchaudio's naming, i.e. Large/XLSR) without the final LayerNorm. Here the encoder
is stepped through by hand:
  layer 0  = `encoder._preprocess` (feature projection, padding zeroed) followed by
             `transformer._preprocess` (+ positional conv, LayerNorm for post-LN models),
             i.e. the input of the first transformer layer (HF hidden_states[0]);
  layer i  = output of transformer layer i (1..L);
  layer L  gets the transformer's final LayerNorm for pre-LN models (final_norm=True), as
             in s3prl and HF's last_hidden_state.
CNN layers (`cnn_layers=True`) are the feature-extractor conv blocks. Bundles that normalise
the waveform (`_normalize_waveform`, the Large ones) get a per-utterance layer norm over the
valid samples. Batches run in equal-length groups (group-norm conv encoders see padding).
"""

from __future__ import annotations

import torch

from bench.types import LayerSpec, UpstreamOutput
from upstreams.base import UpstreamBase, cnn_layer_specs, normalize_valid, run_in_length_groups, unresolved


class TorchaudioUpstream(UpstreamBase):
    """Wraps a torchaudio.models.Wav2Vec2Model (wav2vec2, HuBERT or WavLM)."""

    def __init__(self, model: torch.nn.Module, spec: str, revision: str, normalize: bool, cnn_layers: bool = False):
        super().__init__()
        if hasattr(model, "normalize_waveform") and hasattr(model, "model"):  # torchaudio's _Wav2Vec2Model wrapper
            normalize = normalize or bool(model.normalize_waveform)
            model = model.model
        self.model = model
        self.spec = spec
        self.revision = revision
        self.normalize = bool(normalize)
        self.cnn_layers = bool(cnn_layers)
        tf = model.encoder.transformer
        self.final_norm = not tf.layer_norm_first
        convs = [blk.conv for blk in model.feature_extractor.conv_layers]
        kernels = [c.kernel_size[0] for c in convs]
        strides = [c.stride[0] for c in convs]
        hop = 1
        for s in strides:
            hop *= s
        dim = model.encoder.feature_projection.projection.out_features
        n = len(tf.layers)
        self.layers = (cnn_layer_specs(kernels, strides, [c.out_channels for c in convs]) if self.cnn_layers else []) + [
            LayerSpec(name=f"layer{i}", index=i, dim=dim, stride=hop, final_norm=self.final_norm and i == n)
            for i in range(n + 1)
        ]
        self.freeze()

    def _run(self, wavs: torch.Tensor) -> list[torch.Tensor]:
        """Unpadded [G, S] -> [cnn..., layer0..layerL] as [G, T, D]."""
        out: list[torch.Tensor] = []
        x = wavs.unsqueeze(1)
        for block in self.model.feature_extractor.conv_layers:
            x, _ = block(x, None)
            if self.cnn_layers:
                out.append(x.transpose(1, 2))
        x, mask = self.model.encoder._preprocess(x.transpose(1, 2), None)
        tf = self.model.encoder.transformer
        x = tf._preprocess(x)
        out.append(x)
        position_bias = None
        for layer in tf.layers:
            x, position_bias = layer(x, mask, position_bias=position_bias)
            out.append(x)
        if self.final_norm:
            out[-1] = tf.layer_norm(x)
        return out

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.to(wavs.device).long()
        if self.normalize:
            wavs = normalize_valid(wavs, wav_lens, eps=1e-5)  # = F.layer_norm over the utterance
        return run_in_length_groups(self._run, wavs, wav_lens)


def bundle_names() -> list[str]:
    import torchaudio.pipelines as P

    return sorted(n for n in dir(P) if isinstance(getattr(P, n), P.Wav2Vec2Bundle))


def load_torchaudio(
    name: str, *, spec: str, pretrained: bool = True, seed: int = 0, cnn_layers: bool = False
) -> TorchaudioUpstream:
    import torchaudio.pipelines as P
    from torchaudio.pipelines._wav2vec2 import utils as bundle_utils

    names = bundle_names()
    if name not in names:
        raise unresolved(spec, "torchaudio pipeline", name, names)
    bundle = getattr(P, name)
    if pretrained:
        try:
            model = bundle.get_model()
        except (OSError, RuntimeError) as e:  # URLError is an OSError
            raise ValueError(
                f"upstream spec {spec!r}: could not download the weights of torchaudio.pipelines.{name} ({e}); "
                "pass pretrained=False (CLI: --no-weights) for the same architecture with random weights"
            ) from e
        revision = bundle._path
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = bundle_utils._get_model(bundle._model_type, bundle._params)
        revision = f"randinit-seed{int(seed)}"
    return TorchaudioUpstream(model, spec=spec, revision=revision, normalize=bundle._normalize_waveform,
                              cnn_layers=cnn_layers)
