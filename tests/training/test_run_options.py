"""Device options (issue #11): validated against Lightning's own names, stored in recipes."""

from __future__ import annotations

import pytest

from tunekit.errors import BadInput
from tunekit.recipes import Recipe
from tunekit.training.fit import RunOptions, check_multi_device


def test_precision_aliases_become_lightnings_full_names():
    assert RunOptions.parse(precision="32").precision == "32-true"
    assert RunOptions.parse(precision="bf16").precision == "bf16-mixed"
    assert RunOptions.parse(precision=64).precision == "64-true"
    assert RunOptions.parse(precision="16-mixed").precision == "16-mixed"
    assert RunOptions.parse(precision=None) == RunOptions()


def test_unknown_precision_and_strategy_are_one_sentence():
    with pytest.raises(BadInput, match=r"^--precision fp8 is not a Lightning precision; use one of .*bf16-mixed"):
        RunOptions.parse(precision="fp8")
    with pytest.raises(BadInput, match=r"^--strategy dpp is not a Lightning strategy; use one of auto, ddp"):
        RunOptions.parse(strategy="dpp")
    with pytest.raises(BadInput, match="--strategy ddp_spawn starts processes tunekit cannot give a trial to"):
        RunOptions.parse(strategy="ddp_spawn")
    with pytest.raises(BadInput, match="--devices must be a whole number of at least 1"):
        RunOptions.parse(devices=0)


def test_stored_options_overridden_only_where_given():
    stored = RunOptions.from_dict({"accelerator": "cpu", "devices": 1, "strategy": "ddp", "precision": "64-true"})
    typed = RunOptions.parse(accelerator="gpu", strategy="fsdp")
    merged = stored.overridden(typed, {"strategy"})
    assert merged == RunOptions("cpu", 1, "fsdp", "64-true")
    assert RunOptions.from_dict({}) == RunOptions()  # a study stored before issue #11


def test_multi_device_trials_take_the_strategies_tunekit_can_launch():
    check_multi_device(RunOptions(devices=2, strategy="ddp"))
    check_multi_device(RunOptions(accelerator="gpu", devices=2, strategy="fsdp"))
    check_multi_device(RunOptions(devices=1, strategy="single_device"))
    with pytest.raises(BadInput, match="^--strategy single_device cannot run a trial over --devices 2; use"):
        check_multi_device(RunOptions(devices=2, strategy="single_device"))
    with pytest.raises(BadInput, match="^--strategy fsdp needs GPUs; use --strategy ddp with --accelerator cpu"):
        check_multi_device(RunOptions(accelerator="cpu", devices=2, strategy="fsdp"))


RECIPE = {
    "tunekit_recipe": 1,
    "optimizer": {"name": "adamw", "lr": 1e-3},
    "schedule": {"name": "cosine"},
    "training": {"max_steps": 10, "batch_size": 64},
}


def test_recipe_states_devices_and_batch_sizes_and_reads_them_back():
    recipe = RunOptions(devices=2, strategy="ddp", precision="bf16-mixed").stamp(Recipe.from_dict(RECIPE))
    recipe = recipe.with_training(accumulate_grad_batches=2)
    training = recipe.to_dict()["training"]
    assert training["devices"] == 2 and training["strategy"] == "ddp" and training["precision"] == "bf16-mixed"
    assert training["batch_size_per_device"] == 32 and training["global_batch_size"] == 128
    again = Recipe.from_dict(recipe.to_dict())
    assert again == recipe
    assert RunOptions.of_recipe(again.training, "cpu") == RunOptions("cpu", 2, "ddp", "bf16-mixed")


def test_one_device_recipe_reads_as_before_issue_11():
    recipe = Recipe.from_dict(RECIPE)
    assert recipe.to_dict()["training"] == {
        "max_steps": 10,
        "batch_size": 64,
        "gradient_clip_val": None,
        "seed": 0,
        "evaluations": 4,
        "accumulate_grad_batches": 1,
    }
    assert (recipe.training.devices, recipe.training.strategy, recipe.training.precision) == (1, "auto", "32-true")


def test_inconsistent_batch_fields_are_refused():
    bad = {**RECIPE, "training": {"max_steps": 10, "batch_size": 64, "devices": 2, "global_batch_size": 100}}
    with pytest.raises(BadInput, match="training.global_batch_size is 100, but .* give 64"):
        Recipe.from_dict(bad)
    uneven = {**RECIPE, "training": {"max_steps": 10, "batch_size": 63, "devices": 2}}
    with pytest.raises(BadInput, match="training.batch_size 63 does not split evenly over 2 devices"):
        Recipe.from_dict(uneven)
