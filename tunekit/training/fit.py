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
from tunekit.training.script import LoadedScript


@dataclass
class FitResult:
    """The metric at the end of training (the objective), and every value on the way."""

    value: float
    history: list[tuple[int, float]]
    steps: int
    seconds: float


@dataclass(frozen=True)
class RunOptions:
    """Where a run trains: stored nowhere yet; ``--accelerator`` of search, resume and train.

    The one place a Trainer's hardware settings come from (issue #11 adds devices, strategy and
    precision here, and stores them in the study and the recipe).
    """

    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"accelerator": self.accelerator, "devices": self.devices, "strategy": self.strategy}


CHECK_OPTIONS = RunOptions(accelerator="cpu")  # the pre-study check is one batch: never worth a GPU


def make_trainer(options: RunOptions, callbacks: list, **settings: Any) -> Any:
    """The one Lightning ``Trainer`` set-up: ``options``' hardware, tunekit's quiet defaults, ``settings``.

    Quiet defaults: no logger, checkpoints, progress bar or model summary (tunekit reports itself).
    """
    import lightning.pytorch as pl

    return pl.Trainer(
        **options.trainer_kwargs(),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        **settings,
    )


def budget_settings(max_steps: int, val_check_interval: int) -> dict[str, Any]:
    """Trainer settings of a step budget with validation every ``val_check_interval`` batches."""
    return {
        "max_steps": max_steps,
        "max_epochs": -1,
        "val_check_interval": val_check_interval,
        "check_val_every_n_epoch": None,  # count validation intervals across epoch boundaries
        "num_sanity_val_steps": 0,
    }


def fit_to_the_end(trainer: Any, model: Any, data: Any, reporter: Any) -> None:
    """Fit, then validate once more if the last validation did not fall on the final step."""
    kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
    trainer.fit(model, **kwargs)
    fit_to_the_end_validation(trainer, model, kwargs, reporter)


def fit_to_the_end_validation(trainer: Any, model: Any, kwargs: dict[str, Any], reporter: Any) -> None:
    """The last validation, when the last one during ``fit`` did not fall on the final step."""
    if not reporter.history or reporter.history[-1][0] != trainer.global_step:
        trainer.validate(model, verbose=False, **kwargs)


def rank_and_world(options: RunOptions) -> tuple[int, int] | None:
    """(rank, world size) when this process is a rank of a multi-device trial, else None.

    The process group is started by ``tunekit.training.ranks`` before any trial, never by Lightning.
    """
    if options.devices == 1:
        return None
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("a multi-device trial runs inside the rank group of tunekit.training.ranks")
    return dist.get_rank(), dist.get_world_size()


def run_fit(
    recipe: Recipe,
    script: LoadedScript,
    metric: str,
    *,
    on_eval: Callable[[int, float], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    options: RunOptions | None = None,
    accelerator: str | None = None,
) -> FitResult:
    """Train ``script``'s module once with ``recipe`` for ``training.max_steps`` optimizer steps.

    The module's own ``configure_optimizers`` is replaced by the recipe's optimizer, parameter
    groups and per-step schedule. Validation runs ``training.evaluations`` times, and once more at
    the end if the last one did not fall on the final step. ``accelerator`` is shorthand for
    ``options=RunOptions(accelerator)``.

    Raises:
        Diverged: the loss or the metric became NaN/inf.
        Interrupted: ``should_stop()`` returned True.
        MetricNotLogged: ``metric`` was never logged.
        Exception: whatever the user's code raised.
    """
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl

    from tunekit.training.callbacks import DivergenceGuard, EvalReporter, Interrupted, ScheduleFreeSwitch, StepHook
    from tunekit.training.use_recipe import UseRecipe

    options = options or RunOptions(accelerator or "auto")
    start = time.perf_counter()
    t = recipe.training
    pl.seed_everything(t.seed, workers=True, verbose=False)
    model = script.build_model()
    data = script.build_data(t.batch_size)

    use_recipe = UseRecipe(recipe)
    use_recipe.install(model)  # before fit: the script need not define configure_optimizers at all
    ranks = rank_and_world(options)
    if ranks is None:
        reporter = EvalReporter(metric, on_eval)
        callbacks: list = [use_recipe, DivergenceGuard(), StepHook(on_step, should_stop), reporter]
        shared: dict[str, Any] = {}
    else:  # one rank of a tunekit-launched DDP trial (training/ranks.py): decisions shared by all ranks
        from tunekit.training.distributed import (
            ReplayRng,
            SharedEvalReporter,
            SharedStepGuard,
            ddp_settings,
            shard_loaders,
        )

        shard_loaders(data if data is not None else model, *ranks)
        reporter = SharedEvalReporter(metric, on_eval)
        guard = SharedStepGuard(should_stop, Interrupted)
        callbacks = [ReplayRng(), use_recipe, guard, StepHook(on_step, None), reporter]
        shared = ddp_settings()
    if recipe.schedule_free:
        callbacks.append(ScheduleFreeSwitch())
    trainer = make_trainer(
        options,
        callbacks,
        **budget_settings(t.max_steps, t.validation_interval),
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val or None,
        **shared,
    )
    if ranks is None:
        fit_to_the_end(trainer, model, data, reporter)
    else:
        kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
        trainer.fit(model, **kwargs)
        stop = guard.stop or reporter.stop
        if stop is not None:
            raise stop  # on every rank, after the same step
        fit_to_the_end_validation(trainer, model, kwargs, reporter)
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
    from tunekit.training.callbacks import MetricNotLogged
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl
    import torch

    pl.seed_everything(0, verbose=False)
    model, data = script.probe(batch_size)  # the instances the prior measured: built once
    # The script's own configure_optimizers is replaced in every trial, so it is not checked here.
    model.configure_optimizers = types.MethodType(lambda m: torch.optim.AdamW(m.parameters()), model)
    trainer = make_trainer(CHECK_OPTIONS, [], fast_dev_run=1)
    kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
    try:
        trainer.fit(model, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's training or validation code
        raise BadInput(f"a one-step check of the script failed: {type(exc).__name__}: {exc}; fix the script.") from None
    if metric not in trainer.callback_metrics:
        raise MetricNotLogged.of(metric, trainer.callback_metrics)
