"""Build a recipe's optimizer, parameter groups and per-step LR scheduler for a model.

``create_optimizer(model, recipe)`` is the one factory (in the manner of timm's
``create_optimizer_v2``): every trial, ``tunekit train``, ``UseRecipe`` and the benchmarks build
optimizers through it, so a family's grouping rule, fixed arguments, aliases and budget-derived
arguments are applied in one place.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from tunekit.recipes import Recipe
from tunekit.search_spaces.catalog import get_family, warmup_steps
from tunekit.search_spaces.families import OptimizerFamily
from tunekit.training.lr_scheduler import build_lr_scheduler
from tunekit.training.param_groups import group_parameters


def optimizer_class(family: OptimizerFamily) -> Callable:
    """The class named by ``family.implementation``, imported now."""
    module, _, attr = family.implementation.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def instantiate(
    family: OptimizerFamily, param_groups: list[dict], hparams: Mapping[str, Any], max_steps: int | None = None
) -> Any:
    """Instantiate ``family``'s optimizer over ``param_groups`` (already split by its grouping rule).

    Args:
        hparams: resolved hyperparameters (``family.resolve``), plus ``warmup_steps`` for schedule-free.
        max_steps: the trial's optimizer-step budget; required by families with ``budget_fractions``.

    Raises:
        ValueError: the family needs the step budget and ``max_steps`` is missing.
    """
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
    kwargs.update({arg: alias.factor * kwargs[alias.source] for arg, alias in family.aliases.items()})
    if family.needs_budget and max_steps is None:
        derived = [*family.budget_fractions, *family.budget_half_lives.values()]
        raise ValueError(f"optimizer '{family.name}' sets {', '.join(derived)} from the step budget: pass max_steps")
    kwargs.update({arg: max(1, round(f * max_steps)) for arg, f in family.budget_fractions.items()})
    for hp, beta in family.budget_half_lives.items():
        fraction = kwargs.pop(hp)
        if fraction is not None:
            betas, index = list(kwargs["betas"]), int(beta[-1]) - 1
            betas[index] = max(0.5 ** (1.0 / (fraction * max_steps)), betas[0])
            kwargs["betas"] = tuple(betas)
    return optimizer_class(family)(param_groups, **kwargs, **family.fixed)


def create_optimizer(model: Any, recipe: Recipe) -> Any:
    """The recipe's optimizer over ``model``'s parameters, grouped by the family's rule."""
    family = get_family(recipe.optimizer.name)
    hparams = dict(recipe.optimizer.hparams)
    max_steps = recipe.training.max_steps
    if family.schedule_free:
        # The optimizer owns warmup: its length comes from the schedule's warmup fraction.
        hparams["warmup_steps"] = warmup_steps(recipe.schedule.to_dict(), max_steps)
    groups = group_parameters(family.grouping, model, hparams)
    return instantiate(family, groups, hparams, max_steps=max_steps)


def configure_optimizers(model: Any, recipe: Recipe) -> dict:
    """Lightning's ``configure_optimizers`` return value for ``recipe``.

    The scheduler is stepped every optimizer step (``interval: "step"``): Lightning's default
    interval is "epoch", which silently turns a step-based schedule into a per-epoch one.

    Manual optimization (``model.automatic_optimization = False``, issue #15): Lightning steps no
    scheduler then, so the schedule is stepped by a step post-hook on the torch optimizer itself and
    is not returned to Lightning (``self.lr_schedulers()`` is None, so a script that steps its own
    scheduler cannot step ours twice). The hook sits on the torch optimizer rather than on
    Lightning's ``LightningOptimizer`` wrapper because every real update goes through it: the
    wrapper's ``step``, precision plugins' closures, and a script that calls the inner optimizer.
    """
    optimizer = create_optimizer(model, recipe)
    scheduler = build_lr_scheduler(optimizer, recipe.schedule.to_dict(), recipe.training.max_steps)
    if scheduler is not None and not getattr(model, "automatic_optimization", True):
        optimizer.register_step_post_hook(lambda *_: scheduler.step())
        return {"optimizer": optimizer}
    if scheduler is None:
        return {"optimizer": optimizer}
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
