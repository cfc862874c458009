"""SearchSpace on its own: the parameters it names, what it samples, its predicted points."""

from __future__ import annotations

import math

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


def _fixed_trial(family: str, lr: float, batch: int, **extra):
    import optuna

    params = {"optimizer": family, f"{family}.lr": lr, "schedule": "cosine", "warmup_fraction": 0.05}
    params.update({"batch_size": batch, "gradient_clip_val": 1.0, **extra})
    return optuna.trial.FixedTrial(params)


def test_batch_sizes_are_compared_at_equal_samples():
    """Issue #10, defect 6. Steps scale as 1/batch (equal samples: Marek et al. 2025 compare batch
    sizes at an equal token budget, arXiv 2507.07101 §4.1); the LR moves by the family's rule,
    sqrt for Adam (Malladi et al. 2022) and linear for SGD (Goyal et al. 2017), and beta2 keeps its
    half-life in samples, beta2^(B/B0) (Marek et al. 2025 §2)."""
    from tunekit.search_spaces.space import SearchSpace, SpaceConfig

    config = SpaceConfig(["adamw", "sgd"], ["cosine"], 1e-3, 100, batch_sizes=[16, 32, 64], default_batch_size=32)
    config.budget_samples = 3200
    space = SearchSpace(config)
    adam_extra = {"adamw.beta1": 0.9, "adamw.beta2": 0.99, "adamw.eps": 1e-8, "adamw.weight_decay": 0.1}
    for batch in (16, 32, 64):
        r = space.sample(_fixed_trial("adamw", 1e-3, batch, **adam_extra))
        assert r.training.max_steps * batch == 100 * 32 and r.training.samples == 3200
        assert r.optimizer.lr == pytest.approx(1e-3 * (batch / 32) ** 0.5)
        b2 = r.optimizer.hparams["betas"][1]
        # Half-life in samples: ln 0.5 / ln beta2 steps of `batch` samples each.
        assert math.log(0.5) / math.log(b2) * batch == pytest.approx(math.log(0.5) / math.log(0.99) * 32)
    sgd = space.sample(_fixed_trial("sgd", 1e-2, 16, **{"sgd.momentum": 0.9, "sgd.weight_decay": 1e-4}))
    assert sgd.training.max_steps == 200 and sgd.optimizer.lr == pytest.approx(1e-2 / 2)


def test_a_study_without_a_default_batch_keeps_equal_steps():
    """Studies stored before issue #10 have no default_batch_size: trials keep the study's steps."""
    from tunekit.search_spaces.space import SearchSpace, SpaceConfig

    space = SearchSpace(SpaceConfig(["sgd"], ["cosine"], 1e-3, 100, batch_sizes=[16, 32, 64]))
    r = space.sample(_fixed_trial("sgd", 1e-2, 64, **{"sgd.momentum": 0.9, "sgd.weight_decay": 1e-4}))
    assert r.training.max_steps == 100 and r.training.samples is None and r.optimizer.lr == 1e-2
    assert "samples" not in r.to_dict()["training"]
