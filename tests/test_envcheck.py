"""The installed torch / torchaudio pair loads torchaudio's compiled library and computes fbank."""

from __future__ import annotations

import pytest

from bench import envcheck


def test_locked_pair_loads_and_computes_fbank():
    envcheck.check_torchaudio()  # raises BrokenPairError naming both versions otherwise
    v = envcheck.versions()
    assert v["torch"].startswith("2.11.") and v["torchaudio"] != "2.11.1"


def test_a_broken_pair_names_both_versions(monkeypatch):
    from torchaudio._extension import utils

    def broken(name):
        raise OSError(f"Could not load this library: {name}.so: undefined symbol: "
                      "torch_exception_get_what_without_backtrace")

    monkeypatch.setattr(utils, "_load_lib", broken)
    v = envcheck.versions()
    with pytest.raises(envcheck.BrokenPairError, match=rf"torchaudio {v['torchaudio']} does not work with torch "
                                                        rf"{v['torch']}.*undefined symbol"):
        envcheck.check_torchaudio()
    assert envcheck.main() == 1
