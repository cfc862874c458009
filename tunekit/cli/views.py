"""The live view of a running search and the summary printed when it ends (rich).

On a terminal it redraws in place; elsewhere (CI, pipes) rich prints only the final frame, and
the one line per finished trial is the log.

- ``SearchView``: a search running in this process; training calls it at every step.
- ``WorkersView``: ``--jobs N``; the parent reads the study every second, so one view covers all
  workers (each running trial's step comes from what its worker records every few seconds).

``SearchView`` implements ``tunekit.service.events.SearchEvents``; ``WorkersView`` is polled by the
``--jobs`` parent instead, and each worker process runs with ``QuietView``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tunekit.study.objectives import metric_value
from tunekit.study.records import (
    PROGRESS_ATTR,
    WORKER_ATTR,
    best_of,
    counted_trials,
    counts_toward_target,
    curve_of,
    describe,
    is_surplus,
    progress_of,
    reason_of,
    recipe_of,
    rung_of,
    state_counts,
    steps_of,
    total_steps,
)
from tunekit.study.settings import is_minimized, ranked_trials

STATE_STYLE = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "WAITING": "dim"}
STOPPING = "[yellow]Stopping after the current batch; press Ctrl-C again to quit at once.[/]"


def _progress_bars(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
        auto_refresh=False,
    )


def status_table(study: Any, trials: list, metric: str, target: int | None) -> Table:
    """One line of counts (trials counted toward the target, by state) and the best trial so far."""
    counts = state_counts(trials)
    best = best_of(trials, is_minimized(study))
    table = Table.grid(padding=(0, 2))
    table.add_row(
        f"[bold]{study.study_name}[/]",
        f"trials {sum(counts_toward_target(t) for t in trials)}" + (f"/{target}" if target else ""),
        f"[green]complete {counts['COMPLETE']}[/]",
        f"[cyan]running {counts['RUNNING']}[/]",
        f"[yellow]pruned {counts['PRUNED']}[/]",
        f"[red]failed {counts['FAIL']}[/]",
        f"optimizer steps {total_steps(trials)}",  # the study's compute, rung branches included (issue #9)
    )
    if best is not None:
        table.add_row(
            "best", f"{metric}={metric_value(best):.4g}", f"trial {best.number}", describe(recipe_of(best)), "", "", ""
        )
    return table


def print_finished(console: Console, trial: Any, metric: str) -> None:
    """The log line of a finished trial: state, value, recipe, time and, unless complete, why."""
    state = trial.state.name
    value = f"{metric_value(trial):.4g}" if metric_value(trial) is not None else "-"
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    reason = reason_of(trial)
    steps = f"  {steps_of(trial)} steps" if steps_of(trial) is not None else ""
    rung = f" to {rung_of(trial)}" if rung_of(trial) is not None else ""
    console.print(
        f"trial {trial.number:>3} [{STATE_STYLE.get(state, '')}]{state:<8}[/] {metric}={value:<8} "
        f"{describe(recipe_of(trial))}{steps}{rung}  {seconds:.1f}s"
        + (f"  ({reason})" if reason and state != "COMPLETE" else ""),
        highlight=False,
    )


class SearchView:
    """Trials done/running/pruned/failed, the best so far, and the running trial's steps."""

    def __init__(self, console: Console, study: Any, metric: str, target: int | None):
        self.console = console
        self.study = study
        self.metric = metric
        self.target = target
        self.progress = _progress_bars(console)
        self.task = None
        self._waiting_for: list[int] = []
        self.status = self._status()  # rebuilt on trial events, not on every redraw (no DB query per frame)
        self.live = Live(self, console=console, refresh_per_second=4, transient=True)

    def __rich__(self) -> Group:
        return Group(self.status, self.progress)

    def _status(self) -> Table:
        return status_table(self.study, self.study.get_trials(deepcopy=False), self.metric, self.target)

    def __enter__(self) -> SearchView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    # --- events from the search ------------------------------------------------------------
    def trial_started(self, number: int, recipe: Any) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        label = describe(recipe.to_dict())
        total = recipe.training.max_steps
        self.task = self.progress.add_task(f"trial {number} {label}", total=total, last="")
        self._waiting_for = []
        self.status = self._status()
        self.live.refresh()

    def step(self, step: int, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=step)

    def evaluated(self, step: int, value: float) -> None:
        if self.task is not None:
            self.progress.update(self.task, last=f"{self.metric}={value:.4g} at step {step}")

    def trial_finished(self, study: Any, trial: Any) -> None:
        if not is_surplus(trial):
            print_finished(self.console, trial, self.metric)
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.status = self._status()

    def waiting(self, running: list[int]) -> None:
        """Every remaining trial runs elsewhere: say so once, then keep watching them."""
        if running != self._waiting_for:
            self._waiting_for = running
            listed = ", ".join(map(str, running))
            self.console.print(
                f"[dim]Waiting for trial(s) {listed}, running in another process; if its worker died, "
                "the trial is retried here once its heartbeat is overdue.[/]",
                highlight=False,
            )
        self.status = self._status()
        self.live.refresh()

    def interrupt_requested(self) -> None:
        self.console.print(STOPPING)

    def notice(self, text: str) -> None:
        self.console.print(f"[yellow]{text}[/]", highlight=False)


class WorkersView:
    """The ``--jobs`` parent's view: ``poll()`` reads the study and redraws the workers' trials."""

    def __init__(self, console: Console, study: Any, metric: str, target: int | None, jobs: int):
        self.console = console
        self.study = study
        self.metric = metric
        self.target = target
        self.jobs = jobs
        self.progress = _progress_bars(console)
        self.tasks: dict[int, Any] = {}
        trials = study.get_trials(deepcopy=False)
        self.printed = {t.number for t in trials if t.state.is_finished()}
        self.noticed = set(drop_notices(study))
        self.status = status_table(study, trials, metric, target)
        self.live = Live(self, console=console, refresh_per_second=4, transient=True)

    def __rich__(self) -> Group:
        return Group(self.status, self.progress)

    def __enter__(self) -> WorkersView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    def poll(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:
            if t.state.is_finished() and t.number not in self.printed:
                self.printed.add(t.number)
                if not is_surplus(t):
                    print_finished(self.console, t, self.metric)
                    self._print_drops()
        running = {t.number: t for t in trials if t.state.name == "RUNNING"}
        for number in [n for n in self.tasks if n not in running]:
            self.progress.remove_task(self.tasks.pop(number))
        for number, t in running.items():
            recipe = recipe_of(t)
            if recipe is None:
                continue  # sampled parameters not stored yet
            step = (t.user_attrs.get(PROGRESS_ATTR) or {}).get("step", 0)
            values = curve_of(t)
            last = f"{self.metric}={values[max(values)]:.4g}" if values else ""
            if number not in self.tasks:
                where = t.user_attrs.get(WORKER_ATTR, "")
                label = f"trial {number} {describe(recipe)}" + (f" [dim]({where})[/]" if where else "")
                self.tasks[number] = self.progress.add_task(label, total=recipe["training"]["max_steps"], last=last)
            self.progress.update(self.tasks[number], completed=step, last=last)
        self.status = status_table(self.study, trials, self.metric, self.target)
        self.live.refresh()

    def _print_drops(self) -> None:
        """Families the workers' allocation dropped since the last look (issue #14)."""
        for text in drop_notices(self.study):
            if text not in self.noticed:
                self.noticed.add(text)
                self.console.print(f"[yellow]{text}[/]", highlight=False)

    def interrupt_requested(self) -> None:
        self.console.print(
            f"[yellow]Stopping the {self.jobs} workers after their current batch; "
            "press Ctrl-C again to quit at once.[/]"
        )


def drop_notices(study: Any) -> list[str]:
    """A sentence per family the allocation stopped giving trials to (issue #14)."""
    from tunekit.study.allocation import drop_notice, dropped_families, named_families
    from tunekit.study.settings import StudySettings

    dropped = dropped_families(study)
    if not dropped:
        return []
    named = named_families(StudySettings.from_study(study).space.optimizers)
    return [drop_notice(family, why, family in named) for family, why in dropped.items()]


def summary_table(study: Any, metric: str, limit: int | None = None) -> Table:
    """All trials (or the best ``limit`` complete ones), with state, value, recipe and reason.

    Surplus trials (given up unrun when parallel workers reached the target together) are left out.
    """
    every = study.get_trials(deepcopy=False)
    trials = ranked_trials(study)[:limit] if limit else every
    shown = [t for t in every if not is_surplus(t)]
    caption = f"{counted_trials(shown)} trials, {total_steps(shown)} optimizer steps (rung branches included)"
    table = Table(title=f"study {study.study_name}", caption=caption)
    for col in ("trial", "state", metric, "optimizer", "schedule", "lr", "steps", "rung", "time", "reason"):
        table.add_column(col, justify="right" if col in ("trial", metric, "lr", "steps", "rung", "time") else "left")
    for t in trials:
        if is_surplus(t):
            continue
        recipe = recipe_of(t) or {}
        opt, sched = recipe.get("optimizer", {}), recipe.get("schedule", {})
        lr = opt.get("lr")
        table.add_row(
            str(t.number),
            f"[{STATE_STYLE.get(t.state.name, '')}]{t.state.name}[/]",
            f"{metric_value(t):.4g}" if metric_value(t) is not None else "-",
            opt.get("name", "-"),
            sched.get("name", "-"),
            f"{lr:.2e}" if isinstance(lr, float) else "-",
            _or_dash(steps_of(t)),
            _or_dash(rung_of(t)),
            f"{t.duration.total_seconds():.1f}s" if t.duration else "-",
            progress_of(t) if t.state.name == "RUNNING" else reason_of(t),
        )
    return table


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
