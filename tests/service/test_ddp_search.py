"""Searches whose trials each span two CPU ranks (``--devices 2 --strategy ddp``, gloo), faults caused for real.

The search runs in this process (rank 0), so a real SIGINT reaches its handler and a real SIGKILL
hits rank 1; the tiny test model writes each rank's pid and stop step to a file (``steps_file``).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY, tunekit_command

from tunekit.errors import EXIT_INTERRUPTED
from tunekit.recipes import Recipe
from tunekit.service.events import QuietView
from tunekit.service.search import SearchRequest, prepare_search
from tunekit.study.records import INTERRUPTED, REASON_ATTR, RECIPE_ATTR
from tunekit.training.fit import RunOptions, run_fit
from tunekit.training.script import ScriptSpec, load_script

pytestmark = pytest.mark.slow  # every trial trains on two processes

DDP = RunOptions(accelerator="cpu", devices=2, strategy="ddp")
TOLERANCE = 1e-5  # relative; two ranks reduce in another float32 order than one process (measured 2.5e-7)


def search(storage_url: str, steps: Path, trials: int = 2, sleep: float = 0.0) -> tuple:
    model_args = {"steps_file": str(steps), "sleep": sleep}
    request = SearchRequest(
        script=ScriptSpec(str(TINY), model_args=model_args),
        study_name="ddp",
        url=storage_url,
        max_steps=12,
        trials=trials,
        evaluations=3,
        optimizers="adamw",
        schedules="cosine",
        options=DDP,
    )
    prepared, n = prepare_search(request)
    prepared.add_trials(n)
    return prepared, prepared.run(QuietView())


def rank_pid(steps: Path, rank: int, timeout: float = 60) -> int:
    """The pid of ``rank`` once it has started training (it wrote "start RANK PID")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in steps.read_text().splitlines() if steps.exists() else []:
            what, r, pid = line.split()
            if what == "start" and int(r) == rank:
                return int(pid)
        time.sleep(0.05)
    raise AssertionError("rank never started training")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def after_start(steps: Path, act) -> threading.Thread:
    """Run ``act(rank 1's pid)`` once rank 1 is a second into its first trial."""

    def watch() -> None:
        pid = rank_pid(steps, 1)
        time.sleep(1.0)
        act(pid)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ddp_trials_complete_with_the_one_process_metric(storage_url, tmp_path):
    prepared, outcome = search(storage_url, tmp_path / "steps.txt")
    trials = prepared.study.get_trials()
    assert not outcome.interrupted and [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    script = load_script(ScriptSpec(str(TINY)))
    for trial in trials:
        alone = run_fit(Recipe.from_dict(trial.user_attrs[RECIPE_ATTR]), script, "val_loss", accelerator="cpu")
        assert math.isclose(alone.value, trial.value, rel_tol=TOLERANCE), (alone.value, trial.value)


def test_ctrl_c_stops_every_rank_and_leaves_nothing_running(storage_url, tmp_path):
    steps = tmp_path / "steps.txt"
    pids: list[int] = []
    after_start(steps, lambda pid: (pids.append(pid), os.kill(os.getpid(), signal.SIGINT)))
    prepared, outcome = search(storage_url, steps, sleep=0.2)
    assert outcome.interrupted
    trials = prepared.study.get_trials()
    assert "RUNNING" not in {t.state.name for t in trials}
    assert trials[0].state.name == "FAIL" and trials[0].user_attrs[REASON_ATTR] == INTERRUPTED
    lines = steps.read_text().splitlines()
    lines = lines[lines.index(f"start 1 {pids[0]}") :]  # not the one-process check before the study
    ends = sorted(line.split()[1:] for line in lines if line.startswith("end"))
    assert len(ends) == 2 and ends[0][1] == ends[1][1] and int(ends[0][1]) < 12  # both stopped at one step
    assert not alive(pids[0])


def test_a_killed_rank_fails_its_trial_and_the_next_trial_runs(storage_url, tmp_path):
    steps = tmp_path / "steps.txt"
    killed: list[int] = []
    after_start(steps, lambda pid: (killed.append(pid), os.kill(pid, signal.SIGKILL)))
    prepared, outcome = search(storage_url, steps, sleep=0.2)
    trials = prepared.study.get_trials()
    assert not outcome.interrupted
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert "rank 1 of 2 failed (exit code -9)" in trials[0].user_attrs[REASON_ATTR]
    second = [int(line.split()[2]) for line in steps.read_text().splitlines() if line.startswith("start 1")]
    assert len(second) == 2 and second[1] != killed[0]  # a fresh rank 1 trained the next trial


def test_the_command_line_ctrl_c_of_a_ddp_search_leaves_nothing_running(storage_url, tmp_path):
    steps = tmp_path / "steps.txt"
    args = ["search", str(TINY), "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--trials", "2"]
    args += ["--max-steps", "40", "--model-arg", "sleep=0.1", "--model-arg", f"steps_file={steps}"]
    proc = subprocess.Popen(
        tunekit_command() + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )  # its own process group, as a shell gives a foreground job
    rank1 = rank_pid(steps, 1)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: only rank 0 is in this group
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == EXIT_INTERRUPTED, out
    assert "Interrupted. Resume with: tunekit resume --study tiny_regression" in out
    trials = optuna.load_study(study_name="tiny_regression", storage=storage_url).get_trials()
    assert trials[0].state.name == "FAIL" and "RUNNING" not in {t.state.name for t in trials}
    assert not alive(rank1)
