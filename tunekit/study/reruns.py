"""Re-runs of a study's top trials with new seeds, and the robust ranking they give (issue #12).

The re-runs live in a sibling study, ``NAME.reruns`` in the same storage, never in ``NAME``
itself: in ``NAME`` TPE would see each winner's parameters N+1 times and narrow onto them (seed
noise counted as evidence), and the shared trial target, fail-fast, ``best_trial``, ``export``,
the summary table and ``law fit`` would each need a filter to skip them. The sibling leaves all of
that untouched. It holds one objective, the metric (a re-run measures seed noise of the metric;
its cost is not re-measured); its trials carry ``records.RERUN_ATTR`` (``{"of": N, "seed": s}``),
an ``Origin`` of kind "rerun" and their recipe, so a re-run already there is reused.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from tunekit.study.objectives import metric_value
from tunekit.study.records import RERUN_ATTR, describe, recipe_of
from tunekit.study.storage import study_names

RERUN_SUFFIX = ".reruns"
RERUNS_OF_ATTR = "tunekit.reruns_of"  # on the sibling study: the name of the study it re-runs


def rerun_study_name(name: str) -> str:
    return name + RERUN_SUFFIX


def rerun_seeds(recipe: dict, n: int) -> list[int]:
    """The ``n`` new seeds of a trial: the ones after its recipe's own seed."""
    seed = int(recipe["training"].get("seed", 0))
    return [seed + i for i in range(1, n + 1)]


def done_reruns(storage: Any, name: str) -> dict[tuple[int, int], float]:
    """``(trial number, seed) -> metric`` of the complete re-runs of study ``name`` (empty if none)."""
    import optuna

    sibling = rerun_study_name(name)
    if sibling not in study_names(storage):
        return {}
    study = optuna.load_study(study_name=sibling, storage=storage)
    out = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(RERUN_ATTR)
        if t.state.name == "COMPLETE" and key:
            out[(int(key["of"]), int(key["seed"]))] = t.values[0]
    return out


@dataclass(frozen=True)
class RobustRow:
    """One top trial: its own value and its re-runs' values, mean and spread (sample standard deviation)."""

    number: int
    label: str
    value: float
    reruns: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.reruns) if self.reruns else math.nan

    @property
    def spread(self) -> float:
        return statistics.stdev(self.reruns) if len(self.reruns) > 1 else 0.0


def robust_rows(top: list, seeds: int | None, done: dict[tuple[int, int], float], minimize: bool) -> list[RobustRow]:
    """``top`` trials with their re-runs (the first ``seeds`` new seeds, or all present), by mean, best first.

    Trials without a re-run are left out.
    """
    rows = []
    for t in top:
        recipe = recipe_of(t)
        if seeds is None:
            values = [v for (of, _), v in sorted(done.items()) if of == t.number]
        else:
            values = [done[(t.number, s)] for s in rerun_seeds(recipe, seeds) if (t.number, s) in done]
        if values:
            rows.append(RobustRow(t.number, describe(recipe), metric_value(t), values))
    return sorted(rows, key=lambda r: r.mean if minimize else -r.mean)
