"""Praat TextGrid reading (MFA output) and writing (the synthetic corpus's alignments).

Praat's text formats ("long" as MFA writes it, and "short") are the same stream of values;
the long one only adds `name = ` labels and `item [n]:` headers. Reading the value stream
handles both without a format switch.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.data.manifest import Segment

# A quoted string ("" escapes a quote) or any other run of non-space characters. The runs are
# classified in Python: numbers and <flags> are values; `name`, `=`, `[1]:` are decoration.
_TOKEN = re.compile(r'"(?:[^"]|"")*"|[^\s"]+')
_NUMBER_START = frozenset("-+.0123456789")


def _tokens(text: str) -> list[str | float]:
    out: list[str | float] = []
    append = out.append
    for tok in _TOKEN.findall(text):
        c = tok[0]
        if c == '"':
            append(tok[1:-1].replace('""', '"'))
        elif c in _NUMBER_START:
            try:
                append(float(tok))
            except ValueError:
                continue
        elif c == "<":
            append(tok)
    return out


def read_textgrid(path: str | Path) -> dict[str, list[Segment]]:
    """Every interval tier of a TextGrid as tier name -> intervals, silences included.

    Point tiers are skipped (MFA writes none). Errors name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TextGrid not found: {path}")
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"TextGrid {path} is neither UTF-8 nor UTF-16 text")
    toks = _tokens(text)
    pos = 0

    def take(kind: type, what: str):
        nonlocal pos
        if pos >= len(toks):
            raise ValueError(f"TextGrid {path} ends early while reading {what}")
        tok = toks[pos]
        pos += 1
        if not isinstance(tok, kind):
            raise ValueError(f"TextGrid {path}: expected {what}, found {tok!r}")
        return tok

    if take(str, "the file type") != "ooTextFile" or take(str, "the object class") != "TextGrid":
        raise ValueError(f"{path} is not a Praat TextGrid (missing the 'ooTextFile' / 'TextGrid' header)")
    take(float, "xmin")
    take(float, "xmax")
    if take(str, "the tiers flag") != "<exists>":
        return {}
    tiers: dict[str, list[Segment]] = {}
    for _ in range(int(take(float, "the tier count"))):
        cls = take(str, "a tier class")
        name = take(str, "a tier name")
        take(float, "tier xmin")
        take(float, "tier xmax")
        n = int(take(float, "an interval count"))
        if cls == "IntervalTier":
            segs = []
            for _ in range(n):
                start = take(float, "interval xmin")
                end = take(float, "interval xmax")
                label = take(str, "interval text")
                if end < start:
                    raise ValueError(f"TextGrid {path}, tier {name!r}: interval {label!r} ends ({end}) before it starts ({start})")
                segs.append(Segment(label.strip(), start, end))
            tiers[name] = segs
        elif cls == "TextTier":
            for _ in range(n):
                take(float, "point time")
                take(str, "point mark")
        else:
            raise ValueError(f"TextGrid {path}: unknown tier class {cls!r}")
    return tiers


def _fill(name: str, segs: list[Segment], xmax: float) -> list[Segment]:
    """Tile [0, xmax] with the given segments plus empty-label gaps, as MFA does."""
    out: list[Segment] = []
    t = 0.0
    eps = 1e-6
    for s in sorted(segs, key=lambda s: s.start):
        if s.start < t - eps or s.end < s.start or s.end > xmax + eps:
            raise ValueError(f"tier {name!r}: segment {s} overlaps the previous one or lies outside [0, {xmax}]")
        if s.start > t + eps:
            out.append(Segment("", t, s.start))
        out.append(Segment(s.label, max(s.start, t), min(s.end, xmax)))
        t = out[-1].end
    if xmax > t + eps:
        out.append(Segment("", t, xmax))
    return out


def _quote(label: str) -> str:
    return '"' + label.replace('"', '""') + '"'


def write_textgrid(path: str | Path, tiers: dict[str, list[Segment]], xmax: float) -> Path:
    """Write tiers as a long-format TextGrid, gaps filled with empty intervals (MFA style)."""
    path = Path(path)
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0 ", f"xmax = {float(xmax)!r} ",
             "tiers? <exists> ", f"size = {len(tiers)} ", "item []: "]
    for i, (name, segs) in enumerate(tiers.items(), 1):
        filled = _fill(name, segs, xmax)
        lines += [f"    item [{i}]:", '        class = "IntervalTier" ', f"        name = {_quote(name)} ",
                  "        xmin = 0 ", f"        xmax = {float(xmax)!r} ", f"        intervals: size = {len(filled)} "]
        for j, s in enumerate(filled, 1):
            lines += [f"        intervals [{j}]:", f"            xmin = {float(s.start)!r} ", f"            xmax = {float(s.end)!r} ",
                      f"            text = {_quote(s.label)} "]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
