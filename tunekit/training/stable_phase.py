"""WSD-S (issue #9): keep a WSD trial's state from before its cooldown, to continue its stable phase later.

A WSD run is at its peak LR until ``T - floor(decay_fraction * T)``; its state there is the state
of any longer WSD run of the same recipe at that step, apart from warmup (Hägele et al. 2024; WSD-S
keeps a single main branch and decays copies of it). So a finished trial's checkpoint from that
step lets ``tunekit train RECIPE SCRIPT --max-steps N`` start at that step instead of step 0: it
restores the Lightning checkpoint (model, optimizer, LR scheduler, loop counters), re-budgets the
schedule to ``N`` steps (stable until ``N - floor(decay_fraction * N)``, then the recipe's decay),
and trains the rest (``training.stable_resume``). What differs from a fresh ``N``-step run: its
warmup was the short trial's (``ceil(warmup_fraction * T)`` steps, not ``* N``), and the data
order restarts at the step it resumes from (Lightning restores no position inside an epoch of a
plain DataLoader).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl


class KeepStablePhase(pl.Callback):
    """Save a Lightning checkpoint to ``path`` once the run has trained ``step`` optimizer steps."""

    def __init__(self, path: str | Path, step: int):
        self.path = Path(path)
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step and not self.path.exists():
            trainer.save_checkpoint(self.path)


class Rebudget(pl.Callback):
    """After a checkpoint is restored (its scheduler planned ``T`` steps), plan ``total_steps``."""

    def __init__(self, total_steps: int):
        self.total_steps = total_steps

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        for config in trainer.lr_scheduler_configs:
            config.scheduler.rebudget(self.total_steps)
