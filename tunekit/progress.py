"""The live view of a running search and the summary printed when it ends (rich).

On a terminal it redraws in place; elsewhere (CI, pipes) rich prints only the final frame, and
the one line per finished trial is the log.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tunekit.study import best_trial, describe, ranked_trials, reason_of, recipe_of, state_counts

STATE_STYLE = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "WAITING": "dim"}


class SearchView:
    """Trials done/running/pruned/failed, the best so far, and the running trial's steps."""

    def __init__(self, console: Console, study: Any, metric: str, target: int | None):
        self.console = console
        self.study = study
        self.metric = metric
        self.target = target
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
        )
        self.task = None
        self.status = self._status()  # rebuilt on trial events, not on every redraw (no DB query per frame)
        self.live = Live(self, console=console, refresh_per_second=4, transient=True)

    def __rich__(self) -> Group:
        return Group(self.status, self.progress)

    def _status(self) -> Table:
        trials = self.study.get_trials(deepcopy=False)
        counts = state_counts(trials)
        best = best_trial(self.study)
        table = Table.grid(padding=(0, 2))
        done = counts["COMPLETE"] + counts["PRUNED"] + counts["FAIL"]
        target = f"/{self.target}" if self.target else ""
        table.add_row(
            f"[bold]{self.study.study_name}[/]",
            f"trials {done}{target}",
            f"[green]complete {counts['COMPLETE']}[/]",
            f"[cyan]running {counts['RUNNING']}[/]",
            f"[yellow]pruned {counts['PRUNED']}[/]",
            f"[red]failed {counts['FAIL']}[/]",
        )
        if best is not None:
            table.add_row(
                "best", f"{self.metric}={best.value:.4g}", f"trial {best.number}", describe(recipe_of(best)), "", ""
            )
        return table

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
        total = recipe.training["max_steps"]
        self.task = self.progress.add_task(f"trial {number} {label}", total=total, last="")
        self.status = self._status()
        self.live.refresh()

    def step(self, step: int, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=step)

    def evaluated(self, step: int, value: float) -> None:
        if self.task is not None:
            self.progress.update(self.task, last=f"{self.metric}={value:.4g}")

    def trial_finished(self, study: Any, trial: Any) -> None:
        state = trial.state.name
        value = f"{trial.value:.4g}" if trial.value is not None else "-"
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        reason = reason_of(trial)
        self.console.print(
            f"trial {trial.number:>3} [{STATE_STYLE.get(state, '')}]{state:<8}[/] {self.metric}={value:<8} "
            f"{describe(recipe_of(trial))}  {seconds:.1f}s"
            + (f"  ({reason})" if reason and state != "COMPLETE" else ""),
            highlight=False,
        )
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.status = self._status()

    def interrupt_requested(self) -> None:
        self.console.print("[yellow]Stopping after the current batch; press Ctrl-C again to quit at once.[/]")


def summary_table(study: Any, metric: str, limit: int | None = None) -> Table:
    """All trials (or the best ``limit`` complete ones), with state, value, recipe and reason."""
    trials = ranked_trials(study)[:limit] if limit else study.get_trials(deepcopy=False)
    table = Table(title=f"study {study.study_name}")
    for col in ("trial", "state", metric, "optimizer", "schedule", "lr", "time", "reason"):
        table.add_column(col, justify="right" if col in ("trial", metric, "lr", "time") else "left")
    for t in trials:
        recipe = recipe_of(t) or {}
        opt, sched = recipe.get("optimizer", {}), recipe.get("schedule", {})
        lr = opt.get("lr")
        table.add_row(
            str(t.number),
            f"[{STATE_STYLE.get(t.state.name, '')}]{t.state.name}[/]",
            f"{t.value:.4g}" if t.value is not None else "-",
            opt.get("name", "-"),
            sched.get("name", "-"),
            f"{lr:.2e}" if isinstance(lr, float) else "-",
            f"{t.duration.total_seconds():.1f}s" if t.duration else "-",
            reason_of(t),
        )
    return table
