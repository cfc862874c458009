"""One training run of a user's Lightning module with a recipe: the body of every trial and of ``tunekit train``.

The same function serves search and ``train``, so a recipe reproduces its trial: same seed, same
validation points (creating a DataLoader iterator draws from the global RNG, so validating at other
points would change the data order).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from tunekit.errors import BadInput
from tunekit.recipes import DEFAULT_PRECISION, Recipe
from tunekit.training.rung_plan import RungPlan
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
    """Where and how a run trains: ``--accelerator``, ``--devices``, ``--strategy``, ``--precision``.

    The one place a Trainer's hardware settings come from (issue #11). ``search`` stores them in
    the study (``resume`` reuses them) and every trial's recipe carries ``devices``, ``strategy``
    and ``precision`` in its ``training`` section (``train`` reproduces the trial). Build one from
    user input with ``RunOptions.parse``, which validates; the constructor trusts its values.
    """

    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    precision: str = DEFAULT_PRECISION

    FIELDS: ClassVar[tuple[str, ...]] = ("accelerator", "devices", "strategy", "precision")

    @classmethod
    def parse(cls, **values: Any) -> RunOptions:
        """Validated options from user input (CLI flags, a stored study, a recipe); ``None`` means default.

        Raises:
            BadInput: an unknown precision or strategy, or a device count below 1.
        """
        given = {k: v for k, v in values.items() if v is not None}
        options = cls(**given)
        if isinstance(options.devices, bool) or not isinstance(options.devices, int) or options.devices < 1:
            raise BadInput(f"--devices must be a whole number of at least 1, got {options.devices!r}.")
        return replace(options, precision=lightning_precision(options.precision), strategy=_strategy(options.strategy))

    @classmethod
    def from_dict(cls, data: dict | None) -> RunOptions:
        """Options stored in a study (``to_dict``); a study stored before issue #11 has none: the defaults."""
        return cls.parse(**{k: v for k, v in (data or {}).items() if k in cls.FIELDS})

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def overridden(self, other: RunOptions, given: set[str] | frozenset[str]) -> RunOptions:
        """These options with ``other``'s values of the fields named in ``given`` (what the user typed)."""
        return replace(self, **{name: getattr(other, name) for name in self.FIELDS if name in given})

    @classmethod
    def of_recipe(cls, training: Any, accelerator: str = "auto") -> RunOptions:
        """The options a recipe's trial ran with (``train``): its devices, strategy and precision."""
        return cls.parse(
            accelerator=accelerator, devices=training.devices, strategy=training.strategy, precision=training.precision
        )

    def stamp(self, recipe: Recipe) -> Recipe:
        """``recipe`` recording these devices, strategy and precision (what ``train`` will use)."""
        return recipe.with_training(devices=self.devices, strategy=self.strategy, precision=self.precision)

    def trainer_kwargs(self) -> dict[str, Any]:
        return {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "strategy": self.strategy,
            "precision": self.precision,
        }


# Strategies whose ranks tunekit can launch itself (training/ranks.py); the prefix covers their
# registered variants (ddp_find_unused_parameters_true, deepspeed_stage_2, ...).
RANKED_STRATEGIES = ("auto", "ddp", "fsdp", "deepspeed")


def check_multi_device(options: RunOptions) -> None:
    """Refuse a multi-device trial that tunekit's rank launcher cannot run.

    Tested on CPU with ``ddp`` (gloo); ``fsdp`` and ``deepspeed`` use the same launcher but need GPUs.

    Raises:
        BadInput: a strategy other than ddp/fsdp/deepspeed, or fsdp/deepspeed on the CPU.
    """
    if options.devices == 1:
        return
    if not options.strategy.startswith(RANKED_STRATEGIES):
        raise BadInput(
            f"--strategy {options.strategy} cannot run a trial over --devices {options.devices}; "
            "use --strategy ddp (or fsdp, deepspeed on GPUs)."
        )
    if options.accelerator == "cpu" and options.strategy.startswith(("fsdp", "deepspeed")):
        raise BadInput(f"--strategy {options.strategy} needs GPUs; use --strategy ddp with --accelerator cpu.")


def lightning_precision(value: Any) -> str:
    """Lightning's full name of a precision (``32`` -> ``32-true``, ``bf16`` -> ``bf16-mixed``).

    Read from Lightning's own table, so what Lightning accepts is what tunekit accepts.

    Raises:
        BadInput: Lightning does not know the value.
    """
    from typing import get_args

    from lightning.fabric import connector

    names = get_args(connector._PRECISION_INPUT_STR)
    aliases = connector._PRECISION_INPUT_STR_ALIAS_CONVERSION
    text = str(value)
    if text in names:
        return text
    if text in aliases:
        return aliases[text]
    raise BadInput(f"--precision {value} is not a Lightning precision; use one of {', '.join(names + tuple(aliases))}.")


# Strategies whose launcher starts fresh Python processes that must unpickle the user's module from
# tunekit's synthetic script module, and that re-sample a trial per process (issue #11 prototype).
_SPAWNING = ("ddp_spawn", "ddp_fork", "ddp_notebook")


def _strategy(name: str) -> str:
    from lightning.pytorch.strategies import StrategyRegistry

    known = ["auto", *StrategyRegistry.available_strategies()]
    if name not in known:
        raise BadInput(f"--strategy {name} is not a Lightning strategy; use one of {', '.join(known)}.")
    if name.startswith(_SPAWNING):
        raise BadInput(f"--strategy {name} starts processes tunekit cannot give a trial to; use --strategy ddp.")
    return name


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
    rungs: RungPlan | None = None,
) -> FitResult:
    """Train ``script``'s module once with ``recipe`` for ``training.max_steps`` optimizer steps.

    The module's own ``configure_optimizers`` is replaced by the recipe's optimizer, parameter
    groups and per-step schedule. Validation runs ``training.evaluations`` times, and once more at
    the end if the last one did not fall on the final step. ``accelerator`` is shorthand for
    ``options=RunOptions(accelerator)``. ``rungs``: values at rung budgets (``training.branches``).

    Raises:
        Diverged: the loss or the metric became NaN/inf.
        Interrupted: ``should_stop()`` returned True.
        MetricNotLogged: ``metric`` was never logged.
        BadInput: the recipe clips gradients and the module optimizes manually.
        Exception: whatever the user's code raised.
    """
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl

    options = options or RunOptions(accelerator or "auto")
    start = time.perf_counter()
    t = recipe.training
    pl.seed_everything(t.seed, workers=True, verbose=False)
    model = script.build_model()
    data = script.build_data(t.batch_size)
    ranks = rank_and_world(options)
    if ranks is None:
        callbacks, reporter = trial_callbacks(recipe, metric, on_eval, on_step, should_stop, rungs)
        trainer = trial_trainer(recipe, model, options, callbacks)
        fit_to_the_end(trainer, model, data, reporter)
    else:  # one rank of a tunekit-launched DDP trial (training/ranks.py): decisions shared by all ranks
        from tunekit.training.callbacks import Interrupted, ScheduleFreeSwitch, StepHook
        from tunekit.training.distributed import (
            ReplayRng,
            SharedEvalReporter,
            SharedStepGuard,
            ddp_settings,
            shard_loaders,
        )
        from tunekit.training.use_recipe import UseRecipe

        shard_loaders(data if data is not None else model, *ranks)
        reporter = SharedEvalReporter(metric, on_eval)
        guard = SharedStepGuard(should_stop, Interrupted)
        callbacks = [UseRecipe(recipe), ReplayRng(), guard, StepHook(on_step, None), reporter]
        if recipe.schedule_free:
            callbacks.append(ScheduleFreeSwitch())
        trainer = trial_trainer(recipe, model, options, callbacks, **ddp_settings())
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


def trial_callbacks(
    recipe: Recipe,
    metric: str,
    on_eval: Callable[[int, float], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    rungs: RungPlan | None = None,
) -> tuple[list, Any]:
    """A trial's callbacks (``UseRecipe`` first) and its ``EvalReporter``."""
    from tunekit.training.callbacks import DivergenceGuard, EvalReporter, ScheduleFreeSwitch, StepHook
    from tunekit.training.use_recipe import UseRecipe

    reporter = EvalReporter(metric, on_eval)
    callbacks: list = [UseRecipe(recipe), DivergenceGuard(), StepHook(on_step, should_stop), reporter]
    if recipe.schedule_free:
        callbacks.append(ScheduleFreeSwitch())
    if rungs is not None:
        from tunekit.training.branches import rung_callbacks

        callbacks += rung_callbacks(recipe, rungs, reporter, metric)
    return callbacks, reporter


def trial_settings(recipe: Recipe) -> dict[str, Any]:
    """The Trainer settings a recipe sets (besides ``RunOptions``): budget, validation, accumulation, clipping."""
    t = recipe.training
    return {
        **budget_settings(t.max_steps, t.validation_interval),
        "accumulate_grad_batches": t.accumulate_grad_batches,
        "gradient_clip_val": t.gradient_clip_val or None,
    }


def trial_trainer(recipe: Recipe, model: Any, options: RunOptions, callbacks: list, **overrides: Any) -> Any:
    """The Trainer of a trial of ``recipe`` on ``model``; installs the recipe's optimizers on ``model``.

    Raises:
        BadInput: the recipe clips gradients and ``model`` optimizes manually (Lightning clips only
            in automatic optimization, issue #15).
    """
    from tunekit.errors import BadInput

    callbacks[0].install(model)  # before fit: the script need not define configure_optimizers at all
    clip = recipe.training.gradient_clip_val
    if clip and not model.automatic_optimization:
        raise BadInput(
            f"the recipe sets training.gradient_clip_val {clip}, but {type(model).__name__} optimizes manually "
            "and Lightning clips gradients only in automatic optimization; set gradient_clip_val: null."
        )
    return make_trainer(options, callbacks, **{**trial_settings(recipe), **overrides})


def check_script(
    script: LoadedScript, metric: str, recipe: Recipe, options: RunOptions, batch_size: int | None
) -> None:
    """Run one training and one validation batch of a trial of ``recipe`` before a study starts.

    The trial's own Trainer (``trial_trainer``: clipping, accumulation, ``options``' hardware,
    callbacks) runs with Lightning's ``fast_dev_run``, so a broken ``training_step`` or
    ``validation_step``, a metric that is never logged, or a conflict between tunekit's Trainer
    settings and the script is caught while the study database is still untouched (issue #15).

    Raises:
        BadInput: the script fails the check; the message says whose code or setting failed and the fix.
    """
    from tunekit.errors import BadInput
    from tunekit.training.callbacks import Diverged, MetricNotLogged
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    import lightning.pytorch as pl

    pl.seed_everything(recipe.training.seed, verbose=False)
    # One batch needs no process group: one device, on the trials' accelerator and precision, with the
    # module built directly there (``Trainer.init_module``), never first on the CPU (issue #11).
    options = replace(options, devices=1, strategy="auto")
    with make_trainer(options, []).init_module():
        model = script.build_model()
    _, data = script.probe(batch_size)  # the DataModule the prior measured: built once
    callbacks, _ = trial_callbacks(recipe, metric)
    trainer = trial_trainer(recipe, model, options, callbacks, fast_dev_run=1)
    kwargs: dict[str, Any] = {"datamodule": data} if data is not None else {}
    try:
        trainer.fit(model, **kwargs)
    except MetricNotLogged:
        raise
    except Diverged:
        raise BadInput(
            "the training loss of the first batch is NaN or infinite, before any update; fix the script's loss."
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's code, or Lightning refusing tunekit's settings
        raise BadInput(check_failure(exc, script.spec.path, recipe, options)) from None


def check_failure(exc: BaseException, script_path: str, recipe: Recipe, options: RunOptions) -> str:
    """The sentence for a failed check: the script's code raised, or tunekit's settings conflict with it."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from tunekit.training.script import raised_in

    what = f"{type(exc).__name__}: {exc}"
    if raised_in(exc, script_path):
        return f"a one-step check of the script failed: {what}; fix the script."
    if not isinstance(exc, MisconfigurationException):
        return (
            f"a one-step check failed inside tunekit or Lightning, not in the script's code: {what}; "
            "report it as a tunekit issue with this message."
        )
    settings = {**options.trainer_kwargs(), **trial_settings(recipe)}
    keys = ("accelerator", "devices", "strategy", "precision", "accumulate_grad_batches", "gradient_clip_val")
    shown = ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)
    return (
        f"Lightning refused tunekit's Trainer settings for this script ({shown}): {what}; the script's code did "
        "not raise, so change the script's setting that conflicts or the tunekit option (e.g. --accelerator)."
    )
