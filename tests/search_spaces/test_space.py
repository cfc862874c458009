"""SearchSpace on its own: the parameters it names, what it samples, its predicted points."""

from __future__ import annotations

import optuna
import pytest

from tunekit.errors import BadInput
from tunekit.recipes import Recipe
from tunekit.search_spaces.space import SearchSpace, SpaceConfig


def space(**kw) -> SearchSpace:
    base = {"optimizers": ["adamw", "schedulefree_adamw"], "schedules": ["wsd", "cosine", "none"]}
    return SearchSpace(SpaceConfig(**{**base, **kw}, centre_lr=1e-3, max_steps=100))


def test_parameters_are_namespaced_and_lr_ranges_centred():
    s = space(batch_sizes=[8, 16, 32])
    assert {"optimizer", "schedule", "adamw.lr", "wsd.decay_fraction", "warmup_fraction", "batch_size"} <= set(s.params)
    lr = s.params["adamw.lr"]
    assert lr.low == pytest.approx(1e-4) and lr.high == pytest.approx(1e-2) and lr.log


def test_samples_are_valid_recipes_of_the_budget():
    s = space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        recipe = s.sample(study.ask())
        assert isinstance(recipe, Recipe) and recipe.training.max_steps == 100
        assert (recipe.schedule.name == "none") == recipe.schedule_free
        assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_predicted_point_is_inside_the_space():
    s = space(batch_sizes=[8, 16, 32])
    point = s.predicted_point(16, "adamw")
    assert point["optimizer"] == "adamw" and point["adamw.lr"] == pytest.approx(1e-3)
    assert point["schedule"] == "wsd" and point["batch_size"] == 16
    assert all(s.params[k].contains(v) for k, v in point.items())
    assert "schedule" not in s.predicted_point(16, "schedulefree_adamw")


def test_overrides_replace_ranges_and_unknown_names_are_refused():
    s = space(overrides={"adamw.lr": {"low": 1e-5, "high": 1e-4, "log": True}})
    assert s.params["adamw.lr"].high == pytest.approx(1e-4)
    with pytest.raises(BadInput, match="unknown parameter"):
        space(overrides={"nope.lr": {"low": 1, "high": 2}})
    with pytest.raises(BadInput, match="no optimizer in --optimizers can use a schedule"):
        space(optimizers=["adamw"], schedules=["none"])
