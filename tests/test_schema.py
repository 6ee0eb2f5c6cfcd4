"""The one config checker (bench.schema): every section's unknown keys, types and required keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from bench import schema
from bench.config import ConfigError


@dataclass(frozen=True)
class Inner:
    hidden: int = field(default=256, metadata={"ge": 1})
    dropout: float = 0.0


@dataclass(frozen=True)
class Section:
    steps: int
    lr: float = 1e-3
    mode: Literal["skip", "stop"] = "stop"
    head: Inner = field(default_factory=Inner)
    lexicon: list[str] | None = None
    span: tuple[float, float] = (0.1, 10.0)
    extra: dict[str, Any] = field(default_factory=dict)


def _err(data: Any) -> str:
    with pytest.raises(ConfigError) as e:
        schema.load(Section, data, "configs/x.yaml preset 'quick'")
    return str(e.value)


def test_values_are_read_as_their_field_types():
    got = schema.load(Section, {"steps": 5, "lr": 1, "head": {"hidden": 8}, "span": [1, 2], "lexicon": None},
                      "x.yaml")
    assert got == Section(steps=5, lr=1.0, head=Inner(hidden=8), span=(1.0, 2.0))
    assert isinstance(got.lr, float) and isinstance(got.head, Inner)
    assert schema.load(Section, {"steps": 1, "mode": None}, "x.yaml").mode == "stop"  # `mode:` empty = default


@pytest.mark.parametrize("data, parts", [
    ({"steps": 1, "stepz": 2}, ["configs/x.yaml preset 'quick': unknown key 'stepz'", "did you mean 'steps'",
                                "known keys: steps, lr, mode, head"]),
    ({"steps": 1, "head": {"hiden": 3}}, ["configs/x.yaml preset 'quick': head: unknown key 'hiden'",
                                          "did you mean 'hidden'"]),
    ({"steps": "ten"}, ["configs/x.yaml preset 'quick': steps must be an integer, got 'ten'"]),
    ({"steps": True}, ["steps must be an integer, got True"]),
    ({"steps": 1, "head": {"hidden": 0}}, ["head.hidden must be an integer >= 1, got 0"]),
    ({"steps": 1, "lexicon": "a.txt"}, ["lexicon must be a list of strings, got 'a.txt'"]),
    ({"steps": 1, "lexicon": ["a.txt", 3]}, ["lexicon[1] must be a string, got 3"]),
    ({"steps": 1, "span": [1]}, ["span must be a list of 2 (a number, a number), got [1]"]),
    ({"steps": 1, "mode": "skp"}, ["mode must be one of skip, stop, got 'skp'", "did you mean 'skip'"]),
    ({"steps": 1, "head": 5}, ["head must be a mapping (hidden, dropout), got 5"]),
    ({"lr": 0.1}, ["configs/x.yaml preset 'quick': missing required key 'steps'"]),
    ({"steps": None}, ["missing required key 'steps'"]),
    ([1, 2], ["configs/x.yaml preset 'quick' must be a mapping", "got [1, 2]"]),
])
def test_errors_name_the_file_the_key_and_the_value(data, parts):
    msg = _err(data)
    for part in parts:
        assert part in msg, msg


def test_checked_hook_and_lists_of_sections():
    @dataclass(frozen=True)
    class Entry:
        spec: str
        name: str = ""

        def checked(self, loc: str) -> "Entry":
            if self.spec == "bad":
                raise ConfigError(f"{loc}.spec: no such upstream")
            return self if self.name else Entry(self.spec, self.spec)

    got = schema.load_list(Entry, ["fbank", {"spec": "mfcc", "name": "M"}], "zoo.yaml", "upstream",
                           label=("name", "spec"), shorthand="spec")
    assert got == [Entry("fbank", "fbank"), Entry("mfcc", "M")]
    with pytest.raises(ConfigError, match=r"zoo.yaml: upstream #2 \(bad\).spec: no such upstream"):
        schema.load_list(Entry, ["fbank", "bad"], "zoo.yaml", "upstream", label="spec", shorthand="spec")
    with pytest.raises(ConfigError, match=r"zoo.yaml: upstream #1 \(x\): unknown key 'spek' \(did you mean 'spec'"):
        schema.load_list(Entry, [{"spek": "x", "name": "x"}], "zoo.yaml", "upstream", label="name")
    with pytest.raises(ConfigError, match="zoo.yaml: upstream spec 'a' appears twice"):
        schema.no_repeats(["a", "b", "a"], "zoo.yaml", "upstream spec")


def test_cca_config_is_typed_and_the_mel_recipe_has_one_home():
    from bench.cca_config import CONFIG_FILE, CCAConfig, load_config
    from bench.views import MelRecipe

    typed = CCAConfig.of(load_config("quick", {"mel": {"n_mels": 40}, "mi": {"train_per_word": [5, 9]}}))
    assert isinstance(typed.mel, MelRecipe)  # the section is the recipe LogMel takes
    assert (typed.mel.n_mels, typed.mel.f_min, typed.mel.num_utterances) == (40, MelRecipe().f_min, 60)
    assert typed.mi.train_per_word == (5, 9) and typed.cca.num_parts == 5
    with pytest.raises(ConfigError) as e:
        load_config("quick", {"cca": {"num_parts": "ten"}})
    for part in (str(CONFIG_FILE), "preset 'quick'", "cca.num_parts must be an integer >= 2, got 'ten'"):
        assert part in str(e.value), str(e.value)
    with pytest.raises(ConfigError, match="mel.hop_length must be 160"):
        load_config("default", {"mel": {"hop_length": 80}})
    with pytest.raises(ConfigError, match=r"unknown key 'n_mel' in CCA overrides.mel \(did you mean 'n_mels'"):
        load_config("default", {"mel": {"n_mel": 40}})


def test_probe_params_are_typed_by_the_task():
    from bench.params import ExtractParams, HiddenHead
    from bench.probe import resolve_params, typed_params
    from tasks.asr import ASRParams, BiLSTMParams

    asr = typed_params("asr", resolve_params("asr", "superb"))
    assert isinstance(asr, ASRParams) and asr.head == BiLSTMParams(proj=1024, hidden=1024, layers=2, dropout=0.2)
    assert asr.specaug.time_mask_width_range == (0, 40) and isinstance(asr.extract, ExtractParams)
    ks = typed_params("ks", resolve_params("ks", "quick", {"lr": 1}))
    assert ks.head == HiddenHead(256) and ks.lr == 1.0 and ks.dev_sampler == "balanced" and ks.specaug is None
    with pytest.raises(ConfigError) as e:
        resolve_params("asr", "quick", {"head": {"dropout": "high"}})
    for part in ("asr preset 'quick'", "asr.yaml", "head.dropout must be a number >= 0, got 'high'"):
        assert part in str(e.value), str(e.value)
    with pytest.raises(ConfigError, match=r"dev_sampler must be one of all, balanced, got 'balance' "
                                          r"\(did you mean 'balanced'"):
        resolve_params("ks", "quick", {"dev_sampler": "balance"})


def test_unions_with_choices_and_null():
    @dataclass(frozen=True)
    class U:
        mode: Literal["a", "b"] | None = "a"
        n: Literal["auto"] | int = "auto"

    assert schema.load(U, {"mode": None, "n": 3}, "u.yaml") == U(None, 3)
    with pytest.raises(ConfigError, match=r"u.yaml: n must be one of auto or an integer, got 'aut' \(did you mean 'auto'"):
        schema.load(U, {"n": "aut"}, "u.yaml")
