"""Everything the report shows, read from a study: the one module of the report that knows how
tunekit stores trials (attribute keys, settings, priors), so a change of storage layout is a
change here only (issue #13 moves those modules).

The figures and writers take a :class:`ReportData` and never touch Optuna's study themselves.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tunekit.errors import BadInput

# Importances from fewer complete trials than this are noise; the report says so instead.
MIN_TRIALS_FOR_IMPORTANCE = 4
# Points of a schedule's LR multiplier curve drawn per trial (a curve, not every step).
MULTIPLIER_POINTS = 200


@dataclass(frozen=True)
class TrialView:
    """One trial as the report draws it.

    ``curve`` holds the values reported to Optuna, ``(step, value)`` sorted by step; ``lr`` is the
    recipe's peak LR of the optimizer's main parameter group; ``schedule`` the recipe's schedule
    section ``{"name": ..., **params}``.
    """

    number: int
    state: str
    value: float | None
    family: str | None
    schedule: dict | None
    lr: float | None
    max_steps: int | None
    curve: list[tuple[int, float]]
    reason: str
    origin: str
    seconds: float
    label: str

    @property
    def schedule_name(self) -> str | None:
        return self.schedule["name"] if self.schedule else None

    @property
    def last_value(self) -> float | None:
        """The final value, or for a pruned trial the last value it reported."""
        if self.value is not None:
            return self.value
        return self.curve[-1][1] if self.curve else None

    @property
    def steps_trained(self) -> int:
        """Optimizer steps this trial ran: its budget when complete, else its last reported step."""
        if self.state == "COMPLETE" and self.max_steps:
            return self.max_steps
        return self.curve[-1][0] if self.curve else 0


@dataclass(frozen=True)
class Prediction:
    """The prior's LR for one family (the centre of its searched range) and the range itself."""

    lr: float
    low: float
    high: float


@dataclass
class Cell:
    """One family x schedule cell: the best complete value (None if none completed), trials, pruned."""

    best: float | None
    trials: int
    pruned: int

    def caption(self) -> str:
        return f"{self.trials} trial{'s' if self.trials != 1 else ''}, {self.pruned} pruned"


@dataclass
class ReportData:
    """A study as the report shows it.

    Attributes:
        trials: every trial that ran or waits to run, by number (surplus trials, given up before
            starting, are left out).
        importances: per scope ("all families", then each family) ``(study of its complete trials,
            parameters to assess)`` for Optuna's importance evaluator, or the sentence saying why not.
    """

    study: str
    script: str
    metric: str
    direction: str
    max_steps: int
    evaluations: int
    target_trials: int | None
    families: list[str]
    schedules: list[str]
    prior: dict
    predictions: dict[str, Prediction]
    trials: list[TrialView]
    counts: dict[str, int]
    best: TrialView
    best_yaml: str
    export_command: str
    importances: dict[str, Any] = field(default_factory=dict)
    also: str | None = None  # the second objective of a search --also study
    pareto: Any = None  # with ``also``: Optuna's Pareto-front figure (plotly), metric against the cost
    robust: list = field(default_factory=list)  # RobustRow of show --robust's re-runs, best mean first

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"

    def ranked(self) -> list[TrialView]:
        """Complete trials, best first."""
        sign = 1 if self.minimize else -1
        return sorted((t for t in self.trials if t.state == "COMPLETE"), key=lambda t: sign * t.value)

    def finished(self) -> list[TrialView]:
        return [t for t in self.trials if t.state in ("COMPLETE", "PRUNED", "FAIL")]

    def curve_trials(self, k: int) -> list[TrialView]:
        """The ``k`` best complete trials, then up to ``k`` pruned ones (latest first), for learning curves."""
        pruned = [t for t in reversed(self.trials) if t.state == "PRUNED" and t.curve]
        return self.ranked()[:k] + pruned[:k]

    def best_so_far(self) -> list[tuple[int, TrialView]]:
        """``(trial number, best complete trial up to it)`` for each trial from the first complete one on."""
        sign = 1 if self.minimize else -1
        out: list[tuple[int, TrialView]] = []
        best: TrialView | None = None
        for t in self.trials:
            if t.value is not None and (best is None or sign * t.value < sign * best.value):
                best = t
            if best is not None:
                out.append((t.number, best))
        return out

    def grid(self) -> dict[tuple[str, str], Cell]:
        """Family x schedule cells that have finished trials: best value, trials, pruned."""
        cells: dict[tuple[str, str], Cell] = {}
        sign = 1 if self.minimize else -1
        for t in self.finished():
            cell = cells.setdefault((t.family, t.schedule_name), Cell(None, 0, 0))
            cell.trials += 1
            cell.pruned += t.state == "PRUNED"
            if t.value is not None and (cell.best is None or sign * t.value < sign * cell.best):
                cell.best = t.value
        return cells

    def total_seconds(self) -> float:
        return sum(t.seconds for t in self.trials)

    def total_steps(self) -> int:
        return sum(t.steps_trained for t in self.trials)


def load_report_data(storage_url: str, study_name: str) -> ReportData:
    """Read a study for the report.

    Raises:
        BadInput: no such study, not a tunekit study, or no complete trial yet (nothing to report).
    """
    from tunekit.study.records import is_surplus, state_counts
    from tunekit.study.reruns import done_reruns, robust_rows
    from tunekit.study.settings import best_trial, open_study, ranked_trials
    from tunekit.study.storage import open_storage

    storage = open_storage(storage_url)
    study, settings = open_study(storage, study_name)
    best = best_trial(study)
    if best is None:
        raise BadInput(
            f"study '{study_name}' has no complete trial yet, so there is nothing to report; "
            f"run tunekit resume --study {study_name} (tunekit show lists why trials stopped)."
        )
    frozen = [t for t in study.get_trials(deepcopy=False) if not is_surplus(t)]
    trials = [_view(t) for t in frozen]
    space = settings.space
    return ReportData(
        study=study_name,
        script=settings.script.path,
        metric=settings.metric,
        direction=settings.direction,
        max_steps=space.max_steps,
        evaluations=space.evaluations,
        target_trials=settings.target_trials,
        families=list(space.optimizers),
        schedules=list(space.schedules),
        prior=dict(settings.prior),
        predictions=_predictions(space),
        trials=trials,
        counts=state_counts(frozen),
        best=next(t for t in trials if t.number == best.number),
        best_yaml=_best_yaml(study_name, settings, best),
        export_command=_export_command(storage_url, study_name),
        importances=_importance_studies(study, frozen),
        also=settings.also,
        pareto=_pareto_figure(study, settings),
        robust=robust_rows(ranked_trials(study), None, done_reruns(storage, study_name), settings.minimize),
    )


def multiplier_curve(trial: TrialView) -> tuple[list[int], list[float]]:
    """The LR multiplier the trial's schedule applied at each drawn step of its budget.

    From the schedule registry's pure functions, so it is exactly what training applied; a
    schedule-free trial (``none``) reads 1 throughout (its optimizer owns its warmup).
    """
    from tunekit.search_spaces.catalog import get_schedule, resolve_params

    if not trial.schedule or not trial.max_steps:
        return [], []
    schedule = get_schedule(trial.schedule_name)
    params = resolve_params(schedule.name, trial.schedule)
    total = trial.max_steps
    steps = sorted({round(i * total / MULTIPLIER_POINTS) for i in range(MULTIPLIER_POINTS + 1)})
    return steps, [schedule.multiplier(s, total, params) for s in steps]


@contextlib.contextmanager
def quiet_small_regimes() -> Iterator[None]:
    """Silence PED-ANOVA's warning that a value was tried fewer than twice: in a small study that
    is every categorical, and the report already says importances from few trials are rough."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Some regimes for parameter")
        yield


def _view(trial: Any) -> TrialView:
    from tunekit.study.objectives import metric_value
    from tunekit.study.records import curve_of, describe, reason_of, recipe_of

    recipe = recipe_of(trial) or {}
    optimizer = recipe.get("optimizer") or {}
    return TrialView(
        number=trial.number,
        state=trial.state.name,
        value=metric_value(trial) if trial.state.name == "COMPLETE" else None,
        family=optimizer.get("name") or trial.params.get("optimizer"),
        schedule=recipe.get("schedule"),
        lr=optimizer.get("lr"),
        max_steps=(recipe.get("training") or {}).get("max_steps"),
        curve=sorted(curve_of(trial).items()),
        reason=reason_of(trial),
        origin=_origin_label(trial),
        seconds=trial.duration.total_seconds() if trial.duration else 0.0,
        label=describe(recipe or None),
    )


def _origin_label(trial: Any) -> str:
    """Where the trial came from, as ``show`` says it; empty for a trial the sampler drew."""
    from tunekit.study.records import origin_of

    origin = origin_of(trial)
    return origin.describe() if origin else ""


def _predictions(space: Any) -> dict[str, Prediction]:
    """Each searched family's predicted LR and range, exactly as the search space centred them."""
    from tunekit.priors._registry import family_ranges

    ranges = family_ranges(space.centre_lr, space.span_scale, list(space.optimizers))
    return {r.family: Prediction(r.centre, r.low, r.high) for r in ranges if r.param == "lr"}


def _best_yaml(study_name: str, settings: Any, best: Any) -> str:
    """The best recipe exactly as ``tunekit export`` writes it (result section included)."""
    from dataclasses import replace

    from tunekit.recipes import Recipe
    from tunekit.study.records import recipe_of

    result = {"metric": settings.metric, "value": float(best.values[0]), "study": study_name, "trial": best.number}
    return replace(Recipe.from_dict(recipe_of(best), where=f"trial {best.number}'s recipe"), result=result).to_yaml()


def _export_command(storage_url: str, study_name: str) -> str:
    """The export command to print; ``--storage`` only when it is not the default (the report sits
    below the command line, issue #13, so it does not borrow the CLI's helper for this)."""
    from tunekit.study.storage import DEFAULT_STORAGE

    flag = "" if storage_url == DEFAULT_STORAGE else f" --storage {storage_url}"
    return f"tunekit export --study {study_name}{flag} -o {study_name}.yaml"


def _pareto_figure(study: Any, settings: Any) -> Any:
    """Optuna's Pareto-front plot of a search --also study (None with one objective)."""
    if not settings.also:
        return None
    import optuna

    from tunekit.study.objectives import COSTS

    cost = COSTS[settings.also]
    return optuna.visualization.plot_pareto_front(
        study, target_names=[settings.metric, f"{cost.name} ({cost.unit})"], include_dominated_trials=True
    )


def _importance_studies(study: Any, trials: list) -> dict[str, Any]:
    """Per scope, ``(in-memory study of its complete trials, parameters to assess)`` or why not.

    Only parameters that at least ``MIN_TRIALS_FOR_IMPORTANCE`` trials of the scope have, with more
    than one value among them, are assessed: another family's conditional parameters would only add
    rows of zeros.
    """
    import optuna

    complete = [t for t in trials if t.state.name == "COMPLETE"]
    scopes = {"all families": complete}
    for t in complete:
        scopes.setdefault(t.params.get("optimizer", "?"), []).append(t)
    out: dict[str, Any] = {}
    for scope, members in scopes.items():
        names = sorted({k for t in members for k in t.params})
        params = [
            p
            for p in names
            if sum(p in t.params for t in members) >= MIN_TRIALS_FOR_IMPORTANCE
            and len({repr(t.params.get(p)) for t in members if p in t.params}) > 1
        ]
        if len(members) < MIN_TRIALS_FOR_IMPORTANCE or not params:
            out[scope] = (
                f"{len(members)} complete trial(s); importances need at least {MIN_TRIALS_FOR_IMPORTANCE} "
                "that vary a parameter."
            )
            continue
        # the metric alone, also in a multi-objective study (search --also): importances for the metric
        sub = optuna.create_study(direction=study.directions[0])
        sub.add_trials(
            optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=t.values[0])
            for t in members
        )
        out[scope] = (sub, params)
    return out
