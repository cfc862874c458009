"""Schedule-free optimizers inside a real Lightning fit: what ``ScheduleFreeSwitch`` promises.

Schedule-free AdamW trains at y and is meant to be evaluated at the averaged point x, with
``y = (1 - beta1) * z + beta1 * x`` (Defazio et al. 2024; facebookresearch/schedule_free,
``AdamWScheduleFree.eval`` moves p from y to x with ``lerp(z, 1 - 1/beta1)``). The fast
implementation stores only y (in the parameters) and z (in the state), so x is recovered as
``(y - (1 - beta1) * z) / beta1``; the first test checks that formula against the authors'
reference implementation, which stores x explicitly.
"""

from __future__ import annotations

import copy
from pathlib import Path

import lightning.pytorch as pl
import pytest
import schedulefree
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tunekit.recipes import Recipe
from tunekit.training.callbacks import ScheduleFreeSwitch
from tunekit.training.use_recipe import UseRecipe

STEPS, VAL_EVERY, BN_BATCHES = 30, 10, 4


def x_from(y: torch.Tensor, z: torch.Tensor, beta1: float) -> torch.Tensor:
    """The averaged point x from the fast implementation's y (the parameter) and z (its state)."""
    return (y - (1 - beta1) * z) / beta1


@pytest.mark.parametrize(
    ("fast", "reference", "kwargs", "beta"),
    [
        (schedulefree.AdamWScheduleFree, schedulefree.AdamWScheduleFreeReference, {"betas": (0.9, 0.999)}, 0.9),
        (schedulefree.SGDScheduleFree, schedulefree.SGDScheduleFreeReference, {"momentum": 0.85}, 0.85),
    ],
    ids=["adamw", "sgd"],
)
def test_x_recovered_from_y_and_z_matches_the_reference_x(fast, reference, kwargs, beta) -> None:
    """Oracle: the authors' ``*Reference`` optimizers keep x in their state (schedule_free repo)."""
    torch.manual_seed(0)
    w_fast = nn.Parameter(torch.randn(5, 3))
    w_ref = nn.Parameter(w_fast.detach().clone())
    common = {"lr": 0.05, "weight_decay": 0.01, "warmup_steps": 4, **kwargs}
    opt_fast, opt_ref = fast([w_fast], **common), reference([w_ref], **common)
    opt_fast.train(), opt_ref.train()
    for _ in range(12):
        g = torch.randn(5, 3)
        w_fast.grad, w_ref.grad = g.clone(), g.clone()
        opt_fast.step(), opt_ref.step()
        x = x_from(w_fast.detach(), opt_fast.state[w_fast]["z"], beta)
        torch.testing.assert_close(x, opt_ref.state[w_ref]["x"], atol=1e-6, rtol=1e-5)
    opt_fast.eval()
    torch.testing.assert_close(w_fast.detach(), opt_ref.state[w_ref]["x"], atol=1e-6, rtol=1e-5)


# --- a real fit ------------------------------------------------------------------------------------


class Regressor(pl.LightningModule):
    """A small MLP without dropout (so runs with and without validation can match exactly)."""

    def __init__(self, recipe: Recipe, batchnorm: bool = False):
        super().__init__()
        torch.manual_seed(0)  # the same initial weights in every run
        self.recipe = recipe
        norm = nn.BatchNorm1d(16) if batchnorm else nn.LayerNorm(16)
        # No bias before BatchNorm: its gradient is rounding noise, which Adam scales up to full steps,
        # so it would differ between any two runs whose arithmetic differs in the last bit.
        self.net = nn.Sequential(nn.Linear(8, 16, bias=not batchnorm), norm, nn.Tanh(), nn.Linear(16, 1))
        self.validated: list[dict] = []  # what validation_step saw
        self.trained_from: dict[int, list[torch.Tensor]] = {}  # weights each training step started at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        self.trained_from[self.global_step] = [p.detach().clone() for p in self.parameters()]
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            bn = [m for m in self.modules() if isinstance(m, nn.BatchNorm1d)]
            self.validated.append(
                {
                    "step": self.global_step,
                    "params": [p.detach().clone() for p in self.parameters()],
                    "bn": [(m.running_mean.clone(), m.running_var.clone(), m.momentum) for m in bn],
                    "training_flags": [m.training for m in self.modules()],
                }
            )
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return UseRecipe.configure_optimizers(self, self.recipe)


def data() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 8, generator=g)
    y = torch.tanh(x @ torch.randn(8, 1, generator=g)) + 0.1
    train = DataLoader(TensorDataset(x[:896], y[:896]), batch_size=16, shuffle=True)  # 56 batches: one epoch
    return train, DataLoader(TensorDataset(x[896:], y[896:]), batch_size=64)


def recipe() -> Recipe:
    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": {"name": "schedulefree_adamw", "lr": 1e-2, "weight_decay": 0.01},
            "schedule": {"name": "none", "warmup_fraction": 0.1},
            "training": {"max_steps": STEPS},
        }
    )


class Probe(pl.Callback):
    """Records y and z after every optimizer step (the optimizer is in train mode there), the BN
    statistics training left behind, and each training batch."""

    def __init__(self):
        self.y: dict[int, list[torch.Tensor]] = {}
        self.z: dict[int, list[torch.Tensor]] = {}
        self.bn_before_eval: dict[int, list[torch.Tensor]] = {}
        self.batches: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(batch[0].clone())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        opt = trainer.optimizers[0]
        assert opt.param_groups[0]["train_mode"]
        step = trainer.global_step
        self.y[step] = [p.detach().clone() for p in pl_module.parameters()]
        self.z[step] = [opt.state[p]["z"].clone() for p in pl_module.parameters()]
        bns = [m for m in pl_module.modules() if isinstance(m, nn.BatchNorm1d)]
        self.bn_before_eval[step] = [m.running_mean.clone() for m in bns]

    def x(self, step: int, beta1: float = 0.9) -> list[torch.Tensor]:
        return [x_from(y, z, beta1) for y, z in zip(self.y[step], self.z[step], strict=True)]


class SaveAt(pl.Callback):
    """``trainer.save_checkpoint`` from another callback, mid-run, away from any validation."""

    def __init__(self, step: int, path: Path):
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def fit(model: Regressor, callbacks: list, validate: bool = True, **kwargs) -> pl.Trainer:
    pl.seed_everything(0, verbose=False)
    train, val = data()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=STEPS,
        val_check_interval=VAL_EVERY,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0 if validate else 0,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        **{"enable_checkpointing": False, **kwargs},
    )
    trainer.fit(model, train, val)
    return trainer


def assert_all_close(a: list[torch.Tensor], b: list[torch.Tensor], **tol) -> None:
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, **{"atol": 1e-6, "rtol": 1e-5, **tol})


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(a, b, strict=True))


def test_validation_and_checkpoints_see_x_and_training_goes_on_at_y(tmp_path: Path) -> None:
    probe = Probe()
    model = Regressor(recipe())
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "every5", every_n_train_steps=5, save_top_k=-1)
    # Probe first (it must see y); SaveAt before ScheduleFreeSwitch, so it saves in on_train_batch_end
    # before the switch's own on_train_batch_end: the save must still be at x.
    callbacks = [probe, SaveAt(7, tmp_path / "mid.ckpt"), ScheduleFreeSwitch(), checkpoints]
    fit(model, callbacks, enable_checkpointing=True)

    # Validation ran on x, not y.
    assert [v["step"] for v in model.validated] == [10, 20, 30]
    for seen in model.validated:
        assert_all_close(seen["params"], probe.x(seen["step"]))
        assert max_diff(seen["params"], probe.y[seen["step"]]) > 1e-4

    # Every training step started from the y the previous step left, validation and saves between.
    for step in range(1, STEPS):
        assert_all_close(model.trained_from[step], probe.y[step])

    # Checkpoints written mid-run hold x and an optimizer in eval mode.
    names = [n for n, _ in model.named_parameters()]
    for path, step in [
        (tmp_path / "mid.ckpt", 7),
        *((tmp_path / "every5" / f"epoch=0-step={s}.ckpt", s) for s in (5, 15)),
    ]:
        ckpt = torch.load(path, weights_only=False)
        assert ckpt["global_step"] == step
        assert_all_close([ckpt["state_dict"][n] for n in names], probe.x(step))
        assert not any(g["train_mode"] for g in ckpt["optimizer_states"][0]["param_groups"])

    # The same run without any validation or save ends at the same weights.
    plain = Regressor(recipe())
    fit(plain, [ScheduleFreeSwitch()], validate=False)
    assert_all_close(list(plain.parameters()), list(model.parameters()))
    # ... which are x: fit ends in eval mode.
    assert_all_close(list(model.parameters()), probe.x(STEPS))


def test_batchnorm_statistics_are_recomputed_at_x_before_validation() -> None:
    """Defazio et al. 2024 and the facebookresearch/schedule_free README: with BatchNorm, recompute statistics in train mode with the eval weights before
    evaluating. Oracle: ``torch.optim.swa_utils.update_bn``'s procedure (reset, momentum None,
    train mode) on a copy carrying x, over the same last training batches."""
    probe = Probe()
    model = Regressor(recipe(), batchnorm=True)
    fit(model, [probe, ScheduleFreeSwitch(bn_batches=BN_BATCHES)])
    assert [v["step"] for v in model.validated] == [10, 20, 30]
    for seen in model.validated:
        step = seen["step"]
        reference = copy.deepcopy(model)
        with torch.no_grad():
            for p, x in zip(reference.parameters(), probe.x(step), strict=True):
                p.copy_(x)
        bn = reference.net[1]
        bn.reset_running_stats()
        bn.momentum = None
        reference.train()
        with torch.no_grad():
            for inputs in probe.batches[step - BN_BATCHES : step]:
                reference(inputs)
        mean, var, momentum = seen["bn"][0]
        torch.testing.assert_close(mean, bn.running_mean)
        torch.testing.assert_close(var, bn.running_var)
        assert max_diff([mean], probe.bn_before_eval[step]) > 1e-4  # the refresh did change them
        assert momentum == 0.1 and not any(seen["training_flags"])  # momentum and eval mode restored


def test_batchnorm_refresh_does_not_change_training() -> None:
    """The refresh forks the RNG and only touches BN buffers: the weights end where a run without
    validation ends."""
    with_val = Regressor(recipe(), batchnorm=True)
    fit(with_val, [ScheduleFreeSwitch(bn_batches=BN_BATCHES)])
    without = Regressor(recipe(), batchnorm=True)
    fit(without, [ScheduleFreeSwitch(bn_batches=BN_BATCHES)], validate=False)
    assert_all_close(list(with_val.parameters()), list(without.parameters()))


class RecordingStrategy(SingleDeviceStrategy):
    """Lightning's own single-device strategy, noting when it tears down (moves the module to CPU)."""

    def __init__(self, events: list, **kwargs):
        super().__init__(**kwargs)
        self.events = events

    def teardown(self) -> None:
        self.events.append(("teardown", None, None))
        super().teardown()


class RecordingRegressor(Regressor):
    """Records every BatchNorm refresh forward: the batch's and the module's device, at that moment."""

    def __init__(self, recipe: Recipe, events: list):
        super().__init__(recipe, batchnorm=True)
        self.events = events

    def tunekit_bn_forward(self, batch) -> None:
        self.events.append(("refresh", batch[0].device, next(self.parameters()).device))
        self(batch[0])


def test_final_batchnorm_refresh_runs_before_teardown_on_the_modules_device() -> None:
    """Issue #10, defect 5: Lightning 2.6 (trainer.py `_run`) calls on_train_end, then
    Strategy.teardown() (module to CPU), then on_fit_end; the last refresh must come before teardown."""
    events: list = []
    model = RecordingRegressor(recipe(), events)
    fit(
        model,
        [ScheduleFreeSwitch(bn_batches=BN_BATCHES)],
        validate=False,
        strategy=RecordingStrategy(events, device=torch.device("cpu")),
    )
    kinds = [kind for kind, _, _ in events]
    assert "refresh" in kinds and "teardown" in kinds
    assert max(i for i, k in enumerate(kinds) if k == "refresh") < kinds.index("teardown")
    assert all(batch == module for kind, batch, module in events if kind == "refresh")
