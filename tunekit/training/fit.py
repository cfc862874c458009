"""One training run of a user's Lightning module with a recipe: the body of every trial and of ``tunekit train``.

The same function serves search and ``train``, so a recipe reproduces its trial: same seed, same
validation points (creating a DataLoader iterator draws from the global RNG, so validating at other
points would change the data order).
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunekit.recipes import Recipe
from tunekit.search_spaces.optimizers import get_family
from tunekit.training.script import LoadedScript


@dataclass
class FitResult:
    """The metric at the end of training (the objective), and every value on the way."""

    value: float
    history: list[tuple[int, float]]
    steps: int
    seconds: float


def validation_interval(recipe: Recipe) -> int:
    """Training batches between validations: ``evaluations`` evenly spaced points of the budget."""
    t = recipe.training
    return max(1, t["max_steps"] // t["evaluations"]) * t["accumulate_grad_batches"]


def run_fit(
    recipe: Recipe,
    script: LoadedScript,
    metric: str,
    *,
    on_eval: Callable[[int, float], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    accelerator: str = "auto",
) -> FitResult:
    """Train ``script``'s module once with ``recipe`` for ``training.max_steps`` optimizer steps.

    The module's own ``configure_optimizers`` is replaced by the recipe's optimizer, parameter
    groups and per-step schedule. Validation runs ``training.evaluations`` times, and once more at
    the end if the last one did not fall on the final step.

    Raises:
        Diverged: the loss or the metric became NaN/inf.
        Interrupted: ``should_stop()`` returned True.
        MetricNotLogged: ``metric`` was never logged.
        Exception: whatever the user's code raised.
    """
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl

    from tunekit.training.callbacks import DivergenceGuard, EvalReporter, ScheduleFreeSwitch, StepHook
    from tunekit.training.use_recipe import UseRecipe

    start = time.perf_counter()
    t = recipe.training
    pl.seed_everything(t["seed"], workers=True, verbose=False)
    model = script.build_model()
    data = script.build_data(t["batch_size"])

    use_recipe = UseRecipe(recipe)
    use_recipe.install(model)  # before fit: the script need not define configure_optimizers at all
    reporter = EvalReporter(metric, on_eval)
    callbacks: list = [use_recipe, DivergenceGuard(), StepHook(on_step, should_stop), reporter]
    if get_family(recipe.optimizer["name"]).schedule_free:
        callbacks.append(ScheduleFreeSwitch())
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=t["max_steps"],
        max_epochs=-1,
        val_check_interval=validation_interval(recipe),
        check_val_every_n_epoch=None,  # count validation intervals across epoch boundaries
        accumulate_grad_batches=t["accumulate_grad_batches"],
        gradient_clip_val=t["gradient_clip_val"] or None,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    fit_kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
    trainer.fit(model, **fit_kwargs)
    if not reporter.history or reporter.history[-1][0] != trainer.global_step:
        trainer.validate(model, verbose=False, **fit_kwargs)
    return FitResult(
        value=reporter.history[-1][1],
        history=list(reporter.history),
        steps=trainer.global_step,
        seconds=time.perf_counter() - start,
    )


def check_script(script: LoadedScript, metric: str, batch_size: int | None) -> None:
    """Run one training and one validation batch (Lightning's ``fast_dev_run``) before a study starts.

    Catches a broken ``training_step``/``validation_step`` or a metric that is never logged while
    the study database is still untouched.

    Raises:
        BadInput: the script fails the check; the message names the error and the fix.
    """
    from tunekit.errors import BadInput
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl
    import torch

    pl.seed_everything(0, verbose=False)
    model = script.build_model()
    data = script.build_data(batch_size)
    # The script's own configure_optimizers is replaced in every trial, so it is not checked here.
    model.configure_optimizers = types.MethodType(lambda m: torch.optim.AdamW(m.parameters()), model)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        fast_dev_run=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
    try:
        trainer.fit(model, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's training or validation code
        raise BadInput(f"a one-step check of the script failed: {type(exc).__name__}: {exc}; fix the script.") from None
    if metric not in trainer.callback_metrics:
        logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
        raise BadInput(
            f"the metric '{metric}' is never logged (logged: {logged}); log it with "
            f"self.log('{metric}', ...) in validation_step, or pass --metric NAME."
        )
