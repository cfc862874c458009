"""What a tunekit trial costs against a plain PyTorch loop and a plain Lightning ``Trainer.fit`` (issue #11).

Usage (from the repository root)::

    python benchmarks/overhead.py                    # examples/charlm.py defaults, 120 steps, 3 rounds
    python benchmarks/overhead.py --steps 200 --rounds 5 --threads 2

It takes about 2 minutes on 2 cores with the defaults.

The same model (``examples/charlm.py`` at its default size), data (its DataModule, batch 32),
optimizer and schedule (AdamW at 3e-3 with cosine, built by tunekit's own factory for all of them),
seed, steps and validation points (``--evaluations`` evenly spaced, as a trial does) run four ways:

- ``plain loop``: a hand-written PyTorch loop (forward, backward, step, scheduler step, validation);
- ``lightning``: ``Trainer.fit`` with the module's ``configure_optimizers`` returning that optimizer
  (logger, checkpointing, progress bar and model summary off, no sanity check);
- ``run_fit``: tunekit's trial body, in this process;
- ``search``: ``tunekit search --trials 4`` end to end, in a fresh process on a fresh SQLite file
  (4 trials: too few to prune any, so each trains every step unless it diverges; a space file
  holds the batch at 32 and clipping off, as in the other methods).

Steps/s are timed from step ``--warmup`` to the last step (validation included, the same in all),
so set-up and the first steps (lazy allocation) are left out; the methods alternate within each
round (A B C D A B C D ...) so load from other processes falls on all alike, and medians are
printed. A running search's time per trial is the time from one trial's end to the next one's
(the mean over the full trials after the first): it holds everything a trial costs in a search
that is already running (the wait for a place, queueing, sampling, every study read and write, the
DataModule and Trainer set-up, the first steps, validation, the view). The fixed overhead per
trial is measured apart, in this process, by ``fixed_overhead`` (its docstring says how); the
process overhead is the command's wall time minus its trials at that time per trial (start-up,
imports, prior measurement, the one-batch check, study creation).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "charlm.py"
LR = 3e-3
SEARCH_TRIALS = 4  # below the pruner's 4 startup trials: no trial is pruned (one may still diverge)


@dataclass(frozen=True)
class Setting:
    """Where and with what the four methods train: the CPU defaults here, the GPU in ``gpu_check.py``."""

    accelerator: str = "cpu"
    precision: str = "32-true"
    family: str = "adamw"
    schedule: str = "cosine"

    @property
    def device(self) -> str:
        return "cuda" if self.accelerator in ("gpu", "cuda") else "cpu"

    def options(self):
        from tunekit.training.fit import RunOptions

        return RunOptions.parse(accelerator=self.accelerator, precision=self.precision)

    def autocast(self):
        """The plain loop's mixed precision, as Lightning's ``bf16-mixed``/``16-mixed`` plugins do."""
        import torch

        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.precision)
        return torch.autocast(self.device, dtype=dtype) if dtype else contextlib.nullcontext()

    def search_args(self) -> list[str]:
        return ["--optimizers", self.family, "--schedules", self.schedule, "--accelerator", self.accelerator,
                "--precision", self.precision]  # fmt: skip


def recipe_of(steps: int, evaluations: int, setting: Setting = Setting()):
    from tunekit.recipes import Recipe

    return Recipe.from_dict(
        {
            "tunekit_recipe": 1,
            "optimizer": {"name": setting.family, "lr": LR},
            "schedule": {"name": "none" if setting.family.startswith("schedulefree") else setting.schedule},
            "training": {"max_steps": steps, "batch_size": 32, "evaluations": evaluations},
        }
    )


def rate(stamps: list[float], warmup: int) -> float:
    """Steps per second between the end of step ``warmup`` and the end of the last step."""
    return (len(stamps) - warmup) / (stamps[-1] - stamps[warmup - 1])


def plain_loop(script, recipe, warmup: int, setting: Setting = Setting()) -> float:
    import lightning.pytorch as pl
    import torch

    from tunekit.training.optimization import configure_optimizers

    pl.seed_everything(recipe.training.seed, workers=True, verbose=False)
    model, data = script.build_model().to(setting.device), script.build_data(recipe.training.batch_size)
    data.setup("fit")
    configured = configure_optimizers(model, recipe)
    optimizer, scheduler = configured["optimizer"], configured.get("lr_scheduler", {}).get("scheduler")
    switch = recipe.schedule_free  # evaluate at the averaged point (facebookresearch/schedule_free README)
    interval, steps, stamps = recipe.training.validation_interval, recipe.training.max_steps, []

    def on_device(batch):
        return [t.to(setting.device, non_blocking=True) for t in batch]

    def mode(training: bool) -> None:
        model.train(training)
        if switch:
            optimizer.train() if training else optimizer.eval()

    mode(True)
    while len(stamps) < steps:
        for batch in data.train_dataloader():
            with setting.autocast():
                loss = model._loss(on_device(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if (len(stamps) + 1) % interval == 0:
                mode(False)
                with torch.no_grad(), setting.autocast():
                    torch.stack([model._loss(on_device(b)) for b in data.val_dataloader()]).mean().item()
                mode(True)
            if setting.device == "cuda":
                torch.cuda.synchronize()  # a step ends when the GPU has done it
            stamps.append(time.perf_counter())
            if len(stamps) == steps:
                break
    return rate(stamps, warmup)


def plain_lightning(script, recipe, warmup: int, setting: Setting = Setting()) -> float:
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
    callbacks: list = [Stamp()]
    if recipe.schedule_free:  # the same train/eval switch as a trial (facebookresearch/schedule_free)
        from tunekit.training.callbacks import ScheduleFreeSwitch

        callbacks.append(ScheduleFreeSwitch())
    trainer = pl.Trainer(
        accelerator=setting.accelerator, precision=setting.precision, devices=1, max_steps=recipe.training.max_steps,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=callbacks, val_check_interval=recipe.training.validation_interval, check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    return rate(stamps, warmup)


def tunekit_run_fit(script, recipe, warmup: int, setting: Setting = Setting()) -> float:
    from tunekit.training.fit import run_fit

    stamps: list[float] = []
    run_fit(
        recipe, script, "val_loss", on_step=lambda s, t: stamps.append(time.perf_counter()), options=setting.options()
    )
    return rate(stamps, warmup)


METHODS = {"plain loop": plain_loop, "lightning": plain_lightning, "run_fit": tunekit_run_fit}


def same_work_space(folder: str) -> Path:
    """A space file holding what changes a step's work at the other methods' values: batch 32 (other
    batch sizes train other step counts, issue #10) and no gradient clipping (a norm per step)."""
    path = Path(folder) / "same_work.yaml"
    path.write_text("batch_size:\n  choices: [32]\ngradient_clip_val:\n  choices: [0.0]\n")
    return path


def tunekit_search(
    steps: int, evaluations: int, threads: int, setting: Setting = Setting()
) -> tuple[float, float, list]:
    """(wall time of ``tunekit search --trials 4``, the time per trial once the search runs), seconds,
    and what each stored trial says (state, value, family, precision)."""
    import optuna

    from tunekit.study.records import RECIPE_ATTR

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/overhead.db"
        command = [
            sys.executable, "-m", "tunekit", "search", str(SCRIPT), "--study", "overhead", "--storage", url,
            "--trials", str(SEARCH_TRIALS), "--max-steps", str(steps), "--evaluations", str(evaluations),
            "--prior", "none", "--space", str(same_work_space(folder)), *setting.search_args(),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=folder)
        wall = time.perf_counter() - start
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        trials = sorted(optuna.load_study(study_name="overhead", storage=url).get_trials(), key=lambda t: t.number)
        # Each full trial's cycle: from the end of the trial before it (whatever its outcome) to its own end.
        cycles = [
            (t.datetime_complete - before.datetime_complete).total_seconds()
            for before, t in zip(trials, trials[1:], strict=False)
            if t.state.name == "COMPLETE"
        ]
        if not cycles:
            sys.exit(f"no full trial after the first in the search: {[t.state.name for t in trials]}")
        stored = [
            f"trial {t.number}: {t.state.name} val_loss={t.value} {t.params.get('optimizer')} precision="
            f"{t.user_attrs.get(RECIPE_ATTR, {}).get('training', {}).get('precision', '32-true')}"
            for t in trials
        ]
        return wall, statistics.mean(cycles), stored


def fixed_overhead(steps: int, evaluations: int, setting: Setting = Setting()) -> list[float]:
    """Each later trial's fixed cost in a running search in this process, seconds (trials 1-3 of 4).

    A view stamps the end of every optimizer step. The time from one trial's last step to the next
    one's first holds what the trial costs beyond training: the last validation, tell, the wait for
    a place, the next prediction, ask, sampling, every study read and write, the DataModule and
    Trainer set-up, and its first step. One steady step and one validation (which the plain loop
    does too) are taken off. Differences of stamps this close are far less sensitive to the load of
    a shared machine than a whole trial's time against a step rate measured minutes earlier.
    """
    from tunekit.service.events import QuietView
    from tunekit.service.search import SearchRequest, prepare_search
    from tunekit.training.script import ScriptSpec

    class Stamps(QuietView):
        def __init__(self) -> None:
            self.trials: list[list[float]] = []

        def trial_started(self, number, recipe) -> None:
            self.trials.append([])

        def step(self, step, total) -> None:
            self.trials[-1].append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        request = SearchRequest(
            ScriptSpec(str(SCRIPT)), "fixed", f"sqlite:///{folder}/fixed.db", steps, trials=SEARCH_TRIALS,
            optimizers=setting.family, schedules=setting.schedule, prior="none", evaluations=evaluations,
            options=setting.options(), space_file=same_work_space(folder),
        )  # fmt: skip
        prepared, n_trials = prepare_search(request)
        prepared.add_trials(n_trials)
        view = Stamps()
        prepared.run_here(view)
    interval = recipe_of(steps, evaluations, setting).training.validation_interval
    fixed = []
    for before, stamps in zip(view.trials, view.trials[1:], strict=False):
        if len(before) != steps or len(stamps) != steps:
            continue  # a trial that diverged
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        step = statistics.median(gaps)
        validation = statistics.median(gaps[k - 1] for k in range(interval, steps, interval)) - step
        fixed.append(stamps[0] - before[-1] - step - validation)
    return fixed


def measure(script, args, setting: Setting = Setting()) -> list[str]:
    """Run the four methods interleaved for ``args.rounds`` rounds; the report's lines (Markdown table)."""
    recipe = recipe_of(args.steps, args.evaluations, setting)
    rates: dict[str, list[float]] = {name: [] for name in METHODS}
    walls: list[tuple[float, float, list]] = []
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, method in METHODS.items():
            rates[name].append(method(script, recipe, args.warmup, setting))
        walls.append(tunekit_search(args.steps, args.evaluations, args.threads, setting))
    load = max(load, os.getloadavg()[0])

    med = {name: statistics.median(values) for name, values in rates.items()}
    n_params = sum(p.numel() for p in script.build_model().parameters())
    fixed = fixed_overhead(args.steps, args.evaluations, setting)
    process = statistics.median(wall - SEARCH_TRIALS * trial for wall, trial, _ in walls)
    search_rate = args.steps / statistics.median(trial for _, trial, _ in walls)
    lines = [
        f"examples/charlm.py ({n_params / 1e3:.0f}k parameters, batch 32) on {setting.accelerator}, "
        f"{setting.precision}, {setting.family}, {args.steps} steps, {args.evaluations} validations, "
        f"{args.threads} CPU thread(s), {args.rounds} interleaved rounds, load average up to {load:.2f}",
        "| method | steps/s (median) | vs plain loop |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value:.2f} | {value / med['plain loop']:.3f}x |" for name, value in med.items()]
    lines += [
        f"| search trial (time per trial in a running search, set-up included) | {search_rate:.2f} "
        f"| {search_rate / med['plain loop']:.3f}x |",
        "",
        f"fixed overhead per trial inside a running search: {statistics.median(fixed) * 1e3:.0f} ms "
        f"(median of trials 1-3 of an in-process search: {', '.join(f'{f * 1e3:.0f}' for f in fixed)})",
        f"process overhead of one search command (start-up, measurement, check, study): {process:.2f} s",
        "the last search's trials, as stored:",
        *walls[-1][2],
    ]
    return lines


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the steps/s timing")
    parser.add_argument("--evaluations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all four methods, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared box)")
    return parser


def load_charlm(threads: int):
    import torch

    from tunekit.training.quiet import silence_lightning
    from tunekit.training.script import ScriptSpec, load_script

    silence_lightning()
    torch.set_num_threads(threads)
    return load_script(ScriptSpec(str(SCRIPT)))


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    print("\n".join(measure(load_charlm(args.threads), args)))


if __name__ == "__main__":
    main()
