"""Rung values that mean "the end of a run of that length" (``search --fidelity sh``, issue #9).

``RungBranches`` is a Lightning callback. At each rung budget ``b`` of its ``RungPlan``:

- a WSD trial (``rung_kind`` ``cooldown``) forks a cooldown branch from its stable phase at step
  ``f = b - floor(decay_fraction * b)`` (``fork_step``), decays with its own shape and final
  fraction until step ``b`` (the schedule's own curve for a run of ``b`` steps, scaled by the LR
  it has at ``f``: 1 in the stable phase), validates, and restores the model (parameters and
  buffers), optimizer, LR scheduler, gradient scaler and RNG states from before the branch
  (Hägele et al. 2024: a cooldown from any point of the stable phase gives the loss of a run of
  that length). The branch trains on batches of a fresh train loader of the same DataModule, so
  the main run's data-loader position is never touched, and the RNG it draws from is restored.
- any other trial validates at step ``b`` itself (a constant run of length ``b`` ends at its value
  at ``b``; a schedule-free optimizer is evaluated at its averaged point, in eval mode, by
  ``ScheduleFreeSwitch``; a budget-bound schedule's value is compared only with its own schedule),
  and the same state is restored, so the main run's data order and weights are those of a run
  without rungs.

The main run after any number of rungs is therefore the run without them, bit for bit on the CPU
(tests/training/test_branches.py). The copy of the state stays on the device when it fits in half
of the free memory, else it goes to CPU memory. We write this loop ourselves: Lightning has no
branch-and-restore, and a second ``Trainer.fit`` would re-run the module's fit hooks, tear the
strategy down (moving the module to the CPU) and restart the data loader.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from tunekit.recipes import Recipe
from tunekit.search_spaces.catalog import get_schedule
from tunekit.training.callbacks import Diverged, EvalReporter, Interrupted, MetricNotLogged
from tunekit.training.rung_plan import RungPlan, RungValue, decay_start, fork_step, rung_kind
from tunekit.training.stable_phase import KeepStablePhase


def rung_callbacks(recipe: Recipe, plan: RungPlan, reporter: EvalReporter, metric: str) -> list[pl.Callback]:
    """A trial's callbacks for ``plan``: its rungs and, for WSD-S, the save of its stable phase."""
    callbacks: list[pl.Callback] = [RungBranches(recipe, plan, reporter, metric)]
    step = decay_start(recipe)
    if plan.keep_stable is not None and step is not None:
        callbacks.append(KeepStablePhase(plan.keep_stable, step))
    return callbacks


class RungBranches(pl.Callback):
    """Evaluate ``plan``'s rungs during a trial of ``recipe``; ``reporter`` is paused meanwhile."""

    def __init__(self, recipe: Recipe, plan: RungPlan, reporter: EvalReporter, metric: str):
        self.recipe = recipe
        self.plan = plan
        self.reporter = reporter
        self.metric = metric
        self.forks: dict[int, list[int]] = {}
        self.kind = "budget-bound"

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.kind = rung_kind(self.recipe.schedule.name, pl_module.automatic_optimization)
        self.forks = {}
        for budget in self.plan.budgets:
            self.forks.setdefault(fork_step(self.recipe, budget, self.kind), []).append(budget)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        # Called after every batch; the first one at a step is right after its optimizer step.
        budgets = self.forks.pop(trainer.global_step, None)
        for budget in budgets or ():
            value = self.evaluate(trainer, pl_module, trainer.global_step, budget)
            self.plan.on_rung(RungValue(budget, trainer.global_step, value))

    def evaluate(self, trainer: pl.Trainer, module: pl.LightningModule, fork: int, budget: int) -> float:
        """The metric at the end of a run of ``budget`` steps, leaving the main run as it was."""
        devices = [module.device] if module.device.type == "cuda" else []
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=devices):
                # Also without a branch: a schedule-free optimizer's switch to its averaged point and
                # back is not exact in floating point, nor is a BatchNorm refresh there.
                saved = Snapshot(trainer, module)
                try:
                    if budget > fork:
                        self.cool_down(trainer, module, fork, budget)
                    return self.validate(trainer, budget)
                finally:
                    saved.restore(trainer, module)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)

    def cool_down(self, trainer: pl.Trainer, module: pl.LightningModule, fork: int, budget: int) -> None:
        """Train steps ``fork .. budget - 1`` with the schedule of a ``budget``-step run."""
        optimizer = trainer.optimizers[0]
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        schedule = get_schedule(self.recipe.schedule.name)
        params = dict(self.recipe.schedule.params)
        at_fork = scheduler.multiplier(fork)  # 1 in the stable phase
        batches = _batches(trainer, module)
        module.log = module.log_dict = _no_log  # the branch's training logs are not the main run's
        try:
            for step in range(fork, budget):
                multiplier = at_fork * schedule.fn(step, budget, **params)
                for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
                    group["lr"] = base * multiplier
                _train_step(trainer, module, optimizer, [next(batches) for _ in range(trainer.accumulate_grad_batches)])
                self.plan.branch_steps += 1
                if self.plan.should_stop is not None and self.plan.should_stop():
                    raise Interrupted()
        finally:
            del module.log, module.log_dict

    def validate(self, trainer: pl.Trainer, budget: int) -> float:
        """Lightning's own validation loop, as its training epoch loop runs it between batches."""
        from lightning.pytorch.trainer import call

        first_loop_iter = trainer._logger_connector._first_loop_iter
        self.reporter.paused = True
        try:
            trainer.validating = True
            call._call_lightning_module_hook(trainer, "on_validation_model_zero_grad")
            trainer.fit_loop.epoch_loop.val_loop.run()
        finally:
            trainer.training = True
            trainer._logger_connector._first_loop_iter = first_loop_iter
            self.reporter.paused = False
        metrics = trainer.callback_metrics
        if self.metric not in metrics:
            raise MetricNotLogged.of(self.metric, metrics)
        value = float(metrics[self.metric])
        if not math.isfinite(value):
            raise Diverged(budget, self.metric)
        return value


def _no_log(*args: Any, **kwargs: Any) -> None:
    return None


def _batches(trainer: pl.Trainer, module: pl.LightningModule) -> Iterator[Any]:
    """Batches of a fresh train loader (the DataModule's, else the module's), epoch after epoch."""
    source = trainer.datamodule if trainer.datamodule is not None else module
    loader = source.train_dataloader()
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise RuntimeError("the train dataloader is empty: a cooldown branch has no batch to train on")


def _train_step(trainer: pl.Trainer, module: pl.LightningModule, optimizer: Any, batches: list) -> None:
    """One optimizer step over ``batches`` (accumulated), through the strategy and precision plugin.

    As Lightning's automatic optimization: zero the gradients, ``training_step`` and backward per
    batch (the loss divided by the batches accumulated), then the precision plugin's
    ``optimizer_step``, whose closure wrapper calls ``on_before_optimizer_step`` and clips gradients
    with the Trainer's ``gradient_clip_val``.
    """
    strategy = trainer.strategy

    def closure() -> Any:
        optimizer.zero_grad()
        loss = None
        for index, batch in enumerate(batches):
            output = strategy.training_step(strategy.batch_to_device(batch), index)
            part = output["loss"] if isinstance(output, Mapping) else output
            if part is None:
                continue  # the module skipped this batch, as Lightning allows
            strategy.backward(part / len(batches), optimizer)
            loss = part.detach()
        return loss

    strategy.precision_plugin.optimizer_step(optimizer, model=module, closure=closure)


class Snapshot:
    """A copy of everything a branch changes: module parameters and buffers, optimizer, LR scheduler, gradient scaler.

    Kept on the module's device when twice its size fits in the free device memory, else on the CPU.
    """

    def __init__(self, trainer: pl.Trainer, module: pl.LightningModule):
        optimizer = trainer.optimizers[0]
        # Tensors rather than module.state_dict(): that runs state-dict hooks, and ScheduleFreeSwitch's
        # switches the optimizer to its averaged point on one (a save must hold x).
        module_state = dict(module.named_parameters()) | dict(module.named_buffers())
        optimizer_state = optimizer.state_dict()
        where = _where(module.device, _bytes(module_state) + _bytes(optimizer_state))
        self.module = _copy(module_state, where)
        self.optimizer = _copy(optimizer_state, where)
        configs = trainer.lr_scheduler_configs
        self.scheduler = _copy(configs[0].scheduler.state_dict(), torch.device("cpu")) if configs else None
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self.scaler = None if scaler is None else _copy(scaler.state_dict(), torch.device("cpu"))

    def restore(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        with torch.no_grad():
            for name, tensor in (dict(module.named_parameters()) | dict(module.named_buffers())).items():
                tensor.copy_(self.module[name])
        trainer.optimizers[0].load_state_dict(self.optimizer)
        if self.scheduler is not None:
            trainer.lr_scheduler_configs[0].scheduler.load_state_dict(self.scheduler)
        if self.scaler is not None:
            trainer.precision_plugin.scaler.load_state_dict(self.scaler)


def _bytes(tree: Any) -> int:
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, Mapping):
        return sum(_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(_bytes(v) for v in tree)
    return 0


def _where(device: torch.device, size: int) -> torch.device:
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if 2 * size < free else torch.device("cpu")


def _copy(tree: Any, device: torch.device) -> Any:
    """A deep copy of a state dict, its tensors copied to ``device``."""
    import copy

    if isinstance(tree, torch.Tensor):
        return tree.detach().to(device, copy=True)
    if isinstance(tree, Mapping):
        return {k: _copy(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_copy(v, device) for v in tree)
    return copy.deepcopy(tree)
