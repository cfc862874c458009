"""Rung values from real tiny Lightning fits (issue #9): cooldown branches, and a main run they leave alone."""

from __future__ import annotations

import dataclasses
import statistics

import pytest
import torch
from conftest import TINY

from tunekit.recipes import Recipe
from tunekit.search_spaces.schedules import warmup_count
from tunekit.training.callbacks import Interrupted
from tunekit.training.fit import run_fit
from tunekit.training.rung_plan import RungPlan, fork_step
from tunekit.training.script import ScriptSpec, load_script

MAX_STEPS = 90
RUNGS = [10, 30]
WSD = {"name": "wsd", "warmup_fraction": 0.05, "decay_fraction": 0.2, "decay_shape": "1-sqrt"}


def recipe(schedule: dict, max_steps: int = MAX_STEPS, seed: int = 0, optimizer: str = "adamw") -> Recipe:
    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": {"name": optimizer, "lr": 3e-3},
            "schedule": schedule,
            "training": {"max_steps": max_steps, "batch_size": 16, "seed": seed, "gradient_clip_val": 1.0},
        }
    )


def recording_script():
    """The tiny script, its modules kept in ``built`` (the test reads their final parameters)."""
    loaded = load_script(ScriptSpec(str(TINY)))
    built: list = []

    class Recorded(loaded.model_cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    return dataclasses.replace(loaded, model_cls=Recorded), built


@pytest.mark.parametrize(
    "schedule",
    [WSD, {"name": "cosine"}, {"name": "none"}],
    ids=["wsd-cooldown-branches", "cosine-rung-validations", "schedulefree-anytime"],
)
def test_the_main_run_after_rungs_is_bit_identical_to_a_run_without_them(schedule):
    loaded, built = recording_script()
    optimizer = "schedulefree_adamw" if schedule["name"] == "none" else "adamw"
    plain = run_fit(recipe(schedule, optimizer=optimizer), loaded, "val_loss", accelerator="cpu")
    values: list = []
    plan = RungPlan(RUNGS, values.append)
    forked = run_fit(recipe(schedule, optimizer=optimizer), loaded, "val_loss", accelerator="cpu", rungs=plan)

    assert [v.budget for v in values] == RUNGS
    assert forked.history == plain.history  # every validation of the main run, to the bit
    first, second = (dict(m.state_dict()) for m in built)
    assert all(torch.equal(first[k], second[k]) for k in first)
    if schedule["name"] == "wsd":
        forks = [fork_step(recipe(WSD), b, "cooldown") for b in RUNGS]
        assert [v.fork for v in values] == forks == [8, 24]
        assert plan.branch_steps == sum(b - f for b, f in zip(RUNGS, forks, strict=True))
    else:
        assert [v.fork for v in values] == RUNGS and plan.branch_steps == 0  # no branch: the value at b


def test_a_wsd_branch_gives_the_value_of_a_separate_run_of_that_length():
    """Hägele et al. 2024: a cooldown from the stable phase ends like a run of that length.

    The branch of a 90-step trial at rung 30 is compared with separate 30-step WSD runs with the
    same warmup steps, decay fraction and shape, over seeds: it lies within their seed spread.
    """
    loaded = load_script(ScriptSpec(str(TINY)))
    budget, seeds = 30, range(4)
    warmup = warmup_count(WSD["warmup_fraction"], MAX_STEPS)  # 5 steps
    separate_schedule = {**WSD, "warmup_fraction": warmup / budget}
    assert warmup_count(separate_schedule["warmup_fraction"], budget) == warmup
    separate = [
        run_fit(recipe(separate_schedule, budget, s), loaded, "val_loss", accelerator="cpu").value for s in seeds
    ]
    branched = []
    for seed in seeds:
        values: list = []
        run_fit(recipe(WSD, seed=seed), loaded, "val_loss", accelerator="cpu", rungs=RungPlan([budget], values.append))
        branched.append(values[0].value)
    spread = max(separate) - min(separate)  # measured: 0.39 (0.32 .. 0.71)
    assert spread > 0
    # Each seed's branch lands on its own separate run (measured: within 0.002), far inside the spread.
    assert all(abs(b - s) <= spread / 10 for b, s in zip(branched, separate, strict=True))
    assert abs(statistics.mean(branched) - statistics.mean(separate)) <= spread / 10


def test_a_stop_during_a_branch_raises_interrupted_and_counts_its_steps():
    loaded = load_script(ScriptSpec(str(TINY)))
    plan = RungPlan(RUNGS, lambda value: None, should_stop=lambda: plan.branch_steps >= 1)
    with pytest.raises(Interrupted):
        run_fit(recipe(WSD), loaded, "val_loss", accelerator="cpu", rungs=plan)
    assert plan.branch_steps == 1
