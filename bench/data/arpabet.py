"""The 39-phone ARPAbet set (CMUdict / MFA English, stress removed) and label clean-up.

MFA alignments keep stress digits (AH0, IY1); analyses collapse them to the 39 classes the
paper and SUPERB's PR use, and drop silence / spoken-noise intervals.
"""

from __future__ import annotations

import re

PHONES39: tuple[str, ...] = tuple(
    sorted(
        "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH "
        "T TH UH UW V W Y Z ZH".split()
    )
)
_PHONE_SET = frozenset(PHONES39)
VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())

# s3prl's phoneme vocabulary for SUPERB PR (downstream/ctc/vocab/phoneme.txt), in its order:
# silence and spoken noise, then the 39 phones alphabetically, vowels with stress 0/1/2.
PHONES71: tuple[str, ...] = ("SIL", "SPN") + tuple(
    f"{p}{s}" for p in PHONES39 for s in (("0", "1", "2") if p in VOWELS else ("",)))

# Labels aligners use for "no phone / no word here": MFA writes "" (and sil/sp/spn in older
# versions), Kaldi-style lattices "<eps>", TIMIT-derived sets "h#" / "pau".
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "<eps>", "<sil>", "<silence>", "silence", "pau", "h#"})

_STRESS = re.compile(r"[012]$")


def strip_stress(phone: str) -> str:
    """AH0 -> AH; a phone without a stress digit is returned unchanged (stripped, upper-cased)."""
    return _STRESS.sub("", phone.strip().upper())


def is_silence(label: str) -> bool:
    """True for silence / spoken-noise / empty labels, which are not phones or words."""
    return label.strip().lower() in SILENCE_LABELS


def normalize_phone(phone: str) -> str | None:
    """Map an aligned phone to one of PHONES39; None for silence. Raises on anything else."""
    if is_silence(phone):
        return None
    base = strip_stress(phone)
    if base not in _PHONE_SET:
        raise ValueError(f"phone {phone!r} is not ARPAbet (expected one of the 39: {' '.join(PHONES39)}, "
                         "optionally with a stress digit 0/1/2, or a silence label)")
    return base
