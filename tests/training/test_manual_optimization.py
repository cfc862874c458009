"""Modules with manual optimization (issue #15): one optimizer, the recipe's, with its schedule per step.

Real Lightning fits of the tiny GAN-style script in tests/scripts/manual_gan.py.
"""

from __future__ import annotations

import json

import pytest
from conftest import SCRIPTS

from tunekit.errors import BadInput
from tunekit.recipes import Recipe
from tunekit.search_spaces.catalog import multiplier
from tunekit.search_spaces.space import SearchSpace, SpaceConfig
from tunekit.training.callbacks import Diverged
from tunekit.training.fit import RunOptions, check_script, run_fit
from tunekit.training.script import ScriptSpec, load_script

GAN = SCRIPTS / "manual_gan.py"
CPU = RunOptions(accelerator="cpu")


def recipe(optimizer: dict, schedule: dict, **training) -> Recipe:
    training = {"max_steps": 12, "batch_size": 16, "evaluations": 2, "manual_optimization": True, **training}
    return Recipe.from_dict({"tunekit_recipe": 1, "optimizer": optimizer, "schedule": schedule, "training": training})


def gan(tmp_path, **args):
    log = tmp_path / "lr.jsonl"
    return load_script(ScriptSpec(str(GAN), model_args={"lr_log": str(log), **args})), log


def records(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_lr_applied_at_each_manual_step_follows_the_schedule(tmp_path):
    script, log = gan(tmp_path)
    r = recipe({"name": "adamw", "lr": 2e-3}, {"name": "cosine", "warmup_fraction": 0.25})
    result = run_fit(r, script, "val_loss", options=CPU)
    assert result.steps == 12
    steps = [rec for rec in records(log) if "lr" in rec]
    assert [rec["step"] for rec in steps] == list(range(12))  # one optimizer step per training_step
    # As in the automatic case (tests/search_spaces/test_schedules.py): optimizer step t runs at base * m(t).
    expected = [2e-3 * multiplier(r.schedule.to_dict(), t, 12) for t in range(12)]
    assert [rec["lr"] for rec in steps] == pytest.approx(expected, abs=1e-15)
    assert steps[0]["lr"] < steps[3]["lr"] > steps[11]["lr"]  # warmup, then decay: the schedule moved


def test_schedule_free_switches_modes_for_a_manual_module(tmp_path):
    script, log = gan(tmp_path)
    r = recipe({"name": "schedulefree_adamw", "lr": 2e-3}, {"name": "none", "warmup_fraction": 0.1})
    run_fit(r, script, "val_loss", options=CPU)
    seen = records(log)
    assert all(rec["train_mode"] is True for rec in seen if "lr" in rec)
    assert [rec["train_mode"] for rec in seen if rec.get("validation")] == [False, False]


def test_divergence_of_a_manual_module_is_caught_before_its_update(tmp_path):
    script, _ = gan(tmp_path, nan_at_step=3)
    with pytest.raises(Diverged, match="diverged at step 3"):
        run_fit(recipe({"name": "adamw"}, {"name": "wsd"}), script, "val_loss", options=CPU)


def test_space_of_a_manual_module_has_no_clipping_and_its_recipes_say_so(tmp_path):
    import optuna

    script, _ = gan(tmp_path)
    assert script.manual_optimization(16) is True
    config = SpaceConfig(["adamw"], ["wsd"], 1e-3, 12, batch_sizes=[16], manual_optimization=True)
    space = SearchSpace(config)
    assert "gradient_clip_val" not in space.params
    sampled = space.sample(optuna.create_study().ask())
    assert sampled.training.gradient_clip_val is None and sampled.training.manual_optimization
    assert sampled.to_dict()["training"]["manual_optimization"] is True
    assert space.first_recipe(16).training.gradient_clip_val is None
    automatic = SearchSpace(SpaceConfig(["adamw"], ["wsd"], 1e-3, 12))
    assert automatic.first_recipe(None).training.gradient_clip_val == 1.0  # the check runs with clipping on
    assert "manual_optimization" not in automatic.first_recipe(None).to_dict()["training"]


def test_clipping_recipe_on_a_manual_module_is_refused_in_one_sentence(tmp_path):
    script, _ = gan(tmp_path)
    r = recipe({"name": "adamw"}, {"name": "wsd"}, manual_optimization=False, gradient_clip_val=1.0)
    with pytest.raises(BadInput, match="TinyGAN optimizes manually and Lightning clips gradients only in automatic"):
        run_fit(r, script, "val_loss", options=CPU)


def test_two_optimizers_are_refused(tmp_path):
    script, _ = gan(tmp_path, optimizers=2)
    with pytest.raises(BadInput) as info:
        script.manual_optimization(16)
    assert str(info.value) == (
        "TinyGAN optimizes manually with 2 optimizers, but a tunekit trial builds one optimizer from its "
        "recipe; use one optimizer over all parameters (self.optimizers() then returns it), or tune each part "
        "in a script of its own."
    )


def test_check_names_tunekit_settings_that_conflict_with_the_script(tmp_path):
    """Lightning refuses accumulation for manual optimization: the script's code did not raise."""
    script, _ = gan(tmp_path)
    r = recipe({"name": "adamw"}, {"name": "wsd"}, accumulate_grad_batches=2)
    with pytest.raises(BadInput) as info:
        check_script(script, "val_loss", r, CPU, 16)
    message = str(info.value)
    assert message.startswith(
        "Lightning refused tunekit's Trainer settings for this script (accelerator=cpu, devices=1"
    )
    assert "accumulate_grad_batches=2" in message and "the script's code did not raise" in message


def test_check_says_the_script_failed_when_its_code_raised(tmp_path):
    script, _ = gan(tmp_path, optimizers=2)  # unpacks two optimizers from the trial's one
    with pytest.raises(BadInput, match=r"^a one-step check of the script failed: TypeError: .*; fix the script\.$"):
        check_script(script, "val_loss", recipe({"name": "adamw"}, {"name": "wsd"}), CPU, 16)
