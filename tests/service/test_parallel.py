"""Several workers on one study: ``--jobs``, separate processes, Ctrl-C of one of them.

Four workers on one SQLite file, end to end: ``tunekit search --jobs 2`` and ``tunekit resume --jobs
2`` started next to it. The first is stopped with Ctrl-C halfway; the second finishes the study,
retrying what the first had to drop. The PostgreSQL version is in test_postgres.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from conftest import tunekit_command

from tunekit.service.workers import available_cores
from tunekit.study.records import REASON_ATTR, WORKER_ATTR, counts_toward_target, is_surplus, origin_of

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)

TRIALS = 12
# 20 steps of 0.1 s: the workers mostly sleep, so four fit on two cores and really overlap.
SLOW = ["--max-steps", "20", "--evaluations", "2", "--model-arg", "step_sleep=0.1"]


def start(args: list[str], cwd: Path, storage: str) -> subprocess.Popen:
    env = {**os.environ, "TUNEKIT_STORAGE": storage, "TUNEKIT_HEARTBEAT_INTERVAL": "1"}
    return subprocess.Popen(
        tunekit_command() + args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def load(storage: str) -> optuna.Study:
    return optuna.load_study(study_name="faulty", storage=storage)


def wait_until(condition, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for p in procs:
            assert p.poll() is None, p.communicate()[0]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def study_exists(storage: str) -> bool:
    return "faulty" in optuna.get_all_study_names(storage)


def counted(storage: str) -> int:
    return sum(counts_toward_target(t) for t in load(storage).get_trials())


def assert_study_complete(storage: str, outputs: list[str]) -> list[optuna.trial.FrozenTrial]:
    """The requested count exactly, unique numbers, nothing left running or queued, no lock errors."""
    trials = load(storage).get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1
    assert sum(counts_toward_target(t) for t in trials) == TRIALS
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    assert all(t.state.name in ("COMPLETE", "PRUNED") or t.user_attrs.get(REASON_ATTR) for t in trials)
    for output in outputs:
        assert "database is locked" not in output and "Traceback" not in output, output
    return [t for t in trials if not is_surplus(t)]


@pytest.mark.skipif(available_cores() < 2, reason="--jobs 2 needs two cores")
def test_four_workers_on_sqlite_and_ctrl_c_of_two(faulty_script, storage_url, tmp_path):
    first = start(["search", str(faulty_script), "--trials", str(TRIALS), "--jobs", "2", *SLOW], tmp_path, storage_url)
    wait_until(lambda: study_exists(storage_url), [first])
    second = start(["resume", "--study", "faulty", "--jobs", "2"], tmp_path, storage_url)
    # Ctrl-C the first once all four workers are at it (or the study is well under way).
    workers = lambda: {t.user_attrs.get(WORKER_ATTR) for t in load(storage_url).get_trials()} - {None}  # noqa: E731
    wait_until(lambda: len(workers()) >= 4 or counted(storage_url) >= TRIALS // 2, [first, second])
    first.send_signal(signal.SIGINT)
    out_first, _ = first.communicate(timeout=120)
    out_second, _ = second.communicate(timeout=300)
    assert first.returncode == 130, out_first
    assert "Stopping the 2 workers after their current batch" in out_first
    assert "Resume with: tunekit resume --study faulty" in out_first
    assert second.returncode == 0, out_second

    trials = assert_study_complete(storage_url, [out_first, out_second])
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) >= 3  # the work really was shared
    interrupted = [t for t in trials if t.user_attrs.get(REASON_ATTR) == "interrupted"]
    # What the first had to drop, the second ran again with the same parameters. A trial stopped
    # between Optuna's ask and its sampling has no parameters and nothing to retry (records.requeue).
    for t in (t for t in interrupted if t.params):
        (retry,) = [
            r for r in trials if origin_of(r) and origin_of(r).describe() == f"retry of interrupted trial {t.number}"
        ]
        assert retry.params == t.params and counts_toward_target(retry)


def test_more_workers_than_sqlite_suits_get_a_warning(monkeypatch, storage_url):
    """Past SQLITE_SENSIBLE_WORKERS the search warns (the workers themselves are stubbed out here)."""
    from click.testing import CliRunner
    from conftest import TINY

    import tunekit.service.workers
    from tunekit.cli import main
    from tunekit.study.storage import SQLITE_SENSIBLE_WORKERS

    jobs = SQLITE_SENSIBLE_WORKERS + 1
    workers = tunekit.service.workers
    monkeypatch.setattr(workers, "available_cores", lambda: 2 * jobs)
    monkeypatch.setattr(workers, "run_workers", lambda *a, **k: workers.WorkersOutcome(False))
    result = CliRunner().invoke(main, ["search", str(TINY), "--trials", "1", "--jobs", str(jobs), "--max-steps", "20"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"on {jobs} workers of 2 thread(s)" in text
    assert f"Warning: {jobs} workers on one SQLite file. SQLite lets one process write at a time" in text
