"""``UseRecipe``: a Lightning callback that trains a module with a tunekit recipe.

The one place where a recipe replaces a module's ``configure_optimizers``: used by every trial,
by ``tunekit train``, and by users' own Trainers or LightningCLI configs
(``tunekit export --format lightning``), so all of them build the same optimizer, parameter groups
and per-step schedule.
"""

from __future__ import annotations

import types
from pathlib import Path

import lightning.pytorch as pl

from tunekit.recipes import Recipe, load_recipe
from tunekit.training.optimization import configure_optimizers


class UseRecipe(pl.Callback):
    """Replace the module's ``configure_optimizers`` with the recipe's before optimizers are built.

    Args:
        recipe: a ``Recipe``, or its dict form (as written in a LightningCLI config).

    For schedule-free families, also add ``ScheduleFreeSwitch`` to the Trainer's callbacks.
    The Trainer's ``max_steps`` should equal ``recipe.training.max_steps``: schedules are
    fractions of that budget.
    """

    def __init__(self, recipe: Recipe | dict):
        self.recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_dict(recipe)

    @staticmethod
    def configure_optimizers(module: pl.LightningModule, recipe: Recipe | str | Path) -> dict:
        """The recipe's optimizers for ``module``, from a user's own ``configure_optimizers``:
        ``return UseRecipe.configure_optimizers(self, "recipe.yaml")``."""
        return configure_optimizers(module, recipe if isinstance(recipe, Recipe) else load_recipe(recipe))

    @classmethod
    def from_file(cls, path: str | Path) -> UseRecipe:
        return cls(load_recipe(path))

    def install(self, module: pl.LightningModule) -> None:
        """Give ``module`` the recipe's ``configure_optimizers``.

        ``setup`` does this for a Trainer's run, but Lightning checks that a module has a
        ``configure_optimizers`` before any callback hook runs; call this first for a module that
        defines none.
        """
        recipe = self.recipe
        module.configure_optimizers = types.MethodType(lambda m: configure_optimizers(m, recipe), module)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.install(pl_module)
