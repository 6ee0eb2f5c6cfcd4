"""Synthetic speakers: espeak accent x voice variant x rate / pitch / pitch range, from a seed."""

from __future__ import annotations

import numpy as np

from bench.synth.espeak import Voice

ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")

# Variants from espeak-ng-data/voices/!v that sound like a person (the robots, whisper,
# "Demonic" etc. are left out). Gender is informational only.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "adam", "Alex", "Andy", "Annie", "aunty", "belinda",
    "benjamin", "boris", "caleb", "david", "ed", "edward", "iven", "iven2", "john", "linda", "max",
    "Michael", "norbert", "paul", "rob", "robert", "steph", "travis", "victor", "zac", "Lee", "quincy",
    "shelby", "grandma", "grandpa",
)


def make_voices(rng: np.random.Generator, n: int) -> list[Voice]:
    """`n` distinct voices; consecutive draws cycle through accents so every pool mixes them."""
    out: list[Voice] = []
    seen: set[Voice] = set()
    order = rng.permutation(len(ACCENTS))
    while len(out) < n:
        accent = ACCENTS[int(order[len(out) % len(ACCENTS)])]
        v = Voice(
            accent=accent,
            variant=VARIANTS[int(rng.integers(len(VARIANTS)))],
            rate=int(rng.integers(150, 206)),
            pitch=int(rng.integers(25, 76)),
            range=int(rng.integers(20, 81)),
        )
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def jitter(voice: Voice, rng: np.random.Generator) -> Voice:
    """The same speaker on another take: a little faster or slower, pitch nudged."""
    return Voice(voice.accent, voice.variant, int(np.clip(voice.rate + rng.integers(-12, 13), 120, 240)),
                 int(np.clip(voice.pitch + rng.integers(-4, 5), 0, 100)), voice.range)
