"""Rung budgets and comparison sets (issue #9), on real Optuna studies in a real SQLite file."""

from __future__ import annotations

import optuna
import pytest

from tunekit.errors import BadInput
from tunekit.study.records import RECIPE_ATTR
from tunekit.study.rungs import END_OF_RUN, Fidelity, phase_set, rung_budgets, rung_set
from tunekit.study.sampling import make_pruner

MAX_STEPS = 200
X = optuna.distributions.FloatDistribution(0.0, 1.0)


def recipe(schedule: str, **params) -> dict:
    return {
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "schedule": {"name": schedule, **params},
        "training": {"max_steps": MAX_STEPS},
    }


@pytest.mark.parametrize(
    ("max_steps", "min_steps", "eta", "rungs"),
    [
        (200, 22, 3, [22, 66]),
        (200, 20, 3, [22, 66]),
        (100, 10, 3, [11, 33]),
        (200, 200, 3, []),
        (81, 1, 3, [1, 3, 9, 27]),
    ],
)
def test_rungs_are_max_steps_over_powers_of_eta_down_to_min_steps(max_steps, min_steps, eta, rungs):
    assert rung_budgets(max_steps, min_steps, eta) == rungs
    assert all(b >= min_steps for b in rungs)


def test_fidelity_defaults_and_bad_input():
    assert Fidelity.parse(None, None, None, 200) == Fidelity("full", None, 3)
    assert Fidelity.parse("sh", None, None, 200).rungs(200) == [66]  # min-steps max_steps / eta: one rung
    assert Fidelity.parse("sh", 22, None, 200).rungs(200) == [22, 66]
    assert Fidelity.from_dict({}) == Fidelity()  # a study from before issue #9
    compressed = Fidelity.parse("sh", None, None, 200, "compressed")
    assert compressed.compressed and Fidelity.from_dict(compressed.to_dict()) == compressed
    # an sh study stored before --budget-bound keeps the rule it ran with
    assert Fidelity.from_dict({"mode": "sh", "min_steps": 66, "eta": 3}).budget_bound == "own-schedule"
    for args, words in [
        (("hyperband", None, None), "--fidelity hyperband is not a fidelity"),
        (("sh", 300, None), "--min-steps 300 is outside 1..200"),
        (("sh", None, 1), "--eta 1"),
        (("sh", None, None, "squeezed"), "--budget-bound squeezed is not a rule"),
        ((None, None, None, "compressed"), "add --fidelity sh"),
    ]:
        with pytest.raises(BadInput, match=words):
            Fidelity.parse(*args[:3], 200, *args[3:])


def test_comparison_sets():
    assert rung_set(recipe("wsd"), False) == rung_set(recipe("constant"), False) == rung_set(recipe("none"), False)
    assert rung_set(recipe("wsd"), False) == END_OF_RUN
    assert rung_set(recipe("cosine"), False) == "cosine"
    assert rung_set(recipe("wsd"), True) == "wsd"  # manual optimization: no branch, so budget-bound
    # --budget-bound compressed: a budget-bound rung value ends a compressed run, so it joins the rest
    assert rung_set(recipe("cosine"), False, compressed=True) == rung_set(recipe("wsd"), True, True) == END_OF_RUN
    # At 75% of the budget a 0.2 decay has not started, a 0.3 one has; cosine is decaying.
    assert phase_set(recipe("wsd", decay_fraction=0.2), 150, MAX_STEPS) == "wsd trials at peak LR"
    assert phase_set(recipe("wsd", decay_fraction=0.3), 150, MAX_STEPS) == "wsd trials decaying"
    assert phase_set(recipe("cosine"), 150, MAX_STEPS) == "cosine trials decaying"


def finished(study: optuna.Study, schedule: str, values: dict[int, float]) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5},
            distributions={"x": X},
            value=values[max(values)],
            intermediate_values=values,
            user_attrs={RECIPE_ATTR: recipe(schedule)},
        )
    )


def judged(study: optuna.Study, schedule: str, step: int, value: float) -> bool:
    trial = study.ask({"x": X})
    trial.set_user_attr(RECIPE_ATTR, recipe(schedule))
    trial.report(value, step)
    verdict = trial.should_prune()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return verdict


def test_full_fidelity_never_prunes_wsd_mid_run_against_decayed_cosine(tmp_path):
    """Issue #9: at 75% of the budget WSD is at peak LR; cosine has decayed. Each is judged on its own."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'full.db'}", study_name="full")
    study.pruner = make_pruner(MAX_STEPS)
    for i in range(6):
        finished(study, "cosine", {150: 0.2 + 0.01 * i, 200: 0.15 + 0.01 * i})
    assert not judged(study, "wsd", 150, 0.9)  # worse than every cosine, but no wsd to compare with
    assert judged(study, "cosine", 150, 0.9)  # a cosine that bad is pruned among cosines
    assert study.pruner.last.set_name == "cosine trials decaying" and study.pruner.last.values == 7


def test_rungs_compare_end_of_run_values_together_and_budget_bound_ones_by_schedule(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'sh.db'}", study_name="sh")
    study.pruner = make_pruner(MAX_STEPS, Fidelity("sh", 22, 3, "own-schedule"))
    for value in (0.30, 0.33, 0.36):  # end-of-run values at rung 22
        assert judged(study, "wsd", 22, value) is (value != 0.30)
    # ASHA alone stops a 0.31 here (the best 1/3 of four values is 0.30); within the 5% seed spread it goes on
    assert not judged(study, "wsd", 22, 0.31)
    assert judged(study, "constant", 22, 0.5)  # judged among wsd, constant, schedule-free
    assert study.pruner.last.set_name == END_OF_RUN and study.pruner.last.values == 5
    assert not judged(study, "cosine", 22, 0.9)  # the first cosine: nothing of its own to lose to
    assert judged(study, "cosine", 22, 1.0)
    assert study.pruner.last.set_name == "cosine" and study.pruner.last.values == 2
    # --budget-bound compressed (the default): a compressed cosine run's value is judged with the rest
    study.pruner = make_pruner(MAX_STEPS, Fidelity.parse("sh", 22, None, MAX_STEPS))
    assert judged(study, "cosine", 22, 0.9)
    assert study.pruner.last.set_name == END_OF_RUN and study.pruner.last.values == 8  # the earlier cosines too
