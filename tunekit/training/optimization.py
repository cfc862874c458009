"""Build a recipe's optimizer, parameter groups and per-step LR scheduler for a model."""

from __future__ import annotations

from typing import Any

from tunekit.search_spaces.optimizers import get_family
from tunekit.search_spaces.param_groups import group_parameters
from tunekit.search_spaces.schedules import build_lr_scheduler, warmup_steps


def build_optimizer(recipe: Any, model: Any) -> Any:
    """The recipe's optimizer over ``model``'s parameters, grouped by the family's rule."""
    family = get_family(recipe.optimizer["name"])
    hparams = {k: v for k, v in recipe.optimizer.items() if k != "name"}
    if family.schedule_free:
        # The optimizer owns warmup: its length comes from the schedule's warmup fraction.
        hparams["warmup_steps"] = warmup_steps(recipe.schedule, recipe.training["max_steps"])
    groups = group_parameters(family.grouping, model, hparams)
    return family.create(groups, hparams, max_steps=recipe.training["max_steps"])


def configure_optimizers(recipe: Any, model: Any) -> dict:
    """Lightning's ``configure_optimizers`` return value for ``recipe``.

    The scheduler is stepped every optimizer step (``interval: "step"``): Lightning's default
    interval is "epoch", which silently turns a step-based schedule into a per-epoch one.
    """
    optimizer = build_optimizer(recipe, model)
    scheduler = build_lr_scheduler(optimizer, recipe.schedule, recipe.training["max_steps"])
    if scheduler is None:
        return {"optimizer": optimizer}
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
