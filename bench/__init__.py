"""LayerBench harness core: types, data, extraction, probing, CCA, comparison, running."""

import os

# On a small, shared CPU, OpenMP's spin-waiting threads stall each other whenever another
# process holds a core: a tiny BiLSTM step took 21.7 s with the default policy and 0.28 s
# with PASSIVE (2 cores, load ~8). It must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
