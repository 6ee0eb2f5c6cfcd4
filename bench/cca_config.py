"""The CCA config (configs/cca.yaml) as typed sections, loaded in one place.

`load_config` resolves the mapping (the preset over `default`, the sections user properties
bring, the overrides) and checks its built-in sections by type (`bench.schema`); that mapping
is what results are hashed on. `CCAConfig.of(cfg)` is the typed view the built-in properties
read. The mel section's recipe values default to `bench.views.MelRecipe` (the paper's): they are
its one home, filled into the mapping here so they can be overridden and are hashed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import schema
from bench.config import CONFIG_DIR, ConfigError, load_preset_config, merge
from bench.extract import PassBatches
from bench.views import MEL_HOP, MelRecipe

CONFIG_FILE = CONFIG_DIR / "cca.yaml"


@dataclass(frozen=True, kw_only=True)
class MelSection(MelRecipe):
    """CCA-mel's sample (utterances, frames per layer) and the recipe of its features."""

    num_utterances: int = field(metadata={"ge": 1})
    max_frames: int = field(metadata={"ge": 1})  # per layer

    def checked(self, loc: str) -> "MelSection":
        if self.hop_length != MEL_HOP:
            raise ConfigError(f"{loc}.hop_length must be {MEL_HOP} (10 ms), got {self.hop_length}")
        return self


@dataclass(frozen=True)
class PhoneSection:
    per_label: int = field(metadata={"ge": 1})  # segments per phone
    middle_third: bool  # a segment's vector is the mean of its middle third


@dataclass(frozen=True)
class WordSection:
    num_words: int = field(metadata={"ge": 1})
    min_count: int = field(metadata={"ge": 1})
    per_label: int = field(metadata={"ge": 1})


@dataclass(frozen=True)
class CVSection:
    """PWCCA's cross-validation (the `cca` section)."""

    num_parts: int = field(metadata={"ge": 2})
    num_pairs: int = field(metadata={"ge": 1})
    sample_sets: int = field(metadata={"ge": 1})


@dataclass(frozen=True)
class MISection:
    train_split: str
    train_utterances: int | None = field(metadata={"ge": 1})
    train_per_phone: tuple[int, int]
    train_per_word: tuple[int, int]
    k_phone: int = field(metadata={"ge": 1})
    k_word: int = field(metadata={"ge": 1})
    min_per_cluster: int = field(metadata={"ge": 1})
    batch_size: int = field(metadata={"ge": 1})
    max_iter: int = field(metadata={"ge": 1})
    n_init: int = field(metadata={"ge": 1})


@dataclass(frozen=True)
class CCAConfig:
    """The built-in sections of configs/cca.yaml, whose comments say what each value means (the
    sections user properties bring are theirs to read from the mapping)."""

    corpus_kind: str
    split: str
    batch: PassBatches
    mel: MelSection
    phone: PhoneSection
    word: WordSection
    shuffle_labels: bool
    embeddings: dict[str, str]
    cca: CVSection
    mi: MISection

    @classmethod
    def of(cls, cfg: dict[str, Any], where: str = "CCA config") -> "CCAConfig":
        """The typed view of a resolved mapping (the sections user properties bring are left out)."""
        return schema.load(cls, {k: cfg[k] for k in schema.keys(cls) if k in cfg}, where)


def load_config(preset: str = "default", overrides: dict[str, Any] | None = None,
                properties: Sequence[str] = ()) -> dict[str, Any]:
    """`default` of configs/cca.yaml, then the named preset, the sections of their own that
    `properties` bring (user properties), then the overrides; unknown keys and values of the
    wrong type are errors naming the file, the key and the value."""
    from bench import cca_properties as registry

    cfg = load_preset_config(CONFIG_FILE, preset, None, "CCA")
    cfg["mel"] = {**asdict(MelRecipe()), **cfg["mel"]}
    for prop in properties:
        for section, values in registry.get(prop).defaults.items():
            cfg.setdefault(section, copy.deepcopy(values))
    if overrides:
        cfg = merge(cfg, overrides, "CCA overrides")
    CCAConfig.of(cfg, f"CCA config ({CONFIG_FILE} preset {preset!r}{' with overrides' if overrides else ''})")
    return cfg
