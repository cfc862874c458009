"""What a tunekit trial costs against a plain PyTorch loop and a plain Lightning ``Trainer.fit`` (issue #11).

Usage (from the repository root)::

    python benchmarks/overhead.py                    # examples/charlm.py defaults, 120 steps, 3 rounds
    python benchmarks/overhead.py --steps 200 --rounds 5 --threads 2

The same model (``examples/charlm.py`` at its default size), data (its DataModule, batch 32),
optimizer and schedule (AdamW at 3e-3 with cosine, built by tunekit's own factory for all of them),
seed, steps and validation points (``--evaluations`` evenly spaced, as a trial does) run four ways:

- ``plain loop``: a hand-written PyTorch loop (forward, backward, step, scheduler step, validation);
- ``lightning``: ``Trainer.fit`` with the module's ``configure_optimizers`` returning that optimizer
  (logger, checkpointing, progress bar and model summary off, no sanity check);
- ``run_fit``: tunekit's trial body, in this process;
- ``search``: ``tunekit search --trials 1`` end to end, in a fresh process on a fresh SQLite file.

Steps/s are timed from step ``--warmup`` to the last step (validation included, the same in all),
so set-up and the first steps (lazy allocation) are left out; the methods alternate within each
round (A B C D A B C D ...) so load from other processes falls on all alike, and medians are
printed. The fixed per-trial overhead of a running search is the trial's wall time in the study
(Optuna's start to complete) minus its steps at ``run_fit``'s steady step time; the process
overhead is the ``search`` command's wall time minus the trial's (start-up, imports, prior
measurement, the one-batch check, study creation).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "charlm.py"
LR = 3e-3


def recipe_of(steps: int, evaluations: int):
    from tunekit.recipes import Recipe

    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": {"name": "adamw", "lr": LR},
            "schedule": {"name": "cosine"},
            "training": {"max_steps": steps, "batch_size": 32, "evaluations": evaluations},
        }
    )


def rate(stamps: list[float], warmup: int) -> float:
    """Steps per second between the end of step ``warmup`` and the end of the last step."""
    return (len(stamps) - warmup) / (stamps[-1] - stamps[warmup - 1])


def plain_loop(script, recipe, warmup: int) -> float:
    import lightning.pytorch as pl
    import torch

    from tunekit.training.optimization import configure_optimizers

    pl.seed_everything(recipe.training.seed, workers=True, verbose=False)
    model, data = script.build_model(), script.build_data(recipe.training.batch_size)
    data.setup("fit")
    configured = configure_optimizers(model, recipe)
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    interval, steps, stamps = recipe.training.validation_interval, recipe.training.max_steps, []
    model.train()
    while len(stamps) < steps:
        for batch in data.train_dataloader():
            loss = model._loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if (len(stamps) + 1) % interval == 0:
                model.eval()
                with torch.no_grad():
                    torch.stack([model._loss(b) for b in data.val_dataloader()]).mean()
                model.train()
            stamps.append(time.perf_counter())
            if len(stamps) == steps:
                break
    return rate(stamps, warmup)


def plain_lightning(script, recipe, warmup: int) -> float:
    import types

    import lightning.pytorch as pl

    from tunekit.training.optimization import configure_optimizers

    stamps: list[float] = []

    class Stamp(pl.Callback):
        def on_train_batch_end(self, *args) -> None:
            stamps.append(time.perf_counter())

    pl.seed_everything(recipe.training.seed, workers=True, verbose=False)
    model, data = script.build_model(), script.build_data(recipe.training.batch_size)
    model.configure_optimizers = types.MethodType(lambda m: configure_optimizers(m, recipe), model)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=recipe.training.max_steps, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[Stamp()],
        val_check_interval=recipe.training.validation_interval, check_val_every_n_epoch=None, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    return rate(stamps, warmup)


def tunekit_run_fit(script, recipe, warmup: int) -> float:
    from tunekit.training.fit import RunOptions, run_fit

    stamps: list[float] = []
    run_fit(
        recipe, script, "val_loss", on_step=lambda s, t: stamps.append(time.perf_counter()), options=RunOptions("cpu")
    )
    return rate(stamps, warmup)


def tunekit_search(steps: int, evaluations: int, threads: int) -> tuple[float, float]:
    """(wall time of ``tunekit search --trials 1``, the trial's wall time in the study), seconds."""
    import optuna

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/overhead.db"
        command = [
            sys.executable, "-m", "tunekit", "search", str(SCRIPT), "--study", "overhead", "--storage", url,
            "--trials", "1", "--max-steps", str(steps), "--evaluations", str(evaluations), "--optimizers", "adamw",
            "--schedules", "cosine", "--prior", "none", "--accelerator", "cpu",
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=folder)
        wall = time.perf_counter() - start
        (trial,) = optuna.load_study(study_name="overhead", storage=url).get_trials()
        return wall, (trial.datetime_complete - trial.datetime_start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the steps/s timing")
    parser.add_argument("--evaluations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all four methods, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared box)")
    args = parser.parse_args()

    import torch

    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import ScriptSpec, load_script

    silence_lightning()
    torch.set_num_threads(args.threads)
    script = load_script(ScriptSpec(str(SCRIPT)))
    recipe = recipe_of(args.steps, args.evaluations)
    methods = {"plain loop": plain_loop, "lightning": plain_lightning, "run_fit": tunekit_run_fit}
    rates: dict[str, list[float]] = {name: [] for name in methods}
    walls: list[tuple[float, float]] = []
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, method in methods.items():
            rates[name].append(method(script, recipe, args.warmup))
        walls.append(tunekit_search(args.steps, args.evaluations, args.threads))
    load = max(load, os.getloadavg()[0])

    med = {name: statistics.median(values) for name, values in rates.items()}
    n_params = sum(p.numel() for p in script.build_model().parameters())
    print(
        f"examples/charlm.py ({n_params / 1e3:.0f}k parameters, batch 32), {args.steps} steps, {args.evaluations} "
        f"validations, {args.threads} thread(s), {args.rounds} interleaved rounds, load average up to {load:.2f}"
    )
    print("| method | steps/s (median) | vs plain loop |\n|---|---|---|")
    for name, value in med.items():
        print(f"| {name} | {value:.2f} | {value / med['plain loop']:.3f}x |")
    step = 1 / med["run_fit"]
    in_search = statistics.median(trial - args.steps * step for _, trial in walls)
    process = statistics.median(wall - trial for wall, trial in walls)
    search_rate = args.steps / statistics.median(trial for _, trial in walls)
    print(
        f"| search --trials 1 (whole trial, set-up included) | {search_rate:.2f} | {search_rate / med['plain loop']:.3f}x |"
    )
    print(f"\nfixed overhead per trial inside a running search: {in_search * 1e3:.0f} ms")
    print(f"process overhead of one search command (start-up, measurement, check, study): {process:.2f} s")


if __name__ == "__main__":
    main()
