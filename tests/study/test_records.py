"""Trial records: origins (new data and old sentences), reasons, counting, ranking, requeue."""

from __future__ import annotations

import optuna
import pytest

from tunekit.study.records import (
    CONTINUES_ATTR,
    INTERRUPTED,
    ORIGIN_ATTR,
    PREDICTION,
    REASON_ATTR,
    SURPLUS,
    WORKER_DIED,
    Origin,
    best_of,
    counted_trials,
    origin_of,
    ranked,
    reason_of,
    requeue,
    retry_of,
    state_counts,
)


def frozen(state: str, value: float | None = None, **user_attrs) -> optuna.trial.FrozenTrial:
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState[state],
        value=value,
        params={"x": 0.5},
        distributions={"x": dist},
        user_attrs=user_attrs,
    )


@pytest.mark.parametrize(
    ("stored", "origin"),
    [
        ({"kind": "prediction"}, PREDICTION),
        ({"kind": "retry", "of": 3, "why": "interrupted"}, retry_of(3, INTERRUPTED)),
        # Studies written before issue #13 stored sentences; they still read.
        ("prior prediction", PREDICTION),
        ("retry of interrupted trial 3", retry_of(3, INTERRUPTED)),
        ("retry of trial 7 (worker died)", retry_of(7, "worker died")),
        (None, None),
    ],
)
def test_origin_reads_data_and_old_sentences(stored, origin):
    trial = frozen("WAITING", **({ORIGIN_ATTR: stored} if stored is not None else {}))
    assert origin_of(trial) == origin


def test_origin_sentences_are_what_show_printed():
    assert PREDICTION.describe() == "prior prediction"
    assert retry_of(3, INTERRUPTED).describe() == "retry of interrupted trial 3"
    assert retry_of(7, "worker died").describe() == "retry of trial 7 (worker died)"
    assert Origin(**retry_of(7, "worker died").to_dict()) == retry_of(7, "worker died")


def test_reasons_and_counting():
    trials = [
        frozen("COMPLETE", 1.0),
        frozen("PRUNED", **{REASON_ATTR: "pruned at step 10"}),
        frozen("FAIL", **{REASON_ATTR: "RuntimeError: boom"}),  # the user's code: counted
        frozen("FAIL", **{REASON_ATTR: INTERRUPTED}),  # retried instead
        frozen("FAIL"),  # failed by the heartbeat check: its worker died
        frozen("FAIL", **{REASON_ATTR: SURPLUS}),  # never ran
    ]
    assert counted_trials(trials) == 3
    assert reason_of(trials[4]) == WORKER_DIED
    assert state_counts(trials) == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 3, "RUNNING": 0, "WAITING": 0}


@pytest.mark.parametrize(("minimize", "order"), [(True, [1, 2, 0]), (False, [0, 2, 1])])
def test_ranking_follows_the_direction(minimize, order):
    trials = [frozen("COMPLETE", 3.0), frozen("COMPLETE", 1.0), frozen("COMPLETE", 2.0), frozen("PRUNED")]
    assert [trials.index(t) for t in ranked(trials, minimize)] == order
    assert best_of(trials, minimize) is trials[order[0]]
    assert best_of([frozen("FAIL")], minimize) is None


def test_requeue_adds_a_waiting_trial_with_its_origin(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", study_name="r")
    study.add_trial(frozen("FAIL", **{REASON_ATTR: INTERRUPTED}))
    failed = study.get_trials()[0]
    requeue(study, failed, retry_of(failed.number, INTERRUPTED), {"failed_trial": 0})
    queued = study.get_trials()[1]
    assert queued.state.name == "WAITING" and queued.params == failed.params
    assert origin_of(queued) == retry_of(0, INTERRUPTED)
    assert queued.system_attrs["failed_trial"] == 0


def test_a_retry_of_a_continued_trial_continues_the_same_stable_phase(tmp_path):
    """search --from-study: an interrupted continuation is queued to continue again, not to start over."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", study_name="r")
    continues = {"study": "short", "trial": 2, "artifact_id": "abc", "step": 48}
    study.add_trial(frozen("FAIL", **{REASON_ATTR: INTERRUPTED, CONTINUES_ATTR: continues}))
    requeue(study, study.get_trials()[0], retry_of(0, INTERRUPTED))
    assert study.get_trials()[1].user_attrs[CONTINUES_ATTR] == continues
    plain = Origin("continuation", 2, "study short, from step 48")
    assert plain.describe() == "continues trial 2's stable phase (study short, from step 48)"
