"""What makes one Lightning DDP run one Optuna trial on every rank: shared decisions and shared data order.

Every rank of a trial runs these callbacks in the same hooks, so all of them join the same
collectives and stop at the same step. Rank 0 alone talks to the study (``on_eval``,
``should_stop``); what it decides is broadcast.

Why not optuna-integration's ``TorchDistributedTrial`` with its ``PyTorchLightningPruningCallback``
(optuna issue #6043, optuna-integration #223): the callback calls ``report``/``should_prune`` only
on ``trainer.is_global_zero``, while every ``TorchDistributedTrial`` method is a collective
broadcast, so rank 0 blocks in a broadcast the other ranks never join (they wait in
``strategy.broadcast(should_stop)``): a hang or mismatched collectives. Its DDP path also reads
``trial.study._storage`` and ``trial._trial_id``, which the wrapper (None on ranks > 0) does not
have, and it assumes ``ddp_spawn``, where each process holds a real ``Trial`` (optuna-integration
#59). So here rank 0 reports through the ordinary trial and broadcasts the decision through the
Lightning strategy; the other ranks never see Optuna at all.

Metric equality with one process (tolerance: relative 1e-5, float32 reduction order): Lightning
under DDP swaps in ``DistributedSampler(shuffle=True)`` and re-seeds after the model is built
(``DDPStrategy.setup_distributed`` calls ``reset_seed``), which gives another data order, another
experiment (0.8-18 % apart on the tiny model). Instead the Trainer runs with
``use_distributed_sampler=False``, every rank draws the user's own global batches in the same order
(``replay_rng`` restores the RNG state of the moment before ``fit``) and keeps its slice
``batch[rank::world]`` (``shard_loaders``). An ``IterableDataset`` cannot be cut this way.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from tunekit.errors import BadInput
from tunekit.training.callbacks import Diverged, EvalReporter, MetricNotLogged

SHARED_ATTR = "tunekit_shared_stop"


class StoppedByRankZero(Exception):
    """On ranks > 0: rank 0 stopped the trial (pruned, interrupted); every rank stopped at the same step."""


def mark_shared(exc: BaseException) -> BaseException:
    """Mark ``exc`` as raised on every rank at the same point: the process group is still usable."""
    setattr(exc, SHARED_ATTR, True)
    return exc


def group_intact(exc: BaseException) -> bool:
    """Whether every rank stopped together on ``exc`` (else a rank is stuck or gone: end the group)."""
    return isinstance(exc, (Diverged, MetricNotLogged)) or getattr(exc, SHARED_ATTR, False)


class SharedEvalReporter(EvalReporter):
    """``EvalReporter`` whose value is the mean over ranks and whose stop decision comes from rank 0.

    Users log their metric without ``sync_dist``, and each rank validates only its shard, so the
    value is reduced here. Rank 0 calls ``on_eval``; anything it raises (``optuna.TrialPruned``)
    is broadcast as a stop, and ``stop`` holds what ``run_fit`` raises after ``fit`` on each rank.
    """

    def __init__(self, metric: str, on_eval: Any = None):
        super().__init__(metric, on_eval)
        self.stop: BaseException | None = None

    def read(self, trainer: pl.Trainer, value: Any) -> float:
        local = value.detach().clone().to(trainer.strategy.root_device, torch.float32)
        return float(trainer.strategy.reduce(local, reduce_op="mean"))

    def report(self, trainer: pl.Trainer, step: int, value: float) -> None:
        decision = None
        if trainer.is_global_zero:
            try:
                super().report(trainer, step, value)
            except Exception as exc:  # noqa: BLE001 - rank 0's verdict (a prune); raised after fit on rank 0
                decision = exc
        if trainer.strategy.broadcast(decision is not None, src=0):
            trainer.should_stop = True
            self.stop = mark_shared(decision if decision is not None else StoppedByRankZero())


class SharedStepGuard(pl.Callback):
    """Per step, one collective: any rank's non-finite loss, or rank 0's ``should_stop()`` (Ctrl-C).

    A non-finite loss raises ``Diverged`` on every rank before the backward pass (as
    ``DivergenceGuard`` does in one process); a stop sets ``trainer.should_stop`` everywhere, so all
    ranks finish the same step. Costs one all-reduce of two numbers per batch (0.3 ms on CPU gloo).
    """

    def __init__(self, should_stop: Any = None, interrupted: type[BaseException] = Exception):
        self.should_stop = should_stop
        self.interrupted = interrupted
        self.stop: BaseException | None = None

    def on_before_backward(self, trainer: pl.Trainer, pl_module: Any, loss: Any) -> None:
        wants_stop = trainer.is_global_zero and self.should_stop is not None and self.should_stop()
        flags = torch.tensor(
            [float(not bool(loss.detach().isfinite().all())), float(wants_stop)], device=trainer.strategy.root_device
        )
        diverged, stop = trainer.strategy.reduce(flags, reduce_op="sum").tolist()
        if diverged:
            raise mark_shared(Diverged(trainer.global_step, "training loss"))
        if stop and self.stop is None:
            trainer.should_stop = True
            self.stop = mark_shared(self.interrupted() if trainer.is_global_zero else StoppedByRankZero())


class ReplayRng(pl.Callback):
    """Restore, in ``setup`` (after ``DDPStrategy.setup_distributed`` re-seeded), the RNG state of the
    moment the callback was made, so each rank draws the data order of a one-process run."""

    def __init__(self) -> None:
        from lightning.fabric.utilities.seed import _collect_rng_states

        self._state = _collect_rng_states()

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        from lightning.fabric.utilities.seed import _set_rng_states

        _set_rng_states(self._state)


class _Slice:
    """Batch sampler of rank ``rank``: ``batch[rank::world]`` of each batch of the user's batch sampler."""

    def __init__(self, inner: Any, rank: int, world: int):
        self.inner, self.rank, self.world = inner, rank, world

    def __iter__(self) -> Any:
        for batch in self.inner:
            yield batch[self.rank :: self.world]

    def __len__(self) -> int:
        return len(self.inner)


def _sharded(loader: Any, rank: int, world: int) -> Any:
    from torch.utils.data import DataLoader, IterableDataset

    if loader is None or isinstance(loader, (list, tuple, dict)):
        if isinstance(loader, dict):
            return {k: _sharded(v, rank, world) for k, v in loader.items()}
        return loader if loader is None else type(loader)(_sharded(v, rank, world) for v in loader)
    if getattr(loader, "batch_sampler", None) is None or isinstance(loader.dataset, IterableDataset):
        raise BadInput(
            "a DataLoader of an IterableDataset (or without a batch sampler) cannot be split over --devices by tunekit; "
            "give the script a map-style dataset, or run with --devices 1."
        )
    return DataLoader(
        loader.dataset,
        batch_sampler=_Slice(loader.batch_sampler, rank, world),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers,
    )


def check_shardable(script: Any, batch_size: int | None) -> None:
    """Refuse, before a study starts, a script whose training batches cannot be cut into ranks' slices.

    Raises:
        BadInput: the training DataLoader has no batch sampler (an ``IterableDataset``).
    """
    model, data = script.probe(batch_size)
    if data is not None:
        data.setup("fit")
    _sharded((data if data is not None else model).train_dataloader(), 0, 1)


def shard_loaders(owner: Any, rank: int, world: int) -> None:
    """Make ``owner``'s (DataModule's or module's) train and val loaders yield this rank's slices."""
    for name in ("train_dataloader", "val_dataloader"):
        make = getattr(owner, name)

        def sharded(make: Any = make) -> Any:
            return _sharded(make(), rank, world)

        setattr(owner, name, sharded)


def ddp_settings() -> dict[str, Any]:
    """Trainer settings of a rank launched by tunekit: the environment is ours, the sampler the user's.

    ``LightningEnvironment`` explicitly: inside an ``sbatch`` job ``SLURMEnvironment`` would win and
    expect ``SLURM_NTASKS`` ranks.
    """
    from lightning.fabric.plugins.environments import LightningEnvironment

    return {"plugins": [LightningEnvironment()], "use_distributed_sampler": False}
