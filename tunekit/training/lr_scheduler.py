"""The one torch LR scheduler that runs every tunekit schedule, and its factory.

The schedules themselves are pure functions in ``tunekit.search_spaces`` (no torch there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from tunekit.errors import BadInput
from tunekit.search_spaces import catalog


class ScheduleLR(LRScheduler):
    """Sets each param group's LR to ``base_lr * multiplier(t)`` before optimizer step ``t``.

    ``base_lr`` is the group's own LR when the scheduler is built (its ``initial_lr``), so groups with
    different peaks (Muon and its AdamW part, no-decay groups) keep their ratio. Construction applies
    ``multiplier(0)``, so the first optimizer step runs at the start of the schedule (warmup's 1%),
    not at 0 as pytorch_optimizer's ``REXScheduler`` does.

    Contract: call ``step()`` once per optimizer step, after ``optimizer.step()``. In Lightning that
    is ``{"scheduler": ..., "interval": "step"}``; the default interval "epoch" steps it once per epoch.
    With gradient accumulation Lightning steps it per optimizer step, as it should be.

    ``state_dict()`` holds only plain values (schedule name, resolved parameters, budget, step,
    base LRs), so it pickles; ``load_state_dict()`` restores them and sets the param groups' LRs to the
    restored step's, so a resumed run continues its schedule even before the optimizer state is loaded.
    """

    def __init__(
        self, optimizer: Optimizer, name: str, params: Mapping[str, Any], total_steps: int, last_epoch: int = -1
    ) -> None:
        self.schedule_name = name
        self.schedule_params = catalog.resolve_params(name, params)
        self.total_steps = int(total_steps)
        super().__init__(optimizer, last_epoch)

    def multiplier(self, step: int) -> float:
        """The schedule's multiplier at optimizer step ``step``."""
        schedule = catalog.get_schedule(self.schedule_name)
        return schedule.multiplier(step, self.total_steps, self.schedule_params)

    def get_lr(self) -> list[float | Tensor]:
        m = self.multiplier(self.last_epoch)
        return [base * m for base in self.base_lrs]

    # Used by the deprecated step(epoch): our schedules are closed-form anyway.
    _get_closed_form_lr = get_lr

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.schedule_params = catalog.resolve_params(self.schedule_name, self.schedule_params)
        self._set_lrs()

    def rebudget(self, total_steps: int) -> None:
        """Plan ``total_steps`` from here on (WSD-S, issue #9: a restored run continues to a longer budget)."""
        self.total_steps = int(total_steps)
        self._set_lrs()

    def _set_lrs(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(float(lr))
            else:
                group["lr"] = lr
        self._last_lr = [
            g["lr"].clone() if isinstance(g["lr"], Tensor) else g["lr"] for g in self.optimizer.param_groups
        ]


def build_lr_scheduler(optimizer: Optimizer, cfg: Mapping[str, Any], total_steps: int) -> ScheduleLR | None:
    """A torch LR scheduler that applies a recipe's schedule section to every param group.

    The LR of each param group at optimizer step ``t`` is its own base LR (the group's ``lr`` when the
    scheduler is built) times ``multiplier(cfg, t, total_steps)``; the first optimizer step uses
    ``multiplier(0)``. Step it once per optimizer step, after ``optimizer.step()`` (in Lightning:
    ``{"scheduler": ..., "interval": "step"}``; the default interval "epoch" would step it once per
    epoch). Its ``state_dict`` / ``load_state_dict`` resume the schedule where it was.

    Args:
        optimizer: the optimizer, with its peak LR(s) set in its param groups.
        cfg: ``{"name": ..., **params}``.
        total_steps: optimizer steps in the trial.

    Returns:
        A ``ScheduleLR``, or ``None`` for a schedule-free schedule (``none``): the optimizer then
        runs at its own LR and warmup.

    Raises:
        BadInput: unknown schedule, invalid parameters, or ``total_steps < 1``.
    """
    name, params = catalog.split_section(cfg, None)
    schedule = catalog.get_schedule(name)
    params = schedule.resolve(params)
    if total_steps < 1:
        raise BadInput(f"the schedule needs a budget of at least 1 optimizer step, got {total_steps}.")
    if schedule.schedule_free:
        return None
    return ScheduleLR(optimizer, name, params, total_steps)
