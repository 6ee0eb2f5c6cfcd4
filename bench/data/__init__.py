"""Corpora as Utterance manifests: real-layout loaders, audio reading, alignments, sampling."""

from bench.data import arpabet
from bench.data.audio import audio_duration, read_audio
from bench.data.corpus import KINDS, detect_kinds, label_maps, open_corpus
from bench.data.fsc import fsc_label_maps
from bench.data.info import corpus_info
from bench.data.manifest import Corpus, Segment, Utterance
from bench.data.sampler import BalancedSampler
from bench.data.textgrid import read_textgrid, write_textgrid

__all__ = [
    "KINDS", "BalancedSampler", "Corpus", "Segment", "Utterance", "arpabet", "audio_duration", "corpus_info",
    "detect_kinds", "fsc_label_maps", "label_maps", "open_corpus", "read_audio", "read_textgrid", "write_textgrid",
]
