"""A run from a WSD trial's stable-phase checkpoint (WSD-S, issue #9; see ``training.stable_phase``):
``tunekit train --max-steps N``, and a ``search --from-study`` trial."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunekit.recipes import Recipe
from tunekit.training.fit import FitResult, RunOptions, fit_to_the_end_validation, trial_callbacks, trial_trainer
from tunekit.training.rung_plan import RungPlan
from tunekit.training.script import LoadedScript
from tunekit.training.stable_phase import Rebudget


def continue_stable_phase(
    recipe: Recipe,
    script: LoadedScript,
    metric: str,
    checkpoint: str | Path,
    from_step: int,
    options: RunOptions,
    *,
    on_eval: Callable[[int, float], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    rungs: RungPlan | None = None,
) -> FitResult:
    """Train ``recipe`` (its ``max_steps`` the new budget) from a stable-phase ``checkpoint`` of step
    ``from_step``, on one device; the callbacks as in ``fit.run_fit`` (steps are the run's global
    steps). ``FitResult.steps`` counts the steps trained here only."""
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl

    start = time.perf_counter()
    pl.seed_everything(recipe.training.seed, workers=True, verbose=False)
    model = script.build_model()
    data = script.build_data(recipe.training.batch_size)
    callbacks, reporter = trial_callbacks(recipe, metric, on_eval, on_step, should_stop, rungs)
    trainer = trial_trainer(recipe, model, options, [*callbacks, Rebudget(recipe.training.max_steps)])
    kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
    trainer.fit(model, ckpt_path=str(checkpoint), **kwargs)
    fit_to_the_end_validation(trainer, model, kwargs, reporter)
    return FitResult(
        value=reporter.history[-1][1],
        history=list(reporter.history),
        steps=trainer.global_step - from_step,
        seconds=time.perf_counter() - start,
    )
