"""``tunekit search`` and ``tunekit resume``."""

from __future__ import annotations

from pathlib import Path

import click

from tunekit.cli._options import (
    console,
    given_options,
    max_steps_option,
    prior_option,
    script_options,
    script_spec,
    storage_flag,
    storage_option,
    study_option,
)

DEFAULT_TRIALS = 20

jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine, sharing the study (each gets cores/N threads).",
)


@click.command()
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@study_option(required=False)
@storage_option
@click.option(
    "--trials", type=click.IntRange(min=1), default=None, help=f"Trials to add to the study [default {DEFAULT_TRIALS}]."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop starting new trials after this long.",
)
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
    help="Optimizer families to search [default: adamw, sgd, lion, muon, schedulefree_adamw; see tunekit optimizers].",
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
@click.option("--accelerator", default="auto", show_default=True, help="Lightning accelerator (cpu, gpu, auto).")
@jobs_option
@script_options
@click.pass_context
def search(
    ctx: click.Context,
    script: Path,
    study_name: str | None,
    storage: str | None,
    trials: int | None,
    timeout: float | None,
    max_steps: int,
    max_epochs: int | None,
    optimizers: str | None,
    schedules: str | None,
    metric: str,
    direction: str,
    prior: str,
    space_file: Path | None,
    seed: int,
    evaluations: int,
    accelerator: str,
    jobs: int,
    model: str | None,
    data: str | None,
    model_args: tuple,
    data_args: tuple,
) -> None:
    """Run (or continue) a study on SCRIPT, a Python file with a LightningModule."""
    from tunekit.errors import BadInput
    from tunekit.priors import make_prior
    from tunekit.search_spaces.space import (
        SearchSpace,
        SpaceConfig,
        default_optimizers,
        default_schedules,
        load_space_file,
        parse_names,
    )
    from tunekit.storage import open_storage, resolve_url
    from tunekit.study import StudySettings, create_or_continue
    from tunekit.training.script import load_script

    url = resolve_url(storage)
    _check_jobs(jobs, url)
    spec = script_spec(script, model, data, model_args, data_args)
    optimizer_names = parse_names(optimizers, "optimizers") or default_optimizers()
    schedule_names = parse_names(schedules, "schedules") or default_schedules()
    overrides = load_space_file(space_file) if space_file else {}
    loaded = load_script(spec)
    batch = loaded.default_batch_size
    given = given_options(ctx)
    if max_epochs is not None:
        if "--max-steps" in given:
            raise BadInput("give either --max-steps or --max-epochs, not both.")
        # Schedules are fractions of a step budget, so an epoch budget becomes steps here, once.
        max_steps = max_epochs * loaded.steps_per_epoch(batch)
        given.add("--max-steps")
    chosen_prior = make_prior(prior, loaded, max_steps, batch)
    config = SpaceConfig(
        optimizers=optimizer_names,
        schedules=schedule_names,
        centre_lr=chosen_prior.centre_lr,
        max_steps=max_steps,
        span_scale=chosen_prior.span_scale,
        batch_sizes=_batch_choices(batch),
        overrides=overrides,
        seed=seed,
        evaluations=evaluations,
    )
    SearchSpace(config)  # validates the space before anything is written
    settings = StudySettings(spec, metric, direction, config, chosen_prior.record)
    name = study_name or script.stem
    store = open_storage(url)
    from tunekit.training.fit import check_script

    check_script(loaded, metric, batch)
    study, settings = create_or_continue(store, name, settings, given)
    _run(store, study, settings, url, trials or DEFAULT_TRIALS, timeout, accelerator, jobs)


@click.command()
@study_option(required=True)
@storage_option
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=None,
    help="Run this many more trials instead of finishing the stored target.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop starting new trials after this long.",
)
@click.option("--accelerator", default="auto", show_default=True, help="Lightning accelerator (cpu, gpu, auto).")
@jobs_option
def resume(
    study_name: str, storage: str | None, trials: int | None, timeout: float | None, accelerator: str, jobs: int
) -> None:
    """Continue a study from the settings stored in its database."""
    from tunekit.errors import BadInput
    from tunekit.search import remaining_trials
    from tunekit.storage import open_storage, reap_dead_workers, resolve_url
    from tunekit.study import open_study

    url = resolve_url(storage)
    _check_jobs(jobs, url)
    store = open_storage(url)
    study, settings = open_study(store, study_name)
    reap_dead_workers(study)
    if not Path(settings.script.path).is_file():
        raise BadInput(
            f"the study's script '{settings.script.path}' no longer exists; put it back or run tunekit search on its new path with --study {study_name}."
        )
    if trials is None:
        if remaining_trials(study, settings) == 0:
            console().print(
                f"Study '{study_name}' already has its {settings.target_trials} trials; add more with --trials N."
            )
            return
    # Without --trials, the stored target stands: recounting here would raise it by whatever other
    # workers finished in the meantime.
    _run(store, study, settings, url, trials, timeout, accelerator, jobs)


def _check_jobs(jobs: int, url: str) -> None:
    """Refuse more workers than cores, or workers that cannot share the storage.

    Raises:
        BadInput: ``--jobs`` exceeds the cores, or the storage is in-memory SQLite.
    """
    from tunekit.errors import BadInput
    from tunekit.storage import is_sqlite, sqlite_path
    from tunekit.workers import available_cores

    if jobs == 1:
        return
    cores = available_cores()
    if jobs > cores:
        raise BadInput(
            f"--jobs {jobs} is more than the {cores} CPU core(s) here; each worker needs a core of its own, "
            f"so use --jobs {cores} or fewer."
        )
    if is_sqlite(url) and sqlite_path(url) is None:
        raise BadInput("--jobs needs a storage the workers can share; give a file (sqlite:///FILE) or a server URL.")


def _batch_choices(default: int | None) -> list[int] | None:
    """Batch sizes to search when the DataModule takes one: half, same and double its default."""
    if default is None:
        return None
    return sorted({max(1, default // 2), default, default * 2})


def _run(
    store: object,
    study: object,
    settings: object,
    url: str,
    n_trials: int | None,
    timeout: float | None,
    accelerator: str,
    jobs: int,
) -> None:
    """Run ``n_trials`` more trials (None: up to the stored target) in this process or ``jobs`` workers."""
    from tunekit.interrupts import exit_code_for_interrupt
    from tunekit.progress import SearchView, WorkersView, summary_table
    from tunekit.search import counted_trials, run_search
    from tunekit.storage import SQLITE_SENSIBLE_WORKERS, is_sqlite, reap_dead_workers
    from tunekit.training.script import load_script
    from tunekit.workers import run_workers, threads_per_worker

    reap_dead_workers(study)  # trials of workers killed since the last run: failed and queued again
    counted = counted_trials(study.get_trials(deepcopy=False))
    if n_trials is not None:
        settings.target_trials = counted + n_trials
        settings.save(study)
    n_trials = max(0, settings.target_trials - counted)
    out = console()
    workers = f" on {jobs} workers of {threads_per_worker(jobs)} thread(s)" if jobs > 1 else ""
    out.print(
        f"Study [bold]{study.study_name}[/] in {url}: {n_trials} trial(s) of {settings.space.max_steps} steps"
        f"{workers}, optimizing {settings.metric} ({settings.direction}).",
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
    loaded = load_script(settings.script)
    if jobs == 1:
        view = SearchView(out, study, settings.metric, settings.target_trials)
        outcome = run_search(store, study, settings, loaded, timeout=timeout, view=view, accelerator=accelerator)
    else:
        view = WorkersView(out, study, settings.metric, settings.target_trials, jobs)
        outcome = run_workers(url, study, jobs, timeout, accelerator, view)
    flag = storage_flag(url)
    if outcome.forced:
        out.print(
            f"[yellow]Stopped at once.[/] Resume with: tunekit resume --study {study.study_name}{flag}", highlight=False
        )
        raise SystemExit(exit_code_for_interrupt())
    out.print(summary_table(study, settings.metric, limit=5))
    if outcome.interrupted:
        out.print(
            f"[yellow]Interrupted.[/] Resume with: tunekit resume --study {study.study_name}{flag}", highlight=False
        )
        raise SystemExit(exit_code_for_interrupt())
    from tunekit.study import best_trial

    if best_trial(study) is None:
        out.print(f"No trial completed; see why with: tunekit show --study {study.study_name}{flag}", highlight=False)
        return
    out.print(
        f"Export the best recipe: tunekit export --study {study.study_name}{flag} -o {study.study_name}.yaml",
        highlight=False,
    )
