"""A ctypes driver for libespeak-ng (from the `espeakng-loader` wheel) that returns audio with events.

espeak-ng is GPL-3 and lives behind the optional `synth` extra, so this module imports
`espeakng_loader` lazily and says how to install it when it is missing.

The library keeps hidden state between calls (noise generator, pitch memory): the same text
synthesized twice in one process gives different samples, and `espeak_Terminate` +
`espeak_Initialize` does not reset it. Bit-exact output therefore needs a *fresh process*
per fixed batch of utterances (see `bench.synth.corpora`), with `Engine` created once in it.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

ESPEAK_RATE = 22050  # the library's output rate for every voice we use

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EV_LIST_TERMINATED = 0
_EV_WORD = 1
_EV_PHONEME = 7
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE = 1, 2, 3, 4

ZWSP = "\u200b"  # put before every word so multi-word dictionary entries ("of the") stay separate words

INSTALL_HINT = "the synthetic corpus needs espeak-ng: install the `synth` extra (pip install -e .[synth])"


class EspeakUnavailable(RuntimeError):
    """espeakng-loader is not installed (or its library does not load)."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Event:
    """One synthesizer event. `kind` is "word" or "phoneme"; `sample` is at 22050 Hz.

    `position` is the 1-based character position in the synthesized text of the word the
    event belongs to; `length` is the word's length in characters (word events only);
    `phoneme` is espeak's mnemonic with its stress mark (phoneme events only).
    """

    kind: str
    position: int
    sample: int
    length: int = 0
    phoneme: str = ""


@dataclass(frozen=True)
class Voice:
    """What makes a synthetic speaker: accent (espeak language voice), variant, prosody."""

    accent: str
    variant: str
    rate: int  # words per minute (espeak default 175)
    pitch: int  # 0-100 (default 50)
    range: int  # 0-100 (default 50)

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass
class Synthesis:
    text: str  # exactly what was sent to the library (with zero-width spaces)
    audio: np.ndarray  # int16 at ESPEAK_RATE
    events: list[Event]


def load_library():
    """Open libespeak-ng from the wheel; (ctypes library, data path)."""
    try:
        import espeakng_loader
    except ImportError as e:
        raise EspeakUnavailable(INSTALL_HINT) from e
    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
    except (OSError, RuntimeError) as e:
        raise EspeakUnavailable(f"{INSTALL_HINT} ({e})") from e
    return lib, data


def list_variants() -> list[str]:
    """Names of the voice variants shipped in espeak-ng-data/voices/!v."""
    from pathlib import Path

    _, data = load_library()
    return sorted(p.name for p in (Path(data) / "voices" / "!v").iterdir() if p.is_file())


class Engine:
    """One espeak-ng instance (the library is process-global: create one per process)."""

    _instance_made = False

    def __init__(self) -> None:
        if Engine._instance_made:
            raise RuntimeError("only one espeak-ng Engine per process (the library is global and stateful)")
        lib, data = load_library()
        self._lib, self._data = lib, data
        self._variants = frozenset(list_variants())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
        )
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak-ng initialisation failed or gave {rate} Hz (expected {ESPEAK_RATE})")
        self._chunks: list[np.ndarray] = []
        self._events: list[Event] = []
        self._cb = _CALLBACK(self._callback)  # keep a reference: ctypes would free it
        lib.espeak_SetSynthCallback(self._cb)
        Engine._instance_made = True

    def _callback(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            e = events[i]
            if e.type == _EV_WORD:
                self._events.append(Event("word", e.text_position, e.sample, length=e.length))
            elif e.type == _EV_PHONEME:
                name = bytes(e.id.string).split(b"\0", 1)[0].decode("ascii", "replace")
                self._events.append(Event("phoneme", e.text_position, e.sample, phoneme=name))
            i += 1
        return 0

    def synthesize(self, words: list[str], voice: Voice, seed: int) -> Synthesis:
        """Speak `words` (each preceded by a zero-width space) with `voice`."""
        lib = self._lib
        if voice.variant not in self._variants:  # espeak would silently use the plain voice instead
            raise ValueError(f"espeak-ng has no voice variant {voice.variant!r} (voices/!v in {self._data})")
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        for param, value in ((_P_RATE, voice.rate), (_P_PITCH, voice.pitch), (_P_RANGE, voice.range), (_P_VOLUME, 60)):
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(int(seed))
        text = "".join(f"{ZWSP}{w} " for w in words).rstrip()
        data = text.encode("utf-8")
        self._chunks, self._events = [], []
        status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        return Synthesis(text=text, audio=audio.astype(np.int16, copy=False), events=self._events)
