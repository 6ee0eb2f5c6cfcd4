"""espeak-ng phoneme mnemonics (English voices) -> ARPAbet as Montreal Forced Aligner writes it.

Built by listing what espeak-ng 1.52 emits for the built-in vocabulary under every accent we
use. Diphthongs and affricates are single ARPAbet phones (aI -> AY, tS -> CH); r-coloured
vowels and syllabic L become two phones (A@ -> AA R, @L -> AH L) because CMUdict, and so
MFA, spells them that way. Vowels carry stress digits from espeak's marks: ' -> 1, , -> 2,
none -> 0. A mnemonic not in the table is an error: the utterance is regenerated rather
than written with a guessed label.
"""

from __future__ import annotations

import numpy as np

from bench.data.arpabet import PHONES39, VOWELS
from bench.data.manifest import Segment
from bench.synth.espeak import ZWSP

# mnemonic without stress mark -> ARPAbet phones (no stress digits)
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "a": ("AE",), "aa": ("AE",), "a#": ("AH",), "A:": ("AA",), "0": ("AA",), "O": ("AO",), "O2": ("AO",),
    "O:": ("AO",), "V": ("AH",), "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "3": ("ER",), "3:": ("ER",),
    "E": ("EH",), "I": ("IH",), "I2": ("IH",), "I#": ("IH",), "i": ("IY",), "i:": ("IY",), "U": ("UH",),
    "u:": ("UW",), "eI": ("EY",), "aI": ("AY",), "aI2": ("AY",), "aU": ("AW",), "oU": ("OW",), "OI": ("OY",),
    # vowel + r / schwa, syllabic l
    "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "i@": ("IY", "AH"), "i@3": ("IH", "R"), "e@": ("EH", "R"),
    "A@": ("AA", "R"), "O@": ("AO", "R"), "o@": ("AO", "R"), "U@": ("UH", "R"), "IR": ("ER",), "VR": ("ER",),
    "@L": ("AH", "L"),
    # consonants
    "b": ("B",), "d": ("D",), "D": ("DH",), "dZ": ("JH",), "f": ("F",), "g": ("G",), "h": ("HH",), "j": ("Y",),
    "k": ("K",), "l": ("L",), "m": ("M",), "n": ("N",), "N": ("NG",), "p": ("P",), "r": ("R",), "r-": ("R",),
    "s": ("S",), "S": ("SH",), "t": ("T",), "t#": ("T",), "t2": ("T",), "t[": ("TH",), "T": ("TH",),
    "tS": ("CH",), "v": ("V",), "w": ("W",), "w#": ("W",), "z": ("Z",), "Z": ("ZH",),
}

# Events that are not a sound of their own: espeak's palatalisation marker. Their time
# belongs to the phone before them.
MODIFIERS = frozenset({";"})

# Stops and affricates: espeak fires their event after the closure silence, which must be
# moved from the previous phone to the stop.
STOPS = frozenset({"p", "t", "t#", "t2", "t[", "k", "b", "d", "g", "tS", "dZ"})

assert all(p in PHONES39 for phones in ESPEAK_TO_ARPABET.values() for p in phones)


class UnknownPhoneme(ValueError):
    """espeak emitted a mnemonic the table does not cover."""


def is_pause(mnemonic: str) -> bool:
    return mnemonic.startswith("_")


def split_stress(mnemonic: str) -> tuple[str, int]:
    """("'aI") -> ("aI", 1); (",O2") -> ("O2", 2); ("n") -> ("n", 0)."""
    stress = 0
    while mnemonic and mnemonic[0] in "',":
        stress = 1 if mnemonic[0] == "'" else 2
        mnemonic = mnemonic[1:]
    return mnemonic, stress


def to_arpabet(mnemonic: str) -> list[str]:
    """ARPAbet phones (vowels with stress digits) for one espeak mnemonic with its stress mark.

    In a two-phone expansion only the first vowel takes the stress; a trailing ER/AH is 0.
    """
    base, stress = split_stress(mnemonic)
    try:
        phones = ESPEAK_TO_ARPABET[base]
    except KeyError:
        raise UnknownPhoneme(f"espeak phoneme {mnemonic!r} has no ARPAbet mapping") from None
    out = []
    for i, p in enumerate(phones):
        out.append(f"{p}{stress if i == 0 else 0}" if p in VOWELS else p)
    return out


# ---------------------------------------------------------------- events -> alignment

MAX_CLOSURE_S = 0.07  # longest silence before a stop that is taken to be its closure
MIN_PHONE_S = 0.01  # shortest phone accepted (MFA's frame shift): shorter ones are not a clean alignment
_QUIET = 8  # |int16| at or below this counts as the closure's silence


class AlignmentError(ValueError):
    """The synthesizer's events do not give a clean alignment of the transcript."""


def word_starts(text: str) -> list[int]:
    """1-based character positions of the words of `text` as espeak reports them."""
    starts, pos = [], 1
    for token in text.split(" "):
        body = token.lstrip(ZWSP)
        starts.append(pos + (len(token) - len(body)))
        pos += len(token) + 1
    return starts



def check_word_events(words: list[str], text: str, events: list) -> None:
    """The words espeak says it spoke must be exactly the transcript's words, in order.

    Digits, abbreviations and multi-word dictionary entries show up here as extra, missing
    or merged word events.
    """
    spoken = [text[e.position - 1 : e.position - 1 + e.length] for e in events if e.kind == "word"]
    if [w.lower() for w in spoken] != [w.lower() for w in words]:
        raise AlignmentError(f"synthesized words {spoken} differ from the transcript {words}")


def align(words: list[str], text: str, events: list, audio: np.ndarray, rate: int) -> tuple[list[Segment], list[Segment]]:
    """Word and phone segments (seconds) from espeak's phoneme events and the audio.

    Phone k spans from its event to the next phoneme event; pauses (`_`) are silence; a
    stop takes the silent closure before its event; a word spans its phones.
    """
    check_word_events(words, text, events)
    starts = word_starts(text)
    word_of_pos = {p: i for i, p in enumerate(starts)}
    ph = [e for e in events if e.kind == "phoneme"]
    bounds = [e.sample for e in ph] + [len(audio)]
    raw: list[tuple[int, str, int, int]] = []  # (word index or -1, mnemonic, start, end)
    for e, s, t in zip(ph, bounds[:-1], bounds[1:]):
        base, _ = split_stress(e.phoneme)
        if t < s:
            raise AlignmentError(f"phoneme events out of order at {e.phoneme!r} ({s} > {t})")
        if base in MODIFIERS:
            if raw:
                w, m, s0, _ = raw[-1]
                raw[-1] = (w, m, s0, t)
            continue
        if is_pause(base):
            raw.append((-1, base, s, t))
            continue
        if e.position not in word_of_pos:
            raise AlignmentError(f"phoneme {e.phoneme!r} at character {e.position} belongs to no word of {words}")
        raw.append((word_of_pos[e.position], e.phoneme, s, t))
    # silent (zero-length) events produce no sound: drop them, and their pauses
    raw = [r for r in raw if r[3] > r[2]]
    max_closure = int(MAX_CLOSURE_S * rate)
    for k in range(1, len(raw)):
        w, m, s, t = raw[k]
        if w < 0 or split_stress(m)[0] not in STOPS:
            continue
        pw, pm, ps, pt = raw[k - 1]
        new = s
        # the closure may take at most half of what espeak gave the previous phone
        floor = max(ps + (s - ps + 1) // 2, s - max_closure)
        while new > floor and abs(int(audio[new - 1])) <= _QUIET:
            new -= 1
        raw[k - 1] = (pw, pm, ps, new)
        raw[k] = (w, m, new, t)
    units: list[tuple[int, str, float, float]] = []  # (word index, ARPAbet phone, start, end) in samples
    last_word = -1
    for w, m, s, t in raw:
        if w < 0:
            continue
        if w < last_word:
            raise AlignmentError(f"phones of word {words[w]!r} come after those of {words[last_word]!r}")
        last_word = w
        arpa = to_arpabet(m)
        cuts = np.linspace(s, t, len(arpa) + 1)
        units.extend((w, p, float(a), float(b)) for p, a, b in zip(arpa, cuts[:-1], cuts[1:]))
    units = lengthen_short_phones(units, MIN_PHONE_S * rate)
    phones: list[Segment] = []
    word_span: dict[int, list[float]] = {}
    for w, p, a, b in units:
        phones.append(Segment(p, round(a / rate, 6), round(b / rate, 6)))
        span = word_span.setdefault(w, [phones[-1].start, phones[-1].end])
        span[1] = phones[-1].end
    missing = [words[i] for i in range(len(words)) if i not in word_span]
    if missing:
        raise AlignmentError(f"no phones for word(s) {missing}")
    segs = [Segment(words[i].lower(), *word_span[i]) for i in range(len(words))]
    return segs, phones


def lengthen_short_phones(units: list[tuple[int, str, float, float]], min_len: float) -> list[tuple[int, str, float, float]]:
    """Move inner boundaries of each run of touching phones so that every phone lasts `min_len`.

    espeak sometimes gives a phone (an /R/ after a vowel, say) a few milliseconds, shorter than
    an aligner's 10-ms frame; such a boundary is not a clean alignment, and redrawing the
    sentence failed for some seeds. A run's outer ends (next to silence) stay fixed; the inner
    boundaries move as little as needed (a forward then a backward pass). A run too short to
    hold its phones at `min_len` each is left as it is, and `check_alignment` rejects it.
    """
    out = list(units)
    start = 0
    while start < len(out):
        end = start
        while end + 1 < len(out) and out[end + 1][2] == out[end][3]:
            end += 1
        bounds = [out[start][2]] + [u[3] for u in out[start : end + 1]]
        n = len(bounds) - 1
        if bounds[-1] - bounds[0] >= n * min_len:
            for i in range(1, n):
                bounds[i] = max(bounds[i], bounds[i - 1] + min_len)
            for i in range(n - 1, 0, -1):
                bounds[i] = min(bounds[i], bounds[i + 1] - min_len)
            for k in range(n):
                w, p, _, _ = out[start + k]
                out[start + k] = (w, p, bounds[k], bounds[k + 1])
        start = end + 1
    return out


def check_alignment(words: list[str], word_segs: list[Segment], phones: list[Segment], duration: float) -> None:
    """Every transcript word aligned in order, inside the audio, tiled by its phones.

    Phones must be ARPAbet (39 classes, optional stress digit), in time order without
    overlap, each inside a word, and each word must be exactly covered by its phones with
    no gap: silences may only fall between words.
    """
    if [s.label.lower() for s in word_segs] != [w.lower() for w in words]:
        raise AlignmentError(f"aligned words {[s.label for s in word_segs]} differ from the transcript {words}")
    eps = 1e-6
    for tier in (word_segs, phones):
        prev_end = 0.0
        for s in tier:
            if not (s.start < s.end):
                raise AlignmentError(f"empty or reversed interval {s}")
            if tier is phones and s.end - s.start < MIN_PHONE_S - eps:
                raise AlignmentError(f"phone {s} is shorter than {MIN_PHONE_S} s")
            if s.start < prev_end - eps or s.end > duration + eps or s.start < -eps:
                raise AlignmentError(f"interval {s} overlaps its predecessor or lies outside [0, {duration}]")
            prev_end = s.end
    for p in phones:
        label = p.label[:-1] if p.label[-1:] in "012" else p.label
        if label not in PHONES39:
            raise AlignmentError(f"phone label {p.label!r} is not in the 39-phone ARPAbet set")
    k = 0
    for w in word_segs:
        inside = []
        while k < len(phones) and phones[k].start < w.end - eps:
            if phones[k].start < w.start - eps:
                raise AlignmentError(f"phone {phones[k]} lies outside every word")
            inside.append(phones[k])
            k += 1
        if not inside:
            raise AlignmentError(f"word {w} has no phones")
        if abs(inside[0].start - w.start) > eps or abs(inside[-1].end - w.end) > eps:
            raise AlignmentError(f"phones of word {w} do not cover it exactly")
        for a, b in zip(inside[:-1], inside[1:]):
            if abs(a.end - b.start) > eps:
                raise AlignmentError(f"gap between phones {a} and {b} inside word {w.label!r}")
    if k != len(phones):
        raise AlignmentError(f"phone {phones[k]} lies outside every word")
