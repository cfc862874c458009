"""The family allocation of issue #14: successive rejection over the family axis, after the predictions.

Real Optuna studies on SQLite files; trials are added as finished trials with the attributes a
search writes, and one end-to-end search on the tiny model checks the order the loop runs them in.
"""

from __future__ import annotations

import optuna
import pytest
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.search_spaces.params import FloatRange
from tunekit.study.allocation import LR_STEPS, SEED_SPREAD, enqueue_allocated, next_family, refined_point
from tunekit.study.records import DROPPED_ATTR, ORIGIN_ATTR, PREDICTED_ATTR, origin_of

FAMILIES = ["adamw", "lion", "sgd"]


def add(study, family, value, predicted=False, state="COMPLETE"):
    dist = optuna.distributions.CategoricalDistribution(FAMILIES)
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState[state],
            value=value if state == "COMPLETE" else None,
            params={"optimizer": family},
            distributions={"optimizer": dist},
            user_attrs={PREDICTED_ATTR: family} if predicted else {},
        )
    )


@pytest.fixture
def study(tmp_path):
    return optuna.create_study(study_name="alloc", storage=f"sqlite:///{tmp_path / 'alloc.db'}")


def test_nothing_is_allocated_before_every_family_had_its_predicted_point(study):
    add(study, "adamw", 1.0, predicted=True)
    add(study, "lion", 0.5, predicted=True)
    assert next_family(study.get_trials(), FAMILIES, minimize=True) is None  # sgd's prediction not run yet
    notices = []
    enqueue_allocated(study, FAMILIES, True, set(), notices.append, {})
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE"] and not notices
    add(study, "sgd", 2.0, predicted=True, state="RUNNING")
    assert next_family(study.get_trials(), FAMILIES, minimize=True) is None  # still running: not judged yet


def test_a_family_within_the_seed_spread_keeps_getting_trials(study):
    add(study, "adamw", 1.0, predicted=True)
    add(study, "lion", 1.0 + SEED_SPREAD / 2, predicted=True)  # inside the spread
    add(study, "sgd", 1.0 + 2 * SEED_SPREAD, predicted=True)  # behind by more than it
    family, dropped = next_family(study.get_trials(), FAMILIES, minimize=True)
    assert set(dropped) == {"sgd"} and family in ("adamw", "lion")
    chosen = []
    for _ in range(6):
        family, _ = next_family(study.get_trials(), FAMILIES, minimize=True)
        chosen.append(family)
        add(study, family, 1.1)  # no better: the standings stay
    assert chosen.count("adamw") == 4 and chosen.count("lion") == 2  # the leader gets twice the trials


def test_maximize_and_families_without_a_complete_trial(study):
    add(study, "adamw", 0.8, predicted=True)
    add(study, "lion", 0.9, predicted=True)
    add(study, "sgd", None, predicted=True, state="PRUNED")
    family, dropped = next_family(study.get_trials(), FAMILIES, minimize=False)
    assert family == "lion" and set(dropped) == {"adamw", "sgd"}
    assert dropped["sgd"] == "no complete trial"


def test_drops_are_recorded_and_announced_once_naming_the_users_families(study):
    for family, value in zip(FAMILIES, (1.0, 1.5, 1.02), strict=True):
        add(study, family, value, predicted=True)
    notices = []
    enqueue_allocated(study, FAMILIES, True, {"lion"}, notices.append, {})
    waiting = [t for t in study.get_trials() if t.state.name == "WAITING"]
    assert len(waiting) == 1 and origin_of(waiting[0]).kind == "allocation"
    assert notices == [
        "no more trials for lion (named in --optimizers): best 1.5 against adamw's 1, behind by more than the "
        f"{SEED_SPREAD:.0%} seed spread."
    ]
    assert set(study.user_attrs[DROPPED_ATTR]) == {"lion"}
    enqueue_allocated(study, FAMILIES, True, {"lion"}, notices.append, {})  # a trial waits: nothing more queued
    assert len(notices) == 1 and sum(t.state.name == "WAITING" for t in study.get_trials()) == 1


@pytest.mark.slow
def test_search_runs_every_prediction_before_allocating(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ["search", str(TINY), "--storage", url, "--trials", "7", "--max-steps", "30", "--evaluations", "2"]
    result = CliRunner().invoke(main, [*args, "--optimizers", ",".join(FAMILIES), "--prior", "none"])
    assert result.exit_code == 0, result.output
    trials = sorted(optuna.load_study(study_name="tiny_regression", storage=url).get_trials(), key=lambda t: t.number)
    assert [t.user_attrs.get(PREDICTED_ATTR) for t in trials[:3]] == FAMILIES
    kinds = [(t.user_attrs.get(ORIGIN_ATTR) or {}).get("kind") for t in trials[3:]]
    assert kinds == ["allocation"] * 4
    study = optuna.load_study(study_name="tiny_regression", storage=url)
    for family in study.user_attrs.get(DROPPED_ATTR, {}):
        assert f"no more trials for {family} (named in --optimizers)" in " ".join(result.output.split())


def test_allocated_trials_search_the_lr_around_the_familys_best(study):
    """The best trial's parameters with its LR x2, /2, x4, ... (untried, in range), then TPE alone."""
    lr_range = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    dists = {"optimizer": optuna.distributions.CategoricalDistribution(FAMILIES), "adamw.lr": lr_range}
    for lr, value in ((1e-2, 1.0), (3e-3, 1.2)):
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                value=value,
                params={"optimizer": "adamw", "adamw.lr": lr},
                distributions=dists,
            )
        )
    params = {"adamw.lr": FloatRange(1e-4, 1e-1, log=True)}
    points = []
    for _ in range(len(LR_STEPS) + 1):
        point = refined_point(study.get_trials(), "adamw", True, params)
        points.append(point.get("adamw.lr"))
        if "adamw.lr" in point:
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.COMPLETE, value=1.1, params=point, distributions=dists
                )
            )
    # x2, /2, x4; /4 = 2.5e-3 is within 26% of the tried 3e-3, so skipped; x1.4, /1.4; then TPE
    expected = [2e-2, 5e-3, 4e-2, 1.4e-2, 7e-3]
    assert points[:5] == pytest.approx(expected, rel=1e-9) and points[5:] == [None, None]
