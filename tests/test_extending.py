"""Extending LayerBench without touching the package: a task and a CCA property of your own via `py:`.

Each test writes the README's "Extending LayerBench" modules into a temporary folder (as a
newcomer would), puts only that folder on PYTHONPATH, and runs the installed `layerbench` command on the tiny corpus (later
calls of the same test go through the same entry point in-process, to save start-up time).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tasks
from bench.cli import main as cli_main
from bench.config import ConfigError
from test_probe_fakes import one_thread  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

TOY_TASKS = '''
"""IC redeclared (to check the numbers) and two tasks that break the contract."""
import tasks
from tasks.base import ClassificationTask, Splits


class MyIC(ClassificationTask):
    def __init__(self):
        super().__init__("ic", "fsc", Splits("train", "valid", "test"), slots=("action", "object", "location"),
                         preset_file=tasks.get("ic").preset_file)


class NoScore:
    name, corpus_kind, level = "broken", "fsc", "utterance"


class WrongKind(ClassificationTask):
    def __init__(self):
        super().__init__("wrong", "timit", Splits("a", "b", "c"), slots=("x",))
'''

def readme_files() -> dict[str, str]:
    """The README's "Extending LayerBench" examples: code blocks whose first line names a file."""
    blocks = re.findall(r"```(?:python|yaml)\n# (my_\w+\.(?:py|yaml))\b[^\n]*\n(.*?)```", README.read_text(), re.S)
    return {name: body for name, body in blocks}


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text).lstrip())


def _layerbench(args: list[str], plugin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    script = Path(sys.executable).with_name("layerbench")  # the installed console script
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture()
def plugins(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    _write(folder, "toy_tasks.py", TOY_TASKS)
    files = readme_files()
    assert {"my_tasks.py", "my_tasks.yaml", "my_cca.py"} <= set(files)
    for name, body in files.items():
        (folder / name).write_text(body)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _package_state() -> str:
    """Tracked and untracked files of the package, as git sees them (nothing may change)."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "bench", "tasks", "upstreams",
                          "configs"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else ""


@pytest.mark.slow
def test_a_task_of_my_own_runs_end_to_end_with_layerbench_probe(plugins, synth_root, tmp_path, capsys):
    before = _package_state()
    out = tmp_path / "runs"
    ref = "py:my_tasks:FscObject"
    args = ["probe", "--upstream", "fbank:no_cmvn", "--task", ref, "--corpus", str(synth_root), "--out", str(out),
            "--no-progress"]
    run = _layerbench(args, plugins)
    assert run.returncode == 0, run.stderr
    path = out / "probe" / "fbank_no_cmvn__py_my_tasks_FscObject.json"
    assert f"result in {path}" in run.stdout and "<- best" in run.stdout
    res = json.loads(path.read_text())
    assert res["task"] == "fsc_object" and res["config"]["task"] == ref
    assert res["metric"] == "accuracy" and res["higher_is_better"] is True
    assert res["config"]["params"]["steps"] == 30  # the task's own preset file
    assert set(res["corpus"]["splits"]) == {"train", "valid", "test"} and res["corpus"]["kind"] == "fsc"
    for v in [r["test"] for r in res["per_layer"]] + [res["weighted_sum"]["test"]]:
        assert v is not None and 0 <= v <= 100
    # Resume works for it like for a built-in task; a key its preset lacks is an error naming it.
    assert cli_main(args) == 0 and "already done, skipped" in capsys.readouterr().out
    assert cli_main(args + ["--set", "head.hiden=8"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'hiden'" in err and "did you mean 'hidden'" in err
    assert _package_state() == before


@pytest.mark.slow
def test_a_user_task_gives_the_builtin_numbers_when_it_declares_the_same_task(plugins, synth_root, tmp_path, one_thread):
    from bench.probe import run_probe

    kw = dict(out_dir=tmp_path, progress=False, overrides={"steps": 20, "eval_every": 10})
    builtin = run_probe("fbank:no_cmvn", "ic", synth_root, **kw).result
    mine = run_probe("fbank:no_cmvn", "py:toy_tasks:MyIC", synth_root, **kw).result
    assert mine.task == builtin.task == "ic"
    assert mine.per_layer == builtin.per_layer
    assert mine.weighted_sum.test == builtin.weighted_sum.test


def test_user_task_contract_errors_name_what_is_wrong(plugins):
    with pytest.raises(ValueError, match=r"task 'py:toy_tasks:NoScore': NoScore lacks .*splits \(attribute\).*"
                                         r"score \(method\).*of the task contract"):
        tasks.get("py:toy_tasks:NoScore")
    with pytest.raises(ValueError, match=r"corpus_kind must be one of librispeech, speech_commands, fsc, slurp, "
                                         r"got 'timit'"):
        tasks.get("py:toy_tasks:WrongKind")
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_tasks'"):
        tasks.get("py:no_such_tasks:X")
    with pytest.raises(ValueError, match=r"module 'toy_tasks' has no 'Nope'"):
        tasks.get("py:toy_tasks:Nope")


@pytest.mark.slow
def test_a_cca_property_of_my_own_shares_the_pass_and_scores_every_layer(plugins, synth_root, tmp_path, capsys):
    before = _package_state()
    out = tmp_path / "runs"
    ref = "py:my_cca:FrameRate"
    args = ["cca", "--upstream", "randinit:hubert-tiny", "--corpus", str(synth_root), "--out", str(out),
            "--property", f"{ref},word", "--preset", "quick", "--no-progress"]
    run = _layerbench(args, plugins)
    assert run.returncode == 0, run.stderr
    res = json.loads((out / "cca" / "randinit_hubert-tiny__py_my_cca_FrameRate.json").read_text())
    assert res["property"] == ref and res["corpus"]["n_utterances"] == 6
    assert res["config"]["frame_rate"] == {"num_utterances": 6} and "shuffle_labels" not in res["config"]
    # Known answer: frames per second of audio is each layer's frame rate (20 ms: 50/s, less the conv edge).
    for entry in res["per_layer"]:
        assert 45 < entry["score"] <= 50, entry
    assert res["timings"]["pass_shared_with"] == [ref, "word"]  # one upstream pass served both
    word = json.loads((out / "cca" / "randinit_hubert-tiny__word.json").read_text())
    assert len(word["per_layer"]) == len(res["per_layer"]) and all(math.isfinite(e["score"]) for e in word["per_layer"])
    # Its own config section is overridable and hashed: a new value is a new unit, a typo an error.
    assert cli_main(args + ["--set", "frame_rate.num_utterances=3"]) == 0
    assert "1 already done" in capsys.readouterr().out
    res3 = json.loads((out / "cca" / "randinit_hubert-tiny__py_my_cca_FrameRate.json").read_text())
    assert res3["corpus"]["n_utterances"] == 3 and res3["config_hash"] != res["config_hash"]
    assert cli_main(args + ["--set", "frame_rate.num_utts=3"]) == 2
    assert "unknown key 'num_utts'" in capsys.readouterr().err
    assert _package_state() == before


def test_user_property_contract_errors(plugins):
    from bench.cca_properties import expand

    _write(plugins, "bad_props.py", "class Half:\n    sections = ()\n")
    with pytest.raises(ConfigError, match=r"'py:bad_props:Half': Half lacks .*prepare \(method\).*property contract"):
        expand(["py:bad_props:Half"])
    _write(plugins, "half_sub.py", "from bench.cca_properties import Property\n\n"
           "class NoScore(Property):\n    def prepare(self, samples):\n        return set()\n")
    with pytest.raises(ConfigError, match=r"'py:half_sub:NoScore': Can't instantiate abstract class NoScore.*score"):
        expand(["py:half_sub:NoScore"])
    with pytest.raises(ConfigError, match=r"unknown CCA property 'wrod' \(did you mean 'word'\?\)"):
        expand(["mel", "wrod"])
