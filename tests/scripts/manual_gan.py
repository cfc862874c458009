"""A tiny GAN-style model script with manual optimization, for tests (issue #15).

A generator and a discriminator trained in alternation in ``training_step``, as GAN scripts do, with
one optimizer over both (``optimizers=2`` gives each its own, which tunekit refuses). ``lr_log``
names a file where each optimizer step appends the LR it ran at; ``nan_at_step`` makes the loss NaN.
"""

import json

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TinyGAN(pl.LightningModule):
    def __init__(self, optimizers: int = 1, lr_log: str = "", nan_at_step: int = -1):
        super().__init__()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8))
        self.discriminator = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
        self.n_optimizers, self.lr_log, self.nan_at_step = optimizers, lr_log, nan_at_step

    def _log(self, **record):
        if self.lr_log:
            with open(self.lr_log, "a") as f:
                f.write(json.dumps({"step": self.global_step, **record}) + "\n")

    def _log_lr(self, opt):
        group = opt.optimizer.param_groups[0]
        self._log(lr=group["lr"], train_mode=group.get("train_mode"))

    def training_step(self, batch, batch_idx):
        (real,) = batch
        bce = nn.functional.binary_cross_entropy_with_logits
        # Two optimizers (generator, discriminator) unpack as GAN scripts do; one is both.
        opts = list(self.optimizers()) if self.n_optimizers == 2 else [self.optimizers()]
        fake = self.generator(torch.randn(real.shape[0], 4))
        d_loss = bce(self.discriminator(real), torch.ones(real.shape[0], 1)) + bce(
            self.discriminator(fake.detach()), torch.zeros(real.shape[0], 1)
        )
        g_loss = bce(self.discriminator(fake), torch.ones(real.shape[0], 1))
        loss = d_loss + g_loss
        if self.global_step == self.nan_at_step:
            loss = loss * float("nan")
        for opt in opts:
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in opts:
            self._log_lr(opt)
            opt.step()
        self.log("train_loss", loss)

    def validation_step(self, batch, batch_idx):
        (real,) = batch
        g = torch.Generator().manual_seed(batch_idx)
        fake = self.generator(torch.randn(real.shape[0], 4, generator=g))
        # How far the generated samples' moments are from the data's: lower is better.
        gap = (fake.mean(0) - real.mean(0)).pow(2).mean() + (fake.std(0) - real.std(0)).pow(2).mean()
        self.log("val_loss", gap)
        if batch_idx == 0:
            self._log(validation=True, train_mode=self.optimizers().optimizer.param_groups[0].get("train_mode"))

    def configure_optimizers(self):
        if self.n_optimizers == 2:
            return [torch.optim.Adam(self.generator.parameters()), torch.optim.Adam(self.discriminator.parameters())]
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class GanData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.batch_size = batch_size
        g = torch.Generator().manual_seed(0)
        x = torch.randn(320, 8, generator=g) * 0.5 + 1.0
        self.train_set, self.val_set = TensorDataset(x[:256]), TensorDataset(x[256:])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=64)
