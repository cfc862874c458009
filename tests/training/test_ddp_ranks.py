"""One trial over two CPU ranks (gloo), launched by ``RankGroup``: shared stops, metric equal to one process.

Real ranks (``python -m tunekit.training.ranks``), a real Optuna study with a real pruner; the tiny
test model writes each rank's start and stop step to a file (``steps_file``).
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from conftest import TINY

from tunekit.recipes import Recipe
from tunekit.training.fit import RunOptions, run_fit
from tunekit.training.ranks import RankGroup
from tunekit.training.script import ScriptSpec, load_script

pytestmark = pytest.mark.slow  # each trial starts a second Python process with torch and Lightning

# Two ranks reduce in another order than one process; measured: at most 2.5e-7 relative (float32).
TOLERANCE = 1e-5
DDP = RunOptions(accelerator="cpu", devices=2, strategy="ddp")


def recipe(lr: float = 3e-3, max_steps: int = 12, batch_size: int = 16) -> Recipe:
    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": {"name": "adamw", "lr": lr, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1},
            "schedule": {"name": "cosine", "warmup_fraction": 0.1},
            "training": {"max_steps": max_steps, "batch_size": batch_size, "seed": 3, "evaluations": 3},
        }
    )


def notes(path: Path) -> list[tuple[str, int, int]]:
    """The (what, rank, value) lines the model wrote: ("start", rank, pid), ("end", rank, step)."""
    lines = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [(what, int(rank), int(value)) for what, rank, value in lines]


def test_two_ranks_give_the_one_process_metric(tmp_path):
    steps = tmp_path / "steps.txt"
    script = load_script(ScriptSpec(str(TINY), model_args={"steps_file": str(steps)}))
    trials = [recipe(), recipe(lr=1e-2, batch_size=32)]
    single = [run_fit(r, script, "val_loss", options=RunOptions(accelerator="cpu")) for r in trials]
    steps.unlink()
    with RankGroup(script, "val_loss", DDP) as group:
        ranked = [group.run_fit(r) for r in trials]
    for one, two in zip(single, ranked, strict=True):
        assert [s for s, _ in one.history] == [s for s, _ in two.history] == [4, 8, 12]
        for (_, a), (_, b) in zip(one.history, two.history, strict=True):
            assert math.isclose(a, b, rel_tol=TOLERANCE), (one.history, two.history)
    # both trials ran on the same two processes, and every rank ran every step
    starts = [n for n in notes(steps) if n[0] == "start"]
    assert sorted(r for _, r, _ in starts) == [0, 0, 1, 1] and len({p for _, r, p in starts if r == 1}) == 1
    assert sorted(n for n in notes(steps) if n[0] == "end") == [("end", 0, 12)] * 2 + [("end", 1, 12)] * 2


def test_a_pruned_trial_stops_every_rank_at_the_same_step(tmp_path):
    steps = tmp_path / "steps.txt"
    script = load_script(ScriptSpec(str(TINY), model_args={"steps_file": str(steps)}))
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'p.db'}", pruner=optuna.pruners.ThresholdPruner(upper=0.0)
    )  # every value is above 0: pruned at its first report
    trial = study.ask()

    def on_eval(step: int, value: float) -> None:
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")

    with RankGroup(script, "val_loss", DDP) as group:
        with pytest.raises(optuna.TrialPruned, match="pruned at step 4"):
            group.run_fit(recipe(), on_eval=on_eval)
        after = group.run_fit(recipe())  # the same ranks take the next trial (so rank 1 has written its end)
    ends = [n for n in notes(steps) if n[0] == "end"]
    assert sorted(ends[:2]) == [("end", 0, 4), ("end", 1, 4)]  # neither rank trained on after the prune
    assert after.steps == 12 and sorted(ends[2:]) == [("end", 0, 12), ("end", 1, 12)]
    assert len({p for what, r, p in notes(steps) if what == "start" and r == 1}) == 1


ITERABLE = """
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset


class Stream(IterableDataset):
    def __iter__(self):
        for _ in range(64):
            yield torch.randn(4), torch.randn(1)


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def train_dataloader(self):
        return DataLoader(Stream(), batch_size=8)

    def val_dataloader(self):
        return DataLoader(Stream(), batch_size=8)
"""


def test_an_iterable_dataset_is_refused_before_the_study(write_script, storage_url):
    from tunekit.errors import BadInput
    from tunekit.service.search import SearchRequest, prepare_search

    request = SearchRequest(ScriptSpec(str(write_script(ITERABLE))), "it", storage_url, max_steps=4, options=DDP)
    with pytest.raises(BadInput, match="^a DataLoader of an IterableDataset .* cannot be split over --devices"):
        prepare_search(request)
    assert optuna.get_all_study_names(storage_url) == []
