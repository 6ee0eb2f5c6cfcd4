"""LayerBench harness core: types, data, extraction, probing, CCA, comparison, running."""

__version__ = "0.1.0"
