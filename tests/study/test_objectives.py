"""search --also's two objectives, read and pruned (issue #12), on real in-memory Optuna studies."""

from __future__ import annotations

import math
import random

import optuna
import pytest

from tunekit.errors import BadInput
from tunekit.study.objectives import (
    check_also,
    cost_value,
    directions,
    metric_value,
    pareto_front,
    should_prune_first_objective,
)
from tunekit.study.records import CURVE_ATTR, best_of, curve_of, ranked
from tunekit.study.sampling import make_pruner

MAX_STEPS = 100
STEPS = (25, 50, 75, 100)
X = optuna.distributions.FloatDistribution(0.0, 1.0)


def curve(rng: random.Random) -> dict[int, float]:
    level = rng.uniform(0.1, 2.0)
    return {s: level * (1.5 - s / MAX_STEPS) + rng.gauss(0, 0.05) for s in STEPS}


def studies(n: int, seed: int):
    """The same finished trials as a one-objective study (values reported to Optuna) and a
    two-objective one (values in CURVE_ATTR, as tunekit writes them with --also)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = random.Random(seed)
    single = optuna.create_study(direction="minimize")
    multi = optuna.create_study(directions=directions("minimize", "seconds"))
    for _ in range(n):
        c, x = curve(rng), rng.random()
        single.add_trial(
            optuna.trial.create_trial(params={"x": x}, distributions={"x": X}, value=c[100], intermediate_values=c)
        )
        multi.add_trial(
            optuna.trial.create_trial(
                params={"x": x}, distributions={"x": X}, values=[c[100], rng.uniform(1, 5)], user_attrs={CURVE_ATTR: c}
            )
        )
    return single, multi


@pytest.mark.parametrize("seed", range(6))
def test_first_objective_pruning_decides_as_optunas_percentile_pruner(seed: int):
    single, multi = studies(8, seed)
    pruner = make_pruner(MAX_STEPS)
    rng = random.Random(100 + seed)
    decisions = []
    for _ in range(10):
        c = curve(rng)
        for step in STEPS[:-1]:
            live = single.ask()
            for s in [s for s in STEPS if s <= step]:
                live.report(c[s], s)
            expected = pruner.prune(single, single.trials[live.number])
            single.tell(live, state=optuna.trial.TrialState.FAIL)
            seen = [c[s] for s in STEPS if s <= step]
            assert should_prune_first_objective(multi, step, seen, MAX_STEPS) == expected
            decisions.append(expected)
    assert any(decisions) and not all(decisions)  # both outcomes were compared


def test_no_pruning_before_the_warmup_or_the_startup_trials():
    _, multi = studies(3, 0)  # fewer complete trials than PRUNE_STARTUP_TRIALS
    assert not should_prune_first_objective(multi, 75, [1e9], MAX_STEPS)
    _, multi = studies(8, 0)
    assert not should_prune_first_objective(multi, 25, [1e9], MAX_STEPS)  # before max_steps // 2
    assert should_prune_first_objective(multi, 75, [1e9], MAX_STEPS)
    assert should_prune_first_objective(multi, 75, [math.nan], MAX_STEPS)


def test_readers_rank_on_the_metric_and_the_front_is_optunas():
    _, multi = studies(12, 1)
    trials = multi.get_trials()
    assert [metric_value(t) for t in ranked(trials, minimize=True)] == sorted(t.values[0] for t in trials)
    assert best_of(trials, minimize=True).values[0] == min(t.values[0] for t in trials)
    assert cost_value(trials[0]) == trials[0].values[1] and curve_of(trials[0]) == trials[0].user_attrs[CURVE_ATTR]
    front = pareto_front(multi)
    assert {t.number for t in front} == {t.number for t in multi.best_trials}
    assert [t.values[0] for t in front] == sorted(t.values[0] for t in front)
    for t in trials:  # nothing off the front beats a front member on both objectives
        assert t in front or any(f.values[0] <= t.values[0] and f.values[1] <= t.values[1] for f in front)
    single, _ = studies(3, 1)
    assert pareto_front(single) == [] and cost_value(single.trials[0]) is None


def test_unknown_also_is_one_sentence():
    assert check_also(None) is None and check_also("peak_memory") == "peak_memory"
    with pytest.raises(BadInput, match=r"^--also must be one of seconds, peak_memory, not 'wall'; .*\.$"):
        check_also("wall")
