"""``tunekit search`` and ``tunekit resume``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tunekit.cli._options import (
    console,
    device_options,
    given_options,
    max_steps_option,
    prior_option,
    run_options,
    script_options,
    script_spec,
    storage_flag,
    storage_option,
    study_option,
)
from tunekit.search_spaces.catalog import default_optimizers
from tunekit.study.coordination import DEFAULT_TRIALS

timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop starting new trials after this long.",
)

jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine, sharing the study (each gets cores/N threads).",
)


ray_option = click.option(
    "--ray",
    default=None,
    metavar="ADDRESS",
    help="Run the --jobs workers as tasks on the Ray cluster at ADDRESS (auto: the one this machine is in); "
    'needs a server --storage and pip install "tunekit[ray]".',
)


@click.command()
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@study_option(required=False)
@storage_option
@click.option(
    "--trials", type=click.IntRange(min=1), default=None, help=f"Trials to add to the study [default {DEFAULT_TRIALS}]."
)
@timeout_option
@max_steps_option
@click.option(
    "--max-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Budget in epochs instead of --max-steps, converted to optimizer steps at the DataModule's default batch size.",
)
@click.option(
    "--optimizers",
    default=None,
    metavar="A,B,...",
    help=f"Optimizer families to search [default: {', '.join(default_optimizers())}; see tunekit optimizers].",
)
@click.option(
    "--schedules", default=None, metavar="A,B,...", help="LR schedules to search [default: all; see tunekit schedules]."
)
@click.option(
    "--metric",
    default="val_loss",
    show_default=True,
    help="Logged metric to optimize (its value at the end of training).",
)
@click.option("--direction", type=click.Choice(["minimize", "maximize"]), default="minimize", show_default=True)
@prior_option
@click.option(
    "--space",
    "space_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file overriding parameter ranges ({low, high, log} or {choices}).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of every trial's training and of the sampler."
)
@click.option(
    "--evaluations",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Validations per trial (reported for pruning).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="LightningCLI config (YAML) with the model and data arguments; --model-arg/--data-arg override it.",
)
@click.option(
    "--also",
    default=None,
    metavar="seconds|peak_memory",
    help="A second objective, minimized beside the metric: wall seconds per trial, or peak memory (CUDA "
    "max_memory_allocated on GPU, peak RSS on CPU). Pruning then applies to the metric alone; see the README.",
)
@click.option(
    "--fidelity",
    default=None,
    metavar="full|sh",
    help="full: every trial trains its whole budget [default]; sh: schedule-aware successive halving, "
    "trials judged at rungs of max-steps/eta^k steps by end-of-run values (a cooldown branch for WSD).",
)
@click.option(
    "--min-steps",
    type=int,
    default=None,
    help="With --fidelity sh: the smallest rung's budget; lower adds rungs [default: max-steps/eta, one rung].",
)
@click.option("--eta", type=int, default=None, help="With --fidelity sh: 1/eta of a rung's trials go on [default 3].")
@click.option(
    "--budget-bound",
    default=None,
    metavar="own-schedule|compressed",
    help="With --fidelity sh: a cosine/linear/REX/SGDR trial at a rung trains its whole schedule compressed to "
    "the rung's steps and is compared with every trial [default], or is compared within its own schedule.",
)
@click.option(
    "--from-study",
    default=None,
    metavar="NAME",
    help="Start by continuing the stable phases kept by study NAME's best WSD trials (same script, a smaller "
    "--max-steps, this SQLite storage): each trains only from its cooldown's start to this budget (WSD-S).",
)
@device_options
@jobs_option
@ray_option
@script_options
@click.pass_context
def search(ctx: click.Context, script: Path, study_name: str | None, storage: str | None, **settings: Any) -> None:
    """Run (or continue) a study on SCRIPT, a Python file with a LightningModule."""
    from tunekit.service.search import SearchRequest, prepare_search
    from tunekit.service.setting_names import settings_given
    from tunekit.study.storage import resolve_url

    options, run_given = run_options(ctx, settings)
    # Besides the script and device options, the options (--trials, --max-steps, ..., --jobs) are
    # named as SearchRequest's fields.
    request = SearchRequest(
        script=script_spec(script, settings),
        study_name=study_name or script.stem,
        url=resolve_url(storage),
        options=options,
        given=settings_given(given_options(ctx)),
        run_given=run_given,
        **settings,
    )
    prepared, n_trials = prepare_search(request)
    for warning in prepared.warnings:
        console().print(f"[yellow]Warning: {warning}[/]", highlight=False)
    _run(prepared, n_trials)


@click.command()
@study_option(required=True)
@storage_option
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=None,
    help="Run this many more trials instead of finishing the stored target.",
)
@timeout_option
@device_options
@jobs_option
@ray_option
@click.pass_context
def resume(
    ctx: click.Context,
    study_name: str,
    storage: str | None,
    trials: int | None,
    timeout: float | None,
    jobs: int,
    ray: str | None,
    **device: Any,
) -> None:
    """Continue a study from the settings stored in its database (device options too, unless given)."""
    from tunekit.service.search import ResumeRequest, prepare_resume
    from tunekit.study.storage import resolve_url

    options, run_given = run_options(ctx, device)
    request = ResumeRequest(study_name, resolve_url(storage), trials, timeout, jobs, options, run_given, ray)
    prepared = prepare_resume(request)
    if trials is None and prepared.remaining == 0:
        console().print(
            f"Study '{study_name}' already has its {prepared.settings.target_trials} trials; add more with --trials N."
        )
        return
    _run(prepared, trials)


def _run(prepared: Any, n_trials: int | None) -> None:
    """Run ``n_trials`` more trials (None: up to the stored target); report how it ended."""
    from tunekit.cli.views import SearchView, WorkersView, drop_notices, summary_table
    from tunekit.interrupts import exit_code_for_interrupt
    from tunekit.service.workers import threads_per_worker
    from tunekit.study.settings import best_trial
    from tunekit.study.storage import SQLITE_SENSIBLE_WORKERS, is_sqlite

    study, settings, url, jobs = prepared.study, prepared.settings, prepared.url, prepared.jobs
    n_trials = prepared.add_trials(n_trials)
    out = console()
    workers = f" on {jobs} workers of {threads_per_worker(jobs)} thread(s)" if jobs > 1 else ""
    if prepared.ray is not None:
        workers = f" on {jobs} Ray worker(s) at {prepared.ray}"
    from tunekit.study.rungs import Fidelity

    fidelity = Fidelity.from_dict(settings.fidelity)
    rungs = fidelity.rungs(settings.space.max_steps)
    judged = f", judged at rungs of {', '.join(map(str, rungs))} steps (eta {fidelity.eta})" if rungs else ""
    out.print(
        f"Study [bold]{study.study_name}[/] in {url}: {n_trials} trial(s) of {settings.space.max_steps} steps"
        f"{judged}{workers}, optimizing {settings.metric} ({settings.direction}).",
        highlight=False,
    )
    if jobs > SQLITE_SENSIBLE_WORKERS and is_sqlite(url):
        out.print(
            f"[yellow]Warning: {jobs} workers on one SQLite file. SQLite lets one process write at a time, and "
            "every report, heartbeat and progress update is a write, so past "
            f"{SQLITE_SENSIBLE_WORKERS} workers they mostly wait for its lock; use PostgreSQL "
            "(--storage postgresql://...) for more.[/]",
            highlight=False,
        )
    if jobs == 1 and prepared.ray is None:
        view = SearchView(out, study, settings.metric, settings.target_trials)
    else:
        view = WorkersView(out, study, settings.metric, settings.target_trials, jobs)
    outcome = prepared.run(view)
    flag = storage_flag(url)
    if outcome.forced:
        out.print(
            f"[yellow]Stopped at once.[/] Resume with: tunekit resume --study {study.study_name}{flag}", highlight=False
        )
        raise SystemExit(exit_code_for_interrupt())
    out.print(summary_table(study, settings.metric, limit=5))
    for text in drop_notices(study):  # issue #14: a family is never dropped without saying so
        out.print(f"[yellow]{text}[/]", highlight=False)
    if outcome.interrupted:
        out.print(
            f"[yellow]Interrupted.[/] Resume with: tunekit resume --study {study.study_name}{flag}", highlight=False
        )
        raise SystemExit(exit_code_for_interrupt())
    if best_trial(study) is None:
        out.print(f"No trial completed; see why with: tunekit show --study {study.study_name}{flag}", highlight=False)
        return
    out.print(
        f"Export the best recipe: tunekit export --study {study.study_name}{flag} -o {study.study_name}.yaml",
        highlight=False,
    )
