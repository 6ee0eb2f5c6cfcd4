"""Config hashes of unchanged configs stay put: result files carry `config_hash`, and a hash that
moved would make every user's finished unit look stale and be computed again.

The pins were taken from the code before configs were typed (bench/schema.py), PR and ASR
after `extract.keep_train` joined their presets, the tune units after `bench.tune.TRIAL_VERSION`
2 joined the study key (stacked copies start from the probe run's weights). A deliberate change
of a preset's values changes its pins: update them then (from the code before your change), and
say so.
"""

from __future__ import annotations

import pytest

import tasks
from bench import clusters, layerwise_cca, probe, runner
from bench.results import config_hash

SUITE = {
    "name": "pinned",
    "zoo": [{"name": "FBANK", "spec": "fbank"},
            {"name": "Rand", "spec": "randinit:hubert-small",
             "options": {"layers": "every:2", "overrides": {"lr": 0.002}, "cca_overrides": {"word": {"min_count": 6}}}}],
    "tasks": [{"task": "pr", "preset": "quick"},
              {"task": "ks", "preset": "superb", "overrides": {"steps": 10, "head": {"hidden": 64}}, "tune": {"trials": 3}},
              {"task": "ic", "preset": "quick", "tune": {"use": "fixed", "stack": 2}}],
    "cca": {"properties": ["mel", "phone", "word"], "preset": "quick", "overrides": {"phone": {"per_label": 200}}},
    "series": [{"name": "S", "checkpoints": [{"label": "0", "spec": "randinit:hubert-small"},
                                             {"label": "1", "spec": "randinit:wav2vec2-base"}]}],
    "corpora": {"synthetic": {"dir": "/nonexistent/synth-small", "size": "small", "seed": 0}},
    "out": "/nonexistent/out",
}

UNITS = [
    ("probe", "fbank", "pr", "a3b168c422e55260"),
    ("tune", "fbank", "ks", "02ecf44910788c7c"),
    ("probe", "fbank", "ic", "aae93f57bc792433"),
    ("tune", "fbank", "ic", "3612551dcb81b1c2"),
    ("cca", "fbank", "mel", "c0732e9645186ab2"),
    ("cca", "fbank", "phone", "bcdf7442cfabbd26"),
    ("cca", "fbank", "word", "02745c01ea1b0b9e"),
    ("probe", "randinit:hubert-small", "pr", "58fe97922fd1d717"),
    ("tune", "randinit:hubert-small", "ks", "115116754ba2ba78"),
    ("probe", "randinit:hubert-small", "ic", "0b1658cb9082a8bf"),
    ("tune", "randinit:hubert-small", "ic", "9c4ebc82559ca508"),
    ("cca", "randinit:hubert-small", "mel", "a71a1c0433620663"),
    ("cca", "randinit:hubert-small", "phone", "f3c9f24717cd4c10"),
    ("cca", "randinit:hubert-small", "word", "2decac3e82f7788c"),
    ("cca", "randinit:hubert-small", "word", "b593361b4dcd4099"),
    ("cca", "randinit:wav2vec2-base", "mel", "2b7ac907a42d2470"),
    ("cca", "randinit:wav2vec2-base", "phone", "c1894ee6c6ce3a35"),
    ("cca", "randinit:wav2vec2-base", "word", "4dd0ac83a6bb5494"),
]


def test_unit_hashes_of_a_suite_are_pinned():
    units = runner.plan(runner.parse_suite(SUITE, "pinned"))
    assert [(u.kind, u.upstream.spec, u.name, u.config_hash) for u in units] == UNITS


PRESETS = {
    "cca::default": "45c2196b7c81fe24",
    "clusters::default": "bde0ebab4cd770ee",
    "cca::quick": "a47553b807f8fef1",
    "clusters::quick": "b9a096d57a6a19a5",
    "task:pr:superb": "5665fdc5b2475ff4",
    "task:pr:quick": "34e8fd381ebb7d97",
    "task:asr:superb": "1e4b0d7904417118",
    "task:asr:quick": "8f7292f0db7a9098",
    "task:ic:superb": "6a46d982b775f91d",
    "task:ic:quick": "3a6bcb8a3f671886",
    "task:slurp_scenario:superb": "6a46d982b775f91d",
    "task:slurp_scenario:quick": "3a6bcb8a3f671886",
    "task:slurp_action:superb": "6a46d982b775f91d",
    "task:slurp_action:quick": "3a6bcb8a3f671886",
    "task:ks:superb": "cfca73a82f6c2698",
    "task:ks:quick": "e465c7723b82bbd9",
}


@pytest.mark.parametrize("what", sorted(PRESETS))
def test_resolved_preset_hashes_are_pinned(what):
    kind, name, preset = what.split(":")
    cfg = {"cca": lambda: layerwise_cca.load_config(preset), "clusters": lambda: clusters.load_config(preset),
           "task": lambda: probe.resolve_params(name, preset)}[kind]()
    assert config_hash(cfg) == PRESETS[what]
