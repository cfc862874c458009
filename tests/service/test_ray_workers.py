"""``search --ray ADDRESS --jobs 2``: two workers as Ray tasks on a real Ray head on loopback, one PostgreSQL study.

The head is started by the test (``ray start --head --block`` in its own session, stopped by
signalling that session: ``ray stop`` would kill every Ray process on the machine). Ray >= 2.59
turns token authentication on for local clusters, so head and driver get one throwaway token.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY, _free_port, tunekit_command

from tunekit.study.records import INTERRUPTED, REASON_ATTR, counts_toward_target, origin_of, retry_of

pytestmark = pytest.mark.slow  # a Ray cluster and a PostgreSQL server
ray = pytest.importorskip("ray")


@pytest.fixture
def ray_head(tmp_path: Path):
    """(address, environment) of a 2-CPU Ray head on 127.0.0.1, with its own auth token."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    port, log = _free_port(), tmp_path / "head.log"
    command = ["ray", "start", "--head", "--block", "--num-cpus", "2", "--port", str(port)]
    command += ["--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"]
    command += ["--object-store-memory", str(200 * 2**20)]  # else 30 % of memory in /dev/shm
    with log.open("w") as out:
        head = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text():  # connecting earlier breaks the driver for good
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # the raylets and workers of this head only
        except ProcessLookupError:
            pass
        head.wait()


def test_two_ray_workers_share_a_study_and_a_killed_one_is_retried(ray_head, postgres_url, tmp_path):
    address, env = ray_head
    steps = tmp_path / "steps.txt"
    args = ["search", str(TINY), "--storage", postgres_url, "--ray", address, "--jobs", "2", "--trials", "4"]
    args += [
        "--max-steps",
        "20",
        "--evaluations",
        "2",
        "--model-arg",
        "sleep=0.1",
        "--model-arg",
        f"steps_file={steps}",
    ]
    env = {**env, "TUNEKIT_HEARTBEAT_INTERVAL": "1"}  # a dead worker's trial is failed after 4 s
    proc = subprocess.Popen(
        tunekit_command() + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:  # the first worker on the cluster that trains (not this driver's check)
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        lines = steps.read_text().splitlines() if steps.exists() else []
        pids = [int(line.split()[2]) for line in lines if line.startswith("start ")]
        victim = next((p for p in pids if p != proc.pid), None)
        time.sleep(0.1)
    time.sleep(0.5)
    assert victim > 1
    os.kill(victim, signal.SIGKILL)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 0, out
    assert "was killed by signal 9 without a result" in out  # said, and the others went on
    trials = optuna.load_study(study_name="tiny_regression", storage=postgres_url).get_trials()
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    assert sum(counts_toward_target(t) for t in trials) == 4
    (dead,) = [t for t in trials if t.state.name == "FAIL"]
    (retry,) = [
        t for t in trials if origin_of(t) and origin_of(t).describe() == f"retry of trial {dead.number} (worker died)"
    ]
    assert retry.params == dead.params and retry.state.name in ("COMPLETE", "PRUNED")


def test_ctrl_c_stops_the_running_ray_tasks_mid_trial(ray_head, postgres_url, tmp_path):
    """Ctrl-C of ``search --ray`` reaches the tasks' running trials (issue #11): each worker stops
    after its batch, its trial is FAIL "interrupted" and queued again, nothing stays RUNNING.

    Each trial would take 20 s (400 steps of 50 ms); before the fix the tasks never saw Ray's cancel
    and both trials completed.
    """
    address, env = ray_head
    steps = tmp_path / "steps.txt"
    args = ["search", str(TINY), "--storage", postgres_url, "--ray", address, "--jobs", "2", "--trials", "2"]
    args += ["--max-steps", "400", "--evaluations", "2", "--model-arg", "sleep=0.05"]
    args += ["--model-arg", f"steps_file={steps}"]
    proc = subprocess.Popen(
        tunekit_command() + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    training: set[int] = set()
    while len(training) < 2:  # both workers on the cluster train (not this driver's one-batch check)
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        lines = steps.read_text().splitlines() if steps.exists() else []
        training = {int(line.split()[2]) for line in lines if line.startswith("start ")} - {proc.pid}
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    trials = optuna.load_study(study_name="tiny_regression", storage=postgres_url).get_trials()
    assert not [t for t in trials if t.state.name == "RUNNING"]
    stopped = [t for t in trials if t.state.name == "FAIL" and t.user_attrs.get(REASON_ATTR) == INTERRUPTED]
    assert len(stopped) == 2 and not [t for t in trials if t.state.name == "COMPLETE"], out
    for t in stopped:  # queued again with the same parameters, for resume
        (retry,) = [r for r in trials if origin_of(r) == retry_of(t.number, INTERRUPTED)]
        assert retry.state.name == "WAITING" and retry.params == t.params
