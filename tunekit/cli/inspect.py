"""``tunekit studies`` and ``tunekit show``."""

from __future__ import annotations

import click

from tunekit.cli._options import console, storage_flag, storage_option, study_option


@click.command()
@storage_option
def studies(storage: str | None) -> None:
    """List the studies in the storage with their trial counts and best values."""
    from rich.table import Table

    from tunekit.study.objectives import metric_value
    from tunekit.study.records import SETTINGS_ATTR, state_counts
    from tunekit.study.reruns import done_reruns, rerun_study_name
    from tunekit.study.settings import best_trial
    from tunekit.study.storage import load_existing_study, open_storage, resolve_url, study_names

    url = resolve_url(storage)
    store = open_storage(url)
    table = Table(title=f"studies in {url}")
    for col in ("study", "script", "metric", "complete", "pruned", "failed", "running", "best", "re-runs"):
        table.add_column(col)
    names = study_names(store)
    # A NAME.reruns sibling (show --robust, issue #12) is part of NAME, not a study of its own: count it there.
    siblings = {rerun_study_name(n) for n in names} & set(names)
    for name in [n for n in names if n not in siblings]:
        study = load_existing_study(store, name)
        settings = study.user_attrs.get(SETTINGS_ATTR, {})
        counts = state_counts(study.get_trials(deepcopy=False))
        best = best_trial(study)
        table.add_row(
            study.study_name,
            settings.get("script", {}).get("path", "-"),
            settings.get("metric", "-"),
            str(counts["COMPLETE"]),
            str(counts["PRUNED"]),
            str(counts["FAIL"]),
            str(counts["RUNNING"]),
            f"{metric_value(best):.4g} (trial {best.number})" if best else "-",
            str(len(done_reruns(store, name))) if rerun_study_name(name) in siblings else "-",
        )
    console().print(table)


@click.command()
@study_option(required=True)
@storage_option
@click.option(
    "--trial", "trial_number", type=int, default=None, help="Show one trial in full: recipe, reason, traceback."
)
@click.option(
    "--robust",
    is_flag=True,
    help="Retrain the --top best trials with --seeds new seeds each (stored in study NAME.reruns, reused "
    "next time) and rank them by the mean, with the spread.",
)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="New seeds per trial.")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="Trials to re-run.")
def show(
    study_name: str,
    storage: str | None,
    trial_number: int | None,
    robust: bool,
    seeds: int,
    top: int,
) -> None:
    """Show a study's trials with states and reasons, and its best recipe."""
    if robust:
        _show_robust(study_name, storage, seeds, top)  # trains on the study's stored device options
        return
    from rich.syntax import Syntax

    from tunekit.cli.views import summary_table
    from tunekit.errors import BadInput
    from tunekit.recipes import Recipe
    from tunekit.study.objectives import COSTS, metric_value, pareto_front
    from tunekit.study.records import (
        TRACEBACK_ATTR,
        curve_of,
        origin_of,
        progress_of,
        reason_of,
        recipe_of,
        state_counts,
    )
    from tunekit.study.settings import best_trial, open_study
    from tunekit.study.storage import open_storage, resolve_url

    url = resolve_url(storage)
    study, settings = open_study(open_storage(url), study_name)
    out = console()
    trials = study.get_trials(deepcopy=False)
    if trial_number is not None:
        match = [t for t in trials if t.number == trial_number]
        if not match:
            raise BadInput(f"study '{study_name}' has no trial {trial_number}; it has trials 0-{len(trials) - 1}.")
        t = match[0]
        out.print(
            f"trial {t.number}: {t.state.name}"
            + (f", {settings.metric}={metric_value(t):.6g}" if metric_value(t) is not None else "")
        )
        if origin_of(t) is not None:
            out.print(f"origin: {origin_of(t).describe()}")
        if reason_of(t):
            out.print(f"reason: {reason_of(t)}")
        if t.state.name == "RUNNING" and progress_of(t):
            out.print(f"running: {progress_of(t)}")
        if curve_of(t):
            out.print("validation: " + ", ".join(f"step {s}: {v:.4g}" for s, v in sorted(curve_of(t).items())))
        if recipe_of(t):
            out.print(Syntax(Recipe.from_dict(recipe_of(t)).to_yaml(), "yaml"))
        if t.user_attrs.get(TRACEBACK_ATTR):
            out.print(t.user_attrs[TRACEBACK_ATTR], markup=False, highlight=False)
        return
    counts = state_counts(trials)
    out.print(
        f"Study [bold]{study_name}[/]: script {settings.script.path}, {settings.space.max_steps} steps per trial, "
        f"{settings.metric} ({settings.direction}), prior {settings.prior.get('law')}.",
        highlight=False,
    )
    out.print(summary_table(study, settings.metric))
    out.print(", ".join(f"{k.lower()} {v}" for k, v in counts.items() if v), highlight=False)
    best = best_trial(study)
    if best is not None:
        out.print(
            f"Best: trial {best.number}, {settings.metric}={metric_value(best):.6g}. "
            f"Export it: tunekit export --study {study_name}{storage_flag(url)} -o {study_name}.yaml",
            highlight=False,
        )
    front = pareto_front(study)
    if front:
        unit = COSTS[settings.also].unit
        points = ", ".join(f"trial {t.number} ({t.values[0]:.4g}, {t.values[1]:.3g} {unit})" for t in front)
        out.print(
            f"Pareto front ({settings.metric} against {settings.also}): {points}. "
            f"Export it: tunekit export --study {study_name}{storage_flag(url)} --pareto -o {study_name}.yaml",
            highlight=False,
        )
    out.print(
        f"Details of one trial (traceback included): tunekit show --study {study_name}{storage_flag(url)} --trial N",
        highlight=False,
    )


def _show_robust(study_name: str, storage: str | None, seeds: int, top: int) -> None:
    """The robust ranking of ``show --robust``: trained (or reused) by the application service."""
    from rich.table import Table

    from tunekit.service.robust import RobustRequest, robust_ranking
    from tunekit.study.storage import resolve_url
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    out = console()

    def on_rerun(number: int, seed: int, value: float | None, reason: str) -> None:
        outcome = f"{value:.4g}" if value is not None else f"failed ({reason})"
        out.print(f"re-run of trial {number}, seed {seed}: {outcome}", highlight=False)

    request = RobustRequest(study_name, resolve_url(storage), seeds, top)
    rows = robust_ranking(request, on_rerun)
    table = Table(title=f"study {study_name}: top {top} re-run with {seeds} new seeds, by mean")
    for col in ("rank", "trial", "recipe", "trial value", "mean", "spread (sd)", "re-runs"):
        table.add_column(col, justify="left" if col == "recipe" else "right")
    for rank, r in enumerate(rows, 1):
        table.add_row(
            str(rank), str(r.number), r.label, f"{r.value:.4g}", f"{r.mean:.4g}", f"{r.spread:.2g}", str(len(r.reruns))
        )
    out.print(table)
    if rows:
        out.print(
            f"Most robust: trial {rows[0].number}. Export it: tunekit export --study {study_name}"
            f"{storage_flag(request.url)} --trial {rows[0].number} -o {study_name}.yaml",
            highlight=False,
        )
