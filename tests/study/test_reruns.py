"""The robust ranking of show --robust (issue #12), from re-runs stored in a real sibling study."""

from __future__ import annotations

import optuna
import pytest

from tunekit.study.records import RECIPE_ATTR, RERUN_ATTR
from tunekit.study.reruns import done_reruns, rerun_seeds, rerun_study_name, robust_rows

X = optuna.distributions.FloatDistribution(0.0, 1.0)


def recipe(seed: int = 0) -> dict:
    return {"optimizer": {"name": "adamw", "lr": 1e-3}, "schedule": {"name": "cosine"}, "training": {"seed": seed}}


def test_rows_rank_by_the_mean_of_the_reruns_not_the_lucky_trial(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'r.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    for value in (0.10, 0.20):  # trial 0 won by a lucky seed
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": value}, distributions={"x": X}, value=value, user_attrs={RECIPE_ATTR: recipe()}
            )
        )
    assert done_reruns(storage, "s") == {}
    sibling = optuna.create_study(study_name=rerun_study_name("s"), storage=storage)
    reruns = {(0, 1): 0.40, (0, 2): 0.30, (1, 1): 0.21, (1, 2): 0.19, (1, 3): 0.5}
    for (of, seed), value in reruns.items():
        sibling.add_trial(optuna.trial.create_trial(value=value, user_attrs={RERUN_ATTR: {"of": of, "seed": seed}}))
    sibling.add_trial(
        optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={RERUN_ATTR: {"of": 0, "seed": 3}})
    )
    done = done_reruns(storage, "s")
    assert done == reruns  # the failed re-run is not reused
    assert rerun_seeds(recipe(5), 3) == [6, 7, 8]
    rows = robust_rows(study.get_trials(), 2, done, minimize=True)
    assert [r.number for r in rows] == [1, 0]
    assert rows[0].mean == pytest.approx(0.20) and rows[0].spread == pytest.approx(0.01414, rel=1e-3)
    assert rows[1].value == 0.10 and rows[1].reruns == [0.40, 0.30]
    assert [len(r.reruns) for r in robust_rows(study.get_trials(), None, done, minimize=True)] == [3, 2]
    assert [r.number for r in robust_rows(study.get_trials(), 2, done, minimize=False)] == [0, 1]
