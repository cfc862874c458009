"""Shape classifier: a small CNN with batch normalisation on 16x16 grayscale images.

This is a bundled tunekit example. Each image holds one shape (filled square, disc, triangle or
cross) of random position, size and brightness on a noisy background; the model predicts which.

Tune it with::

    tunekit search examples/shapes.py --trials 6 --max-steps 200

Data: generated in code by :func:`make_shapes`, with a fixed seed of its own, so nothing is
downloaded and every trial sees exactly the same training and validation images.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CLASSES = ("square", "disc", "triangle", "cross")
IMAGE_SIZE = 16
NOISE_STD = 0.35

TRAIN_SEED = 1234  # fixed: the data never depends on the global (trial) seed
VAL_SEED = 5678


def make_shapes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of shape ``(n, 1, 16, 16)`` (float32) and their labels (``torch.long``)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, 1, 1, generator=gen)

    labels = torch.randint(0, len(CLASSES), (n,), generator=gen)
    r = uniform(2.5, 5.0)  # half-size in pixels
    cx, cy = uniform(4.5, 10.5), uniform(4.5, 10.5)
    grid = torch.arange(IMAGE_SIZE, dtype=torch.float32)
    dx = grid.view(1, 1, -1) - cx
    dy = grid.view(1, -1, 1) - cy

    square = (dx.abs() <= r * 0.85) & (dy.abs() <= r * 0.85)
    disc = dx**2 + dy**2 <= r**2
    triangle = (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2)  # apex up, base down
    arm = r / 3
    cross = ((dx.abs() <= r) & (dy.abs() <= arm)) | ((dy.abs() <= r) & (dx.abs() <= arm))
    masks = torch.stack([square, disc, triangle, cross], dim=1)  # (n, classes, H, W)
    mask = masks[torch.arange(n), labels].float()

    brightness = uniform(0.6, 1.0)
    noise = NOISE_STD * torch.randn(n, IMAGE_SIZE, IMAGE_SIZE, generator=gen)
    images = mask * brightness + noise
    return images.unsqueeze(1), labels


class ShapesDataModule(pl.LightningDataModule):
    def __init__(self, batch_size: int = 64, n_train: int = 8192, n_val: int = 1024) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.n_train = n_train
        self.n_val = n_val
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = TensorDataset(*make_shapes(self.n_train, TRAIN_SEED))
            self.val_set = TensorDataset(*make_shapes(self.n_val, VAL_SEED))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, shuffle=False, num_workers=0)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class ShapesCNN(pl.LightningModule):
    """Three conv-BN-ReLU stages (16x16 -> 8x8 -> 4x4), global average pool, linear."""

    def __init__(self, width: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            _conv_bn(1, width),
            nn.MaxPool2d(2),
            _conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * width, len(CLASSES)),
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
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=False)
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean(), prog_bar=False)

    def configure_optimizers(self):
        # Untuned baseline: tunekit replaces this during search.
        return torch.optim.Adam(self.parameters(), lr=1e-3)
