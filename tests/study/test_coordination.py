"""Worker coordination on real temporary SQLite studies: the shared target, waiting, surplus,
unclaimed and interrupted trials (no training: trials are created and moved by hand)."""

from __future__ import annotations

import optuna
import pytest

from tunekit.study.coordination import (
    enqueue_next_prediction,
    fail_unclaimed,
    later_than_target,
    remaining_trials,
    requeue_interrupted,
    sampler_seed,
    wait_for_place,
)
from tunekit.study.records import INTERRUPTED, PREDICTED_ATTR, PREDICTION, REASON_ATTR, origin_of, retry_of
from tunekit.study.storage import open_storage

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

DIST = {"optimizer": optuna.distributions.CategoricalDistribution(["adamw", "sgd"])}


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEKIT_HEARTBEAT_INTERVAL", "1")
    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}")
    return storage, optuna.create_study(storage=storage, study_name="c")


def add(study, state: str, reason: str | None = None, value: float | None = None) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState[state],
            value=value,
            params={"optimizer": "adamw"},
            distributions=DIST,
            user_attrs={REASON_ATTR: reason} if reason else {},
        )
    )


def test_remaining_counts_only_trials_that_count(study):
    _, s = study
    add(s, "COMPLETE", value=1.0)
    add(s, "FAIL", INTERRUPTED)
    add(s, "PRUNED", "pruned")
    assert remaining_trials(s, 5) == 3
    assert remaining_trials(s, None) == 0


def test_wait_for_place_starts_while_below_target_and_stops_at_it(study):
    storage, s = study
    assert wait_for_place(storage, s, 1, lambda: False, lambda running: None)
    add(s, "COMPLETE", value=1.0)
    assert not wait_for_place(storage, s, 1, lambda: False, lambda running: None)


def test_wait_for_place_waits_while_the_last_trials_run_elsewhere(study):
    storage, s = study
    running = s.ask()  # another worker's trial, with its name recorded: claimed
    running.set_user_attr("tunekit.worker", "elsewhere:1")
    seen: list[list[int]] = []
    looks = iter([False, False, True])  # stop on the third look
    assert not wait_for_place(storage, s, 1, lambda: next(looks), seen.append, poll=0.01)
    assert seen == [[running.number], [running.number]]


def test_an_unclaimed_running_trial_is_failed_and_retried_after_the_grace_period(study):
    storage, s = study
    orphan = s.ask()  # asked, then its worker died before the objective started
    frozen = s.get_trials()[0]
    fail_unclaimed(storage, s, [frozen], {orphan.number: -1e9})  # first seen long ago
    states = [t.state.name for t in s.get_trials()]
    assert states == ["FAIL", "WAITING"]
    assert origin_of(s.get_trials()[1]) == retry_of(orphan.number, "worker died")
    fail_unclaimed(storage, s, [frozen], {orphan.number: -1e9})  # finished: nothing happens twice
    assert len(s.get_trials()) == 2


def test_the_later_of_two_workers_at_the_last_place_is_surplus(study):
    _, s = study
    first, second = s.ask(), s.ask()
    assert not later_than_target(s, first.number, 1)
    assert later_than_target(s, second.number, 1)


def test_predictions_are_queued_one_family_at_a_time(study):
    _, s = study
    enqueue_next_prediction(s, ["adamw", "sgd"], lambda family: {"optimizer": family})
    enqueue_next_prediction(s, ["adamw", "sgd"], lambda family: {"optimizer": family})  # queue not empty
    (queued,) = s.get_trials()
    assert queued.user_attrs[PREDICTED_ATTR] == "adamw" and origin_of(queued) == PREDICTION


def test_interrupted_trials_are_requeued_once(study):
    _, s = study
    add(s, "FAIL", INTERRUPTED)
    requeue_interrupted(s, [0])
    requeue_interrupted(s, [0])
    trials = s.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert origin_of(trials[1]) == retry_of(0, INTERRUPTED)


def test_sampler_seeds_differ_per_worker_and_per_trial_count(study):
    _, s = study
    add(s, "COMPLETE", value=1.0)
    done = s.get_trials()
    assert sampler_seed(0, [], 0) != sampler_seed(0, [], 1)
    assert sampler_seed(0, [], 0) != sampler_seed(0, done, 0)
    assert sampler_seed(0, done, 0) == sampler_seed(0, done, 0)
