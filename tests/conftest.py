"""Shared fixtures: the tiny synthetic corpus is generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench  # noqa: F401  (sets the OpenMP wait policy before any test imports torch)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """The `tiny` synthetic corpus (all four layouts), seed 0."""
    from bench.synth import ensure_corpus

    return ensure_corpus(tmp_path_factory.mktemp("synth") / "corpus", size="tiny", seed=0)
