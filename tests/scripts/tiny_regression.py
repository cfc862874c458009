"""A tiny model script for tests: an MLP regressing a fixed random linear map.

Follows the model-script contract: one LightningModule, one LightningDataModule taking batch_size,
logs val_loss. Optional failure modes, chosen with --model-arg, let tests cause faults for real.
"""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TinyRegression(pl.LightningModule):
    def __init__(
        self, hidden: int = 16, fail_at_step: int = -1, nan_at_step: int = -1, sleep: float = 0.0, steps_file: str = ""
    ):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.LayerNorm(hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.fail_at_step = fail_at_step
        self.nan_at_step = nan_at_step
        self.sleep = sleep
        self.steps_file = steps_file  # each rank appends "start RANK PID" and "end RANK STEP" (DDP tests)

    def _note(self, text):
        if self.steps_file:
            with open(self.steps_file, "a") as out:
                out.write(text + "\n")

    def on_train_start(self):
        import os

        self._note(f"start {self.global_rank} {os.getpid()}")

    def on_train_end(self):
        self._note(f"end {self.global_rank} {self.global_step}")

    def training_step(self, batch, batch_idx):
        if self.global_step == self.fail_at_step:
            raise RuntimeError("boom in training_step")
        if self.sleep:
            import time

            time.sleep(self.sleep)
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        if self.global_step == self.nan_at_step:
            loss = loss * float("nan")
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class TinyData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.batch_size = batch_size
        g = torch.Generator().manual_seed(0)
        w = torch.randn(8, 1, generator=g)
        x = torch.randn(512, 8, generator=g)
        y = torch.tanh(x @ w) + 0.05 * torch.randn(512, 1, generator=g)
        self.train_set = TensorDataset(x[:448], y[:448])
        self.val_set = TensorDataset(x[448:], y[448:])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=64)
