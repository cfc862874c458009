"""Lightning callbacks that make one training run a tunekit trial.

Imported only by ``fit.py`` (it imports lightning).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl

from tunekit.errors import BadInput


class Diverged(Exception):
    """The loss or the metric became NaN or infinite; the trial is pruned with this reason."""

    def __init__(self, step: int, what: str):
        super().__init__(f"diverged at step {step} ({what} is not finite)")
        self.step = step


class Interrupted(Exception):
    """The user pressed Ctrl-C; raised at the next batch boundary so nothing is half-written."""


class MetricNotLogged(BadInput):
    """The metric to optimize was never logged by the user's module."""


class EvalReporter(pl.Callback):
    """Record the metric after every validation, at the optimizer step it was measured.

    ``on_eval(step, value)`` is called with each finite value; it reports to Optuna and may raise
    ``optuna.TrialPruned``. We write this instead of optuna-integration's
    PyTorchLightningPruningCallback because that one reports once per epoch (step=epoch), so it
    cannot prune a step-budgeted run that lives inside one epoch (literature.md, "Practice").
    """

    def __init__(self, metric: str, on_eval: Callable[[int, float], None] | None = None):
        self.metric = metric
        self.on_eval = on_eval
        self.history: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if self.metric not in metrics:
            logged = ", ".join(sorted(metrics)) or "none"
            raise MetricNotLogged(
                f"the metric '{self.metric}' was never logged (logged: {logged}); "
                f"log it with self.log('{self.metric}', ...) in validation_step or pass --metric NAME."
            )
        value = float(metrics[self.metric])
        step = trainer.global_step
        if not math.isfinite(value):
            raise Diverged(step, self.metric)
        if self.history and self.history[-1][0] == step:
            return
        self.history.append((step, value))
        if self.on_eval is not None:
            self.on_eval(step, value)


class DivergenceGuard(pl.Callback):
    """Stop at once when the training loss is NaN or infinite, before its backward pass and update."""

    def on_before_backward(self, trainer: pl.Trainer, pl_module: Any, loss: Any) -> None:
        if not bool(loss.detach().isfinite().all()):
            raise Diverged(trainer.global_step, "training loss")


class ScheduleFreeSwitch(pl.Callback):
    """Keep a schedule-free optimizer in the mode the model is in.

    Schedule-free AdamW/SGD evaluate at the averaged point x but train at y; the optimizer must be
    switched with ``.eval()`` before validation and saving and ``.train()`` before training steps
    (facebookresearch/schedule_free, class docstring). We switch back to train lazily at the next
    training batch, so a checkpoint written right after validation is still in eval mode.
    """

    def _optimizers(self, trainer: pl.Trainer) -> list:
        return [o for o in trainer.optimizers if hasattr(o, "eval") and hasattr(o, "train")]

    def _eval(self, trainer: pl.Trainer) -> None:
        for opt in self._optimizers(trainer):
            opt.eval()

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        for opt in self._optimizers(trainer):
            opt.train()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._eval(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._eval(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._eval(trainer)


class StepHook(pl.Callback):
    """Call ``on_step(step, total)`` after each batch and raise ``Interrupted`` when asked to stop."""

    def __init__(self, on_step: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None):
        self.on_step = on_step
        self.should_stop = should_stop

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Interrupted()
        if self.on_step is not None:
            self.on_step(trainer.global_step, trainer.max_steps)
