"""Recipes: versioned, validated against the registries, floats that read back as floats, no code."""

from __future__ import annotations

import pytest
import yaml

from tunekit.errors import BadInput
from tunekit.recipes import Recipe, load_recipe

GOOD = {
    "tunekit_recipe": 1,
    "optimizer": {"name": "adamw", "lr": 3e-5, "betas": [0.9, 0.95], "weight_decay": 0.1},
    "schedule": {"name": "wsd", "warmup_fraction": 0.05, "decay_fraction": 0.2, "decay_shape": "1-sqrt"},
    "training": {"max_steps": 100, "batch_size": 64, "gradient_clip_val": 1.0, "seed": 0},
}


def test_round_trip_fills_defaults_and_keeps_floats(tmp_path):
    recipe = Recipe.from_dict(GOOD)
    assert recipe.optimizer.hparams["eps"] == 1e-8  # default filled in, so the recipe survives default changes
    path = tmp_path / "r.yaml"
    path.write_text(recipe.to_yaml(header="a comment"))
    text = path.read_text()
    assert text.startswith("# a comment\n")
    data = yaml.safe_load(text)
    assert isinstance(data["optimizer"]["lr"], float) and data["optimizer"]["lr"] == 3e-5
    assert isinstance(data["optimizer"]["eps"], float)
    assert load_recipe(path).to_dict() == recipe.to_dict()


def _with(section: str, **changes):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data[section].update(changes)
    return data


@pytest.mark.parametrize(
    "data, message",
    [
        ({**GOOD, "tunekit_recipe": 2}, "has tunekit_recipe: 2; this tunekit reads version 1"),
        ({k: v for k, v in GOOD.items() if k != "training"}, "is missing the 'training' section"),
        (_with("training", max_steps="100"), "training.max_steps must be int, got '100'"),
        (_with("training", max_steps=0), "training.max_steps must be at least 1"),
        (_with("training", epochs=3), "training has unknown field(s) ['epochs']"),
        (
            _with("optimizer", name="adamx"),
            "unknown optimizer 'adamx' (did you mean 'adamw'?); choose from: adamw, sgd,",
        ),
        (
            _with("optimizer", momentum=0.9),
            "optimizer 'adamw' has no hyperparameter 'momentum'; valid: betas, eps, lr, weight_decay.",
        ),
        (_with("optimizer", lr="fast"), "optimizer 'adamw': lr must be like its default 0.001, got 'fast'."),
        (_with("schedule", name="schedulefree"), "unknown schedule 'schedulefree'"),
        (
            _with("optimizer", name="schedulefree_adamw", betas=[0.9, 0.999]),
            "cannot use schedule 'wsd'; schedule-free optimizers take schedule 'none'.",
        ),
        ({**GOOD, "optimizer": {"name": "!!python/object:os.system"}}, "unknown optimizer"),
    ],
)
def test_invalid_recipes_name_the_field(data, message):
    with pytest.raises(BadInput) as info:
        Recipe.from_dict(data)
    assert message in str(info.value)


def test_load_recipe_rejects_python_tags_and_bad_yaml(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("tunekit_recipe: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(BadInput, match="is not valid YAML"):
        load_recipe(evil)
    with pytest.raises(BadInput, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")
