"""The synthetic corpus: espeak-ng speech written in the LibriSpeech, Speech Commands, FSC and
SLURP layouts, with exact word and phone alignments, so the whole benchmark runs offline.

espeak-ng (GPL-3) is only needed to *generate* it (`pip install -e .[synth]`); everything
else reads the files it writes through the ordinary loaders in `bench.data`.
"""

from bench.synth.corpora import SIZES, SynthInfo, ensure_corpus, generate, is_complete, read_info

__all__ = ["SIZES", "SynthInfo", "ensure_corpus", "generate", "is_complete", "read_info"]
