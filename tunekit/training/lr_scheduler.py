"""The one torch LR scheduler that runs every tunekit schedule.

Build it with ``tunekit.search_spaces.schedules.build_lr_scheduler``; the schedules themselves are
pure functions in that module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from tunekit.search_spaces import schedules


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
        self.schedule_params = schedules.resolve_params(name, params)
        self.total_steps = int(total_steps)
        super().__init__(optimizer, last_epoch)

    def multiplier(self, step: int) -> float:
        """The schedule's multiplier at optimizer step ``step``."""
        schedule = schedules.get_schedule(self.schedule_name)
        return schedule.multiplier(step, self.total_steps, self.schedule_params)

    def get_lr(self) -> list[float | Tensor]:
        m = self.multiplier(self.last_epoch)
        return [base * m for base in self.base_lrs]

    # Used by the deprecated step(epoch): our schedules are closed-form anyway.
    _get_closed_form_lr = get_lr

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.schedule_params = schedules.resolve_params(self.schedule_name, self.schedule_params)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(float(lr))
            else:
                group["lr"] = lr
        self._last_lr = [
            g["lr"].clone() if isinstance(g["lr"], Tensor) else g["lr"] for g in self.optimizer.param_groups
        ]
