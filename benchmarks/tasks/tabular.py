"""Tabular regression: an MLP on generated data (a benchmark task of issue #14, not an LM).

Each row has 16 standardised features; the target mixes smooth one-feature effects, pairwise
interactions and a threshold effect, plus noise, so a linear model is far from the optimum and
the MLP has something to learn in a few hundred steps. A normal tunekit model script::

    tunekit search benchmarks/tasks/tabular.py --trials 12 --max-steps 200

Data: generated in code with fixed seeds of its own, so nothing is downloaded and every trial sees
the same rows. The untuned script uses Adam at 1e-3, as a user's first attempt would.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

N_FEATURES = 16
NOISE_STD = 0.1
DATA_SEED = 2024  # fixed: the data never depends on the global (trial) seed


def make_rows(n_train: int, n_val: int) -> tuple[TensorDataset, TensorDataset]:
    """Training and validation rows ``(x, y)``, ``x`` of shape ``(n, 16)``, ``y`` of shape ``(n, 1)``."""
    gen = torch.Generator().manual_seed(DATA_SEED)
    n = n_train + n_val
    x = torch.randn(n, N_FEATURES, generator=gen)
    freq = 0.5 + 1.5 * torch.rand(N_FEATURES, generator=gen)
    weight = torch.randn(N_FEATURES, generator=gen)
    y = (weight * torch.sin(freq * x)).sum(1)
    y = y + 1.5 * x[:, 0] * x[:, 1] - x[:, 2] * x[:, 3] + 2.0 * (x[:, 4] > 0.5).float() * x[:, 5]
    y = (y - y.mean()) / y.std() + NOISE_STD * torch.randn(n, generator=gen)
    y = y.unsqueeze(1)
    return TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


class TabularData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 64, n_train: int = 4096, n_val: int = 1024) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.n_train = n_train
        self.n_val = n_val
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = make_rows(self.n_train, self.n_val)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=512, shuffle=False, num_workers=0)


class TabularMLP(pl.LightningModule):
    """Three hidden ReLU layers of ``width`` units and a linear output."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(N_FEATURES, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self):
        # Untuned baseline: tunekit replaces this during search.
        return torch.optim.Adam(self.parameters(), lr=1e-3)
