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

    @classmethod
    def of(cls, metric: str, logged: Any) -> MetricNotLogged:
        """The one sentence for it, listing what was logged instead."""
        names = ", ".join(sorted(logged)) or "none"
        return cls(
            f"the metric '{metric}' is never logged (logged: {names}); log it with "
            f"self.log('{metric}', ...) in validation_step, or pass --metric NAME."
        )


class EvalReporter(pl.Callback):
    """Record the metric after every validation, at the optimizer step it was measured.

    ``on_eval(step, value)`` is called with each finite value; it reports to Optuna and may raise
    ``optuna.TrialPruned``. We write this instead of optuna-integration's
    PyTorchLightningPruningCallback because that one reports once per epoch (step=epoch), so it
    cannot prune a step-budgeted run that lives inside one epoch (optuna/optuna-integration,
    ``pytorch_lightning.py``: ``self._trial.report(current_score, step=epoch)``).
    """

    def __init__(self, metric: str, on_eval: Callable[[int, float], None] | None = None):
        self.metric = metric
        self.on_eval = on_eval
        self.history: list[tuple[int, float]] = []
        self.paused = False  # while a rung's branch validates (training/branches.py): not the main run's value

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.paused:
            return
        metrics = trainer.callback_metrics
        if self.metric not in metrics:
            raise MetricNotLogged.of(self.metric, metrics)
        value = self.read(trainer, metrics[self.metric])
        step = trainer.global_step
        if not math.isfinite(value):
            raise Diverged(step, self.metric)
        if self.history and self.history[-1][0] == step:
            return
        self.history.append((step, value))
        self.report(trainer, step, value)

    def read(self, trainer: pl.Trainer, value: Any) -> float:
        """The metric's value from its logged tensor (a DDP rank reduces it over ranks here)."""
        return float(value)

    def report(self, trainer: pl.Trainer, step: int, value: float) -> None:
        """Pass a new value to ``on_eval`` (a DDP rank broadcasts rank 0's verdict here)."""
        if self.on_eval is not None:
            self.on_eval(step, value)


class DivergenceGuard(pl.Callback):
    """Stop at once when the training loss is NaN or infinite, before its backward pass and update."""

    def on_before_backward(self, trainer: pl.Trainer, pl_module: Any, loss: Any) -> None:
        if not bool(loss.detach().isfinite().all()):
            raise Diverged(trainer.global_step, "training loss")


class ScheduleFreeSwitch(pl.Callback):
    """Keep a schedule-free optimizer in the mode the model is in, and BatchNorm in step with it.

    Schedule-free AdamW/SGD evaluate at the averaged point x but train at y; the optimizer must be
    switched with ``.eval()`` before validation and saving and ``.train()`` before training steps
    (facebookresearch/schedule_free, class docstring). We switch back to train lazily at the next
    training batch, so a checkpoint written right after validation is still in eval mode.

    Saving: a checkpoint taken at any other time (``ModelCheckpoint(every_n_train_steps=...)``, or
    ``trainer.save_checkpoint`` in a callback) starts with ``module.state_dict()``, so during ``fit``
    a state-dict pre-hook on the module switches to eval first. It does nothing between
    ``on_train_batch_start`` and the optimizer's step (a step post-hook marks the end, so another
    callback's ``on_train_batch_end`` may save whatever the callback order), where the optimizer
    must stay in train mode.

    BatchNorm: running statistics gathered while training at y do not describe the network at x.
    When the module has BatchNorm layers, their statistics are recomputed at the eval weights before
    validation and before a save, the way the schedule_free README prescribes ("~50 batches" in
    train mode with the optimizer in eval mode): reset, then a cumulative average
    (``momentum=None``, as ``torch.optim.swa_utils.update_bn``) over the last ``bn_batches``
    training batches, which are kept for this (only when there is BatchNorm). The forward pass calls
    the module on the batch's first element (tuple/list batches) or on the batch itself, like
    ``update_bn``; a module whose ``forward`` takes something else defines
    ``tunekit_bn_forward(self, batch)``. The RNG state is restored afterwards, so the refresh does
    not change the training run's randomness (dropout, data order).

    Args:
        bn_batches: training batches used to recompute BatchNorm statistics (0 disables the refresh).
    """

    def __init__(self, bn_batches: int = 50):
        from collections import deque

        self.bn_batches = bn_batches
        self._recent: deque = deque(maxlen=max(bn_batches, 1))
        self._has_bn = False
        self._bn_stale = False  # the weights changed since BN statistics were last recomputed
        self._in_batch = False  # from on_train_batch_start until the optimizer has stepped
        self._hooks: list = []

    def _optimizers(self, trainer: pl.Trainer) -> list:
        return [o for o in trainer.optimizers if hasattr(o, "eval") and hasattr(o, "train")]

    def _eval(self, trainer: pl.Trainer, pl_module: Any, refresh_bn: bool = True) -> None:
        for opt in self._optimizers(trainer):
            opt.eval()
        if refresh_bn and self._bn_stale and self._recent:
            self._refresh_bn(trainer, pl_module)
            self._bn_stale = False

    def _refresh_bn(self, trainer: pl.Trainer, pl_module: Any) -> None:
        import torch
        from torch.nn.modules.batchnorm import _BatchNorm

        bns = [m for m in pl_module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
        modes = [(m, m.training) for m in pl_module.modules()]
        momenta = [(bn, bn.momentum) for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the refresh batches
        device = next(pl_module.parameters()).device
        forward = getattr(pl_module, "tunekit_bn_forward", None)
        try:
            pl_module.train()
            with (
                torch.no_grad(),
                torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
                trainer.precision_plugin.forward_context(),
            ):
                for batch in self._recent:
                    try:
                        if forward is not None:
                            forward(batch)
                        else:
                            pl_module(batch[0] if isinstance(batch, (list, tuple)) else batch)
                    except Exception as exc:  # noqa: BLE001 - the user's forward
                        raise RuntimeError(
                            "recomputing BatchNorm statistics for the schedule-free optimizer called the module "
                            f"on the training batch's inputs and failed ({type(exc).__name__}: {exc}); define "
                            "tunekit_bn_forward(self, batch) on the LightningModule to run the forward pass."
                        ) from exc
        finally:
            for bn, momentum in momenta:
                bn.momentum = momentum
            for module, training in modes:
                module.training = training

    def _before_state_dict(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if not self._in_batch:
            self._eval(trainer, pl_module)

    def _batch_done(self, *args: Any) -> None:
        self._in_batch = False

    def _remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        from torch.nn.modules.batchnorm import _BatchNorm

        self._has_bn = self.bn_batches > 0 and any(
            isinstance(m, _BatchNorm) and m.track_running_stats for m in pl_module.modules()
        )
        self._remove_hooks()
        self._hooks = [pl_module.register_state_dict_pre_hook(lambda *_: self._before_state_dict(trainer, pl_module))]
        self._hooks += [opt.register_step_post_hook(self._batch_done) for opt in self._optimizers(trainer)]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._in_batch = True
        if self._has_bn:
            self._recent.append(batch)
            self._bn_stale = True
        for opt in self._optimizers(trainer):
            opt.train()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._batch_done()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._eval(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # BN is refreshed only when something reads the weights (validation, a save).
        self._eval(trainer, pl_module, refresh_bn=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # The last refresh runs here, not in on_fit_end: Lightning calls on_train_end at the end of
        # the fit loop, with the module still on its device, then Strategy.teardown() moves the module
        # to CPU, and only then on_fit_end (lightning/pytorch/trainer/trainer.py `_run`), when the
        # cached batches are still on the device (issue #10, defect 5). ModelCheckpoint's own
        # on_train_end (save_last) runs after this one: Lightning orders checkpoint callbacks last.
        self._eval(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        for opt in self._optimizers(trainer):
            opt.eval()  # a stopped or interrupted run is left at x too; BN was refreshed in on_train_end
        self._remove_hooks()
        self._recent.clear()

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        self._remove_hooks()
        self._recent.clear()


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
