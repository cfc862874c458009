"""Faults caused for real: a second Ctrl-C, kill -9 of a search, out-of-memory in the user's code.

End to end where the fault is about processes (the installed ``tunekit`` command, real signals, a
real SQLite file); in-process through CliRunner where it is about a trial's outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from conftest import tunekit_command

from tunekit.cli import main
from tunekit.study.records import REASON_ATTR, TRACEBACK_ATTR, WORKER_DIED, counts_toward_target, origin_of

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)

FAST = ["--max-steps", "20", "--evaluations", "2"]


def start(args: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        tunekit_command() + args,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Wait until the script touches ``path`` (it is inside a training step of a trial)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the trial never started"
        time.sleep(0.05)


def trials_of(storage_url: str, name: str = "faulty") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage_url).get_trials()


def finish(proc: subprocess.Popen, storage_url: str, timeout: float = 180) -> str:
    """The process's output once it exits; if it hangs, fail with its output and the trials' states."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        states = [(t.number, t.state.name, t.user_attrs) for t in trials_of(storage_url)]
        pytest.fail(f"still running after {timeout}s; trials: {states}\n{proc.communicate()[0]}")


def test_second_ctrl_c_exits_at_once_and_leaves_nothing_running(faulty_script, storage_url, tmp_path):
    marker = tmp_path / "in-step"
    step_sleep = 10.0
    args = ["search", str(faulty_script), "--trials", "2", *FAST]
    proc = start(args + ["--model-arg", f"step_sleep={step_sleep}", "--model-arg", f"marker={marker}"], tmp_path)
    wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)  # first: stop after this batch (10 s away)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)  # second: now
    output, _ = proc.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, output
    assert elapsed < step_sleep / 2, f"took {elapsed:.1f}s: it waited for the batch"
    assert "Stopped at once." in output and "Resume with: tunekit resume --study faulty" in output
    trials = trials_of(storage_url)
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[0].user_attrs[REASON_ATTR] == "interrupted"
    assert trials[1].params == trials[0].params  # queued again for resume


def test_kill_9_then_resume_retries_the_trial_of_the_dead_worker(faulty_script, storage_url, tmp_path):
    heartbeat = {"TUNEKIT_HEARTBEAT_INTERVAL": "1"}  # dead after 4 s without a heartbeat, not 40
    marker = tmp_path / "in-step"
    args = ["search", str(faulty_script), "--trials", "2", *FAST]
    proc = start(args + ["--model-arg", "step_sleep=0.05", "--model-arg", f"marker={marker}"], tmp_path, **heartbeat)
    wait_for(marker, proc)
    proc.kill()
    proc.wait()
    (zombie,) = trials_of(storage_url)
    assert zombie.state.name == "RUNNING"

    resumed = start(["resume", "--study", "faulty"], tmp_path, **heartbeat)
    output = finish(resumed, storage_url)
    assert resumed.returncode == 0, output
    trials = {t.number: t for t in trials_of(storage_url)}
    dead = trials[zombie.number]
    assert dead.state.name == "FAIL" and REASON_ATTR not in dead.user_attrs
    (retry,) = [
        t
        for t in trials.values()
        if origin_of(t) and origin_of(t).describe() == f"retry of trial {zombie.number} (worker died)"
    ]
    assert retry.params == zombie.params and retry.state.name in ("COMPLETE", "PRUNED")
    assert sum(counts_toward_target(t) for t in trials.values()) == 2  # the requested count, no more
    assert not [t for t in trials.values() if t.state.name in ("RUNNING", "WAITING")]

    shown = CliRunner().invoke(main, ["show", "--study", "faulty"])
    assert shown.exit_code == 0 and WORKER_DIED in shown.output
    one = CliRunner().invoke(main, ["show", "--study", "faulty", "--trial", str(zombie.number)])
    assert f"reason: {WORKER_DIED}" in one.output


@pytest.mark.parametrize("kind", ["torch", "cpu"])
def test_out_of_memory_fails_the_trial_with_the_reason(kind, faulty_script, storage_url):
    args = ["search", str(faulty_script), "--trials", "2", *FAST, "--model-arg", "oom_at_step=3"]
    result = CliRunner().invoke(main, args + ["--model-arg", f"oom={kind}"])
    assert result.exit_code == 0, result.output  # fewer trials than fail-fast needs: the study goes on
    trials = trials_of(storage_url)
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    for t in trials:
        assert t.user_attrs[REASON_ATTR].startswith("out of memory: ")
        assert ("CUDA out of memory" if kind == "torch" else "can't allocate memory") in t.user_attrs[REASON_ATTR]
        assert "training_step" in t.user_attrs[TRACEBACK_ATTR]
        assert counts_toward_target(t)
    shown = CliRunner().invoke(main, ["show", "--study", "faulty"])
    assert "out of memory: " in shown.output


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_retried(storage_url, monkeypatch):
    """Killed between Optuna's ``ask`` and the objective: RUNNING with no heartbeat, which Optuna never fails."""
    from conftest import TINY

    from tunekit.study.storage import open_storage

    monkeypatch.setenv("TUNEKIT_HEARTBEAT_INTERVAL", "1")
    assert CliRunner().invoke(main, ["search", str(TINY), "--trials", "1", *FAST]).exit_code == 0
    orphan = optuna.load_study(study_name="tiny_regression", storage=open_storage(storage_url)).ask()
    result = CliRunner().invoke(main, ["resume", "--study", "tiny_regression", "--trials", "1"])
    assert result.exit_code == 0, result.output
    assert f"Waiting for trial(s) {orphan.number}" in result.output
    trials = trials_of(storage_url, "tiny_regression")
    assert trials[orphan.number].state.name == "FAIL"
    (retry,) = [
        t for t in trials if origin_of(t) and origin_of(t).describe() == f"retry of trial {orphan.number} (worker died)"
    ]
    assert retry.state.name in ("COMPLETE", "PRUNED")
    assert sum(counts_toward_target(t) for t in trials) == 2
    assert CliRunner().invoke(main, ["show", "--study", "tiny_regression"]).output.count(WORKER_DIED) == 1
