"""Config overrides: values typed as people write them, unknown keys named with a suggestion."""

from __future__ import annotations

import pytest

from bench.config import ConfigError, merge, parse_overrides


def test_override_values_are_typed():
    got = parse_overrides(["lr=2e-3", "steps=200", "head.hidden=32", "name=abc", "flag=true", "layers=[0, 2]"])
    assert got == {"lr": 0.002, "steps": 200, "head": {"hidden": 32}, "name": "abc", "flag": True, "layers": [0, 2]}
    assert isinstance(got["lr"], float)


def test_unknown_key_is_named_with_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'step' in preset.*did you mean 'steps'"):
        merge({"steps": 1, "lr": 0.1}, {"step": 5}, "preset")


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="'lr' must look like key=value"):
        parse_overrides(["lr"])
