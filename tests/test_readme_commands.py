"""Every `layerbench` command line shown in README.md runs, and every `--set` example is valid.

Command lines come from the README's code blocks and from inline code that is a whole command
(no placeholders such as SPEC or [--opt]). Each runs in-process on the tiny synthetic corpus,
made cheap and offline by `_adapt`: corpus and output paths point at the test's folders, hub
models become random tiny models of the same family (nothing can be downloaded here), probes
train a few steps, `select` ranks with the quick CCA preset, and `run` makes its plan (`--dry-run`, which reads no audio). A subcommand
without a rule in `_adapt` fails the test, so a new documented command gets one.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FEW_STEPS = ["--set", "steps=4", "--set", "eval_every=2"]
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{1,}\b|\[|\||\.\.\.")


def _code_block_commands(text: str) -> list[str]:
    lines, inside = [], False
    for raw in text.splitlines():
        if raw.startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(raw)
    joined = "\n".join(lines).replace("\\\n", " ")
    return [c for c in (line.split(" #")[0].strip() for line in joined.splitlines()) if c.startswith("layerbench ")]


def _inline_commands(text: str) -> list[str]:
    spans = [" ".join(s.split()) for s in re.findall(r"`(layerbench [^`]+)`", text)]
    return [s for s in spans if " --" in s and not PLACEHOLDER.search(s.replace("layerbench", ""))]


def readme_commands() -> list[str]:
    text = README.read_text()
    seen: dict[str, None] = {}
    for cmd in _code_block_commands(text) + _inline_commands(text):
        seen.setdefault(cmd, None)
    return list(seen)


def _tiny_stand_in(spec: str) -> str:
    """A hub model (not a local folder) -> a random tiny model of its family."""
    hub = spec.split(",")[0].removeprefix("hf:")
    if not spec.startswith("hf:") or Path(hub).exists() or hub.startswith(("/", ".")):
        return spec
    family = next((f for f in ("hubert", "wavlm", "data2vec", "wav2vec2") if f in hub.lower()), "wav2vec2")
    return f"randinit:{family}-tiny"


def _replace_value(argv: list[str], flag: str, value: str) -> list[str]:
    return [value if i > 0 and argv[i - 1] == flag else a for i, a in enumerate(argv)]


def _adapt(argv: list[str], corpus: Path, tmp: Path) -> list[str]:
    """The documented command, made runnable here (see the module docstring)."""
    cmd = argv[0]
    # commands run from the repository root; this test runs in a scratch folder
    argv = [str(ROOT / a) if "/" in a and (ROOT / a).exists() else a for a in argv]
    argv = _replace_value(argv, "--corpus", str(corpus))
    argv = _replace_value(argv, "--results", str(tmp / "results"))
    argv = _replace_value(argv, "--out", str(tmp / "out"))
    argv = [_tiny_stand_in(a) if i > 0 and argv[i - 1] == "--upstream" else a for i, a in enumerate(argv)]
    if cmd == "run":
        argv = [a for i, a in enumerate(argv) if a != "--device" and (i == 0 or argv[i - 1] != "--device")]
        return argv + (["--dry-run"] if "--dry-run" not in argv else [])
    if cmd in ("probe", "select"):
        if "--out" not in argv:
            argv += ["--out", str(tmp / "out")]
        if cmd == "select" and "--cca-preset" not in argv:  # the paper's sample sizes need a real corpus
            argv += ["--cca-preset", "quick"]
        return argv + FEW_STEPS + ["--no-progress"]
    if cmd == "tune":  # two rates per head, one round
        return argv + FEW_STEPS + ["--trials", "2", "--stack", "2", "--no-progress"]
    if cmd == "cca":
        if "--out" not in argv:
            argv += ["--out", str(tmp / "out")]
        return argv + ["--no-progress"]
    if cmd == "clusters":
        if "--out" not in argv:
            argv += ["--out", str(tmp / "out")]
        return argv + ["--no-progress"]
    if cmd in ("describe", "list", "corpus"):
        return argv
    pytest.fail(f"README command {' '.join(argv)!r}: tests/test_readme_commands.py has no rule for "
                f"`layerbench {cmd}`; add one to _adapt")


def test_readme_shows_commands():
    cmds = readme_commands()
    assert any(c.startswith("layerbench run") for c in cmds) and len(cmds) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command, synth_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_upstream.py").write_text(_readme_python_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = _adapt(shlex.split(command)[1:], synth_root, tmp_path)
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, f"{command!r} (run as {argv}) exited {rc}:\n{out.err[-2000:]}"


def _readme_python_example() -> str:
    """The README's `my_upstream.py` example, so `describe py:my_upstream:...` runs as documented."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next((b for b in blocks if "my_upstream.py" in b), "")


def _set_examples() -> list[str]:
    found = re.findall(r"--set[ =]([A-Za-z_.]+=[^\s`)\]]+)", README.read_text())
    return sorted({f for f in found if not f.startswith("key=")})


@pytest.mark.parametrize("example", _set_examples())
def test_readme_set_examples_are_valid_keys(example):
    """Each documented `--set key=value` is a key of some task preset, the CCA or the clusters config."""
    import tasks
    from bench import clusters, layerwise_cca
    from bench.config import ConfigError, parse_overrides
    from bench.probe import resolve_params

    overrides = parse_overrides([example])
    attempts = [lambda t=t: resolve_params(t, "quick", overrides) for t in tasks.names()]
    attempts += [lambda: layerwise_cca.load_config("default", overrides),
                 lambda: clusters.load_config("default", overrides)]
    errors = []
    for attempt in attempts:
        try:
            attempt()
            return
        except ConfigError as e:
            errors.append(str(e))
    pytest.fail(f"README example --set {example} is no valid key: {errors[0]}")
