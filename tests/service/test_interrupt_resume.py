"""Ctrl-C mid-trial through the installed ``tunekit`` command, then ``tunekit resume`` finishes.

End to end: real processes, a real SIGINT, a real SQLite file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY

from tunekit.study.records import REASON_ATTR

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)


def tunekit_command() -> list[str]:
    installed = Path(sys.executable).parent / "tunekit"
    return [str(installed)] if installed.exists() else [shutil.which("tunekit") or "tunekit"]


def wait_for_running_trial(storage_url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            study = optuna.load_study(study_name="tiny_regression", storage=storage_url)
            running = [t for t in study.get_trials() if t.state.name == "RUNNING"]
            if running and running[0].intermediate_values:  # mid-trial: a validation already reported
                return
        except KeyError:
            pass
        time.sleep(0.2)
    raise AssertionError("no trial started")


def test_ctrl_c_marks_interrupted_and_resume_retries_it(storage_url, tmp_path):
    env = {**os.environ, "TUNEKIT_STORAGE": storage_url}
    args = [
        "search",
        str(TINY),
        "--trials",
        "2",
        "--max-steps",
        "60",
        "--evaluations",
        "4",
        "--model-arg",
        "sleep=0.05",
    ]
    proc = subprocess.Popen(
        tunekit_command() + args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for_running_trial(storage_url, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Resume with: tunekit resume --study tiny_regression" in output

    trials = optuna.load_study(study_name="tiny_regression", storage=storage_url).get_trials()
    interrupted = [t for t in trials if t.state.name == "FAIL"]
    assert len(interrupted) == 1 and interrupted[0].user_attrs[REASON_ATTR] == "interrupted"
    waiting = [t for t in trials if t.state.name == "WAITING"]
    assert len(waiting) == 1 and waiting[0].params == interrupted[0].params
    assert not [t for t in trials if t.state.name == "RUNNING"]

    resumed = subprocess.run(
        tunekit_command() + ["resume", "--study", "tiny_regression"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trials = optuna.load_study(study_name="tiny_regression", storage=storage_url).get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2  # the target of the interrupted run, no more, no less
    assert interrupted[0].params in [t.params for t in finished]  # the interrupted point was retried
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
