"""Phoneme recognition (SUPERB PR): LibriSpeech, linear CTC head, phone error rate.

Two target schemes, chosen by the preset's `targets.scheme`:

- `lexicon` (SUPERB; s3prl's `downstream/ctc/libriphone.yaml` recipe): each transcript word
  is replaced by its first pronunciation in the lexicon files (read in the order given), so
  targets are stressed ARPAbet. Outputs follow s3prl's word text encoder over its phoneme
  vocabulary: `<pad>` (the CTC blank), `<eos>`, `<unk>`, then SIL, SPN and the 69 stressed
  phones = 74; every target ends with `<eos>`, which scoring ignores (s3prl decodes up to it).
- `alignment39`: the alignment's phone tier with stress removed and silences dropped — the
  39-phone set of analyses that need time-aligned phones; blank + 39 = 40 outputs, no eos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.config import CONFIG_DIR, ConfigError
from bench.data.arpabet import PHONES39, PHONES71, normalize_phone
from bench.data.lexicon import read_lexicon
from bench.params import ProbeParams
from tasks.base import CTCTask, FrameLinearHeads, Splits, Vocab

# s3prl's CharacterTextEncoder/WordTextEncoder reserve the first three ids.
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


@dataclass(frozen=True)
class PRTargets:
    """The `targets` section: `lexicon` (SUPERB) or `alignment39` (see above)."""

    scheme: Literal["lexicon", "alignment39"]
    lexicon: list[str] | str | None = None  # scheme `lexicon`: its files; relative paths sit beside the corpus folder


@dataclass(frozen=True, kw_only=True)
class PRParams(ProbeParams):
    targets: PRTargets


def lexicon_paths(targets: PRTargets, root: Path) -> list[Path]:
    """The preset's lexicon files; relative paths are taken beside the LibriSpeech folder."""
    paths = [targets.lexicon] if isinstance(targets.lexicon, str) else targets.lexicon
    if not paths or not all(paths):
        raise ConfigError(f"pr targets.lexicon must be a list of lexicon file paths, got {paths!r}")
    out = []
    for p in paths:
        path = Path(p).expanduser()
        out.append(path if path.is_absolute() else Path(root).parent / path)
    return out


class PhonemeRecognition(CTCTask):
    name = "pr"
    corpus_kind = "librispeech"
    splits = Splits("train-clean-100", "dev-clean", "test-clean")
    metric = "per"
    preset_file = CONFIG_DIR / "tasks" / "pr.yaml"
    params_type = PRParams

    def fit(self, train, params, root) -> Vocab:
        if params.targets.scheme == "alignment39":
            return Vocab(("<blank>",) + PHONES39, info={"scheme": "alignment39"})
        paths = lexicon_paths(params.targets, root)
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"PR lexicon file(s) not found: {', '.join(missing)}. SUPERB's are in the s3prl repository "
                "under s3prl/downstream/ctc/lexicon/ (librispeech-lexicon-200k-g2p.txt, "
                "librispeech-lexicon-allothers-g2p.txt): put them in lexicon/ beside the LibriSpeech folder, "
                "or set targets.lexicon to their paths. (A synthetic corpus from LayerBench before the "
                "lexicon existed: `layerbench synth --out <its folder>` adds it.)")
        lexicon = read_lexicon(paths, PHONES71)
        info = {"scheme": "lexicon", "lexicon": [{"path": p, "sha256": h} for p, h in lexicon.sources],
                "pronunciation": "first in file order"}
        return Vocab((PAD, EOS, UNK) + PHONES71, blank=0, eos=1, lexicon=lexicon, info=info)

    def tokens(self, utt, space: Vocab) -> list[str]:
        if space.lexicon is not None:
            words = utt.text.split()
            if not words:
                raise ValueError(f"task pr: utterance {utt.id} ({utt.path}) has an empty transcript")
            out: list[str] = []
            for w in words:
                try:
                    out += space.lexicon.pronounce(w)
                except KeyError as e:
                    raise ValueError(f"task pr: utterance {utt.id}: {e.args[0]}") from None
            return out
        if utt.phones is None:
            raise ValueError(f"task pr: utterance {utt.id} ({utt.path}) has no phone alignment "
                             "(targets.scheme alignment39 needs one)")
        out = []
        for seg in utt.phones:
            try:
                p = normalize_phone(seg.label)
            except ValueError as e:
                raise ValueError(f"task pr: utterance {utt.id}: {e}") from e
            if p is not None:
                out.append(p)
        return out

    def render(self, toks) -> str:
        return " ".join(toks)

    def make_heads(self, groups, dim, space: Vocab, params, generator) -> FrameLinearHeads:
        return FrameLinearHeads(groups, dim, params.head.hidden, space.size, generator)


TASK = PhonemeRecognition()
