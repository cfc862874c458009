"""Workers sharing one study: the shared trial target, waiting, surplus, and retrying lost trials.

Every worker (this process, the ``--jobs`` processes, other machines) works toward the study's
shared target (``settings.target_trials``), so N workers together run the requested count:

- before a trial, a worker starts one only while finished-and-counted plus RUNNING trials are
  below the target; when the remaining trials all run elsewhere, it waits, so that if their worker
  died it is there to retry them once the heartbeat check fails them;
- two workers may both see the last free place at once; after ``ask`` each counts the trials
  queued or running with a smaller number, and the later one gives its trial up (FAIL, reason
  ``SURPLUS``, not counted) before sampling anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tunekit.study.records import (
    CONTINUES_ATTR,
    INTERRUPTED,
    ORIGIN_ATTR,
    PREDICTED_ATTR,
    PREDICTION,
    REASON_ATTR,
    WORKER_ATTR,
    counted_trials,
    origin_of,
    requeue,
    retry_of,
)
from tunekit.study.storage import fail_and_retry, grace_period, reap_dead_workers

DEFAULT_TRIALS = 20  # trials a search adds to its study without --trials
WAIT_POLL = 1.0  # seconds between looks at the study while the remaining trials run elsewhere


def remaining_trials(study: Any, target: int | None) -> int:
    """Trials still to run before ``target`` counted trials (0 when it is met or there is none)."""
    return max(0, (target or 0) - counted_trials(study.get_trials(deepcopy=False)))


def sampler_seed(seed: int, trials: list, worker: int) -> int:
    """The sampler's seed: resumed and parallel runs must not replay the same draws.

    A lone run is reproducible (``--seed`` plus the trials so far). A ``--jobs`` worker adds its
    index; a process that joins trials already running elsewhere adds its pid.
    """
    offset = len(trials) + 1_000_003 * worker
    if any(t.state.name == "RUNNING" for t in trials):
        offset += 7_919 * os.getpid()
    return (seed + offset) % 2**32


def wait_for_place(
    storage: Any,
    study: Any,
    target: int,
    should_stop: Callable[[], bool],
    on_wait: Callable[[list[int]], None],
    poll: float = WAIT_POLL,
) -> bool:
    """Whether this worker should start another trial; waits while the last ones run elsewhere.

    Each look first fails the trials of dead workers (no heartbeat for the grace period) and queues
    them again, so a waiting worker is what retries them. ``should_stop`` ends the wait (Ctrl-C,
    the timeout); ``on_wait`` gets the numbers of the trials running elsewhere.
    """
    unclaimed: dict[int, float] = {}
    while True:
        if should_stop():
            return False
        reap_dead_workers(study)
        trials = study.get_trials(deepcopy=False)
        counted = counted_trials(trials)
        running = [t for t in trials if t.state.name == "RUNNING"]
        if counted >= target:
            return False
        if counted + len(running) < target:
            return True
        fail_unclaimed(storage, study, running, unclaimed)
        on_wait([t.number for t in running])
        time.sleep(poll)


def fail_unclaimed(storage: Any, study: Any, running: list, first_seen: dict[int, float]) -> None:
    """Fail and queue again RUNNING trials that no worker ever claimed, after a grace period.

    A worker killed between Optuna's ``ask`` and the start of the objective leaves a RUNNING trial
    with no heartbeat at all, which Optuna's check skips forever. Every live worker stores its name
    on its trial as soon as the objective starts, so a trial seen without one for a whole grace
    period (on this process's own clock: no clock skew between machines) lost its worker.
    """
    now = time.monotonic()
    for t in running:
        if WORKER_ATTR in t.user_attrs:
            continue
        if now - first_seen.setdefault(t.number, now) <= grace_period():
            continue
        fail_and_retry(storage, study, t)


def later_than_target(study: Any, number: int, target: int) -> bool:
    """Whether trial ``number`` is beyond the target, given the trials queued or running before it."""
    trials = study.get_trials(deepcopy=False)
    ahead = sum(1 for t in trials if t.number < number and t.state.name in ("RUNNING", "WAITING"))
    return counted_trials(trials) + ahead >= target


def enqueue_next_prediction(study: Any, families: list[str], predicted_point: Callable[[str], dict]) -> None:
    """Queue the prior's predicted point of the next family that has no trial yet.

    Every family in the space starts at its prediction (centre LR, paper defaults, the default
    schedule) before TPE models it: a fair comparison tunes each family on its own (Wen et al.
    2025), and a family TPE's random start never drew would otherwise never be judged at all.
    """
    trials = study.get_trials(deepcopy=False)
    if any(t.state.name == "WAITING" for t in trials):
        return  # the queued trial runs next; queue more only when the queue is empty (none left over)
    # A trial continued from an earlier study (search --from-study) is not its family's prediction at this budget.
    tried = {t.params.get("optimizer") for t in trials if CONTINUES_ATTR not in t.user_attrs}
    tried |= {t.user_attrs.get(PREDICTED_ATTR) for t in trials}
    for family in families:
        if family not in tried:
            study.enqueue_trial(
                predicted_point(family), user_attrs={ORIGIN_ATTR: PREDICTION.to_dict(), PREDICTED_ATTR: family}
            )
            return


def requeue_interrupted(study: Any, numbers: list[int]) -> None:
    """Queue the parameters of this process's interrupted trials again, so ``resume`` retries them first."""
    trials = study.get_trials(deepcopy=False)
    queued = {origin_of(t) for t in trials}
    mine = set(numbers)
    for t in trials:
        origin = retry_of(t.number, INTERRUPTED)
        if (
            t.number in mine
            and t.params  # stopped before sampling: nothing to retry
            and t.state.name == "FAIL"
            and t.user_attrs.get(REASON_ATTR) == INTERRUPTED
            and origin not in queued
        ):
            requeue(study, t, origin)
