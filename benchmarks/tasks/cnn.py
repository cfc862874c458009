"""Grating classifier: a small BatchNorm CNN on generated images (a benchmark task of issue #14).

Each 12x12 grayscale image is a sinusoidal grating of one of four orientations and one of two
spatial frequencies (eight classes), with random phase and contrast, under strong pixel noise; the
model predicts the class. Unlike ``examples/shapes.py`` (shape outlines), the signal is a texture
spread over the whole image. A normal tunekit model script::

    tunekit search benchmarks/tasks/cnn.py --trials 12 --max-steps 200

Data: generated in code with fixed seeds of its own; nothing is downloaded. The untuned script
uses Adam at 1e-3, as a user's first attempt would.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

IMAGE_SIZE = 12
ORIENTATIONS = 4
FREQUENCIES = (0.12, 0.25)  # cycles per pixel
NOISE_STD = 0.6
TRAIN_SEED, VAL_SEED = 31, 47  # fixed: the data never depends on the global (trial) seed


def make_gratings(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of shape ``(n, 1, 12, 12)`` (float32) and labels in ``[0, 8)`` (``torch.long``)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, ORIENTATIONS * len(FREQUENCIES), (n,), generator=gen)
    angle = (labels % ORIENTATIONS).float() * math.pi / ORIENTATIONS
    angle = angle + 0.15 * torch.randn(n, generator=gen)  # orientations are not exact
    freq = torch.tensor(FREQUENCIES)[labels // ORIENTATIONS]
    phase = 2 * math.pi * torch.rand(n, generator=gen)
    contrast = 0.4 + 0.6 * torch.rand(n, generator=gen)
    grid = torch.arange(IMAGE_SIZE, dtype=torch.float32)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    along = xx * torch.cos(angle).view(-1, 1, 1) + yy * torch.sin(angle).view(-1, 1, 1)
    images = contrast.view(-1, 1, 1) * torch.sin(2 * math.pi * freq.view(-1, 1, 1) * along + phase.view(-1, 1, 1))
    images = images + NOISE_STD * torch.randn(n, IMAGE_SIZE, IMAGE_SIZE, generator=gen)
    return images.unsqueeze(1), labels


class GratingData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 32, n_train: int = 4096, n_val: int = 512) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.n_train = n_train
        self.n_val = n_val
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = TensorDataset(*make_gratings(self.n_train, TRAIN_SEED))
            self.val_set = TensorDataset(*make_gratings(self.n_val, VAL_SEED))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, shuffle=False, num_workers=0)


class GratingCNN(pl.LightningModule):
    """Two conv-BN-ReLU stages (12x12 -> 6x6), global average pool, an MLP head over eight classes."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, 4 * width),
            nn.ReLU(),
            nn.Linear(4 * width, ORIENTATIONS * len(FREQUENCIES)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self):
        # Untuned baseline: tunekit replaces this during search.
        return torch.optim.Adam(self.parameters(), lr=1e-3)
