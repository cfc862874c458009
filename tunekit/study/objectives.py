"""A study's objectives: the metric alone, or the metric plus a cost (``search --also``, issue #12).

With ``--also seconds`` or ``--also peak_memory`` the Optuna study has two objectives, both
stored on every trial as ``trial.values``: the metric first (in the study's direction), then the
cost (always minimized). ``trial.value`` does not exist on such trials, so every reader of a
trial's outcome goes through :func:`metric_value`, and "best" means best on the metric: the
trade-off itself is the Pareto front (:func:`pareto_front`, ``export --pareto``, the report).

Optuna does not prune multi-objective studies (``Trial.report`` raises there). tunekit keeps the
pruning rule of single-objective studies on the first objective only: the same percentile, the
same warm-up and start-up trials, at the same validation step, computed by
:func:`should_prune_first_objective` from the other trials' intermediate values, which tunekit
writes itself in this mode (``records.CURVE_ATTR``, read by :func:`tunekit.study.records.curve_of`;
not Optuna's intermediate values: on a pruned trial those make Optuna 5.1's multi-objective TPE
ask for ``study.direction``, which raises). The cost is never pruned on.

The sampler stays ``study.sampling.make_sampler``'s TPE, which is multi-objective itself (MOTPE,
Ozaki et al. 2020, https://doi.org/10.1145/3377930.3389817) and keeps what the single-objective
search relies on: ``group=True`` for the conditional space (each family's own parameters), the
queued prior predictions and ``constant_liar`` for parallel workers. NSGA-II would sample those
conditional parameters independently at random and needs generations of many trials, more than a
tunekit study runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tunekit.errors import BadInput
from tunekit.study.records import curve_of
from tunekit.study.sampling import PRUNE_PERCENTILE, PRUNE_STARTUP_TRIALS


@dataclass(frozen=True)
class Cost:
    """A second objective: what it measures and the unit ``show`` and the report print."""

    name: str
    unit: str
    description: str


COSTS = {
    "seconds": Cost("seconds", "s", "wall-clock seconds of the trial's training (run_fit, validation included)"),
    "peak_memory": Cost(
        "peak_memory",
        "MiB",
        "peak memory of the trial: torch.cuda.max_memory_allocated on a CUDA device, else the process's "
        "peak resident set size (Linux VmHWM, reset before each trial)",
    ),
}


def check_also(name: str | None) -> str | None:
    """``name`` if it is a known cost (or None).

    Raises:
        BadInput: an unknown cost.
    """
    if name is None or name in COSTS:
        return name
    raise BadInput(f"--also must be one of {', '.join(COSTS)}, not '{name}'; use --also seconds or --also peak_memory.")


def directions(direction: str, also: str | None) -> list[str]:
    """The Optuna study's directions: the metric's, then the cost's (minimized) with ``also``."""
    return [direction] + (["minimize"] if also else [])


def metric_value(trial: Any) -> float | None:
    """The trial's metric (its first objective), or None when it has no value (not complete)."""
    values = trial.values
    return values[0] if values else None


def cost_value(trial: Any) -> float | None:
    """The trial's cost (its second objective), or None in a single-objective study."""
    values = trial.values
    return values[1] if values and len(values) > 1 else None


def is_multi_objective(study: Any) -> bool:
    return len(study.directions) > 1


def pareto_front(study: Any) -> list:
    """The complete trials no other complete trial beats on both objectives, by metric (best first).

    Empty for a single-objective study. Optuna's ``best_trials`` computes the front.
    """
    if not is_multi_objective(study):
        return []
    sign = 1 if study.directions[0].name == "MINIMIZE" else -1
    return sorted(study.best_trials, key=lambda t: sign * t.values[0])


def should_prune_first_objective(study: Any, step: int, seen: list[float], max_steps: int) -> bool:
    """The single-objective pruning rule, on the metric of a multi-objective study.

    As ``optuna.pruners.PercentilePruner(PRUNE_PERCENTILE, n_startup_trials=PRUNE_STARTUP_TRIALS,
    n_warmup_steps=max_steps // 2)`` decides it: no pruning before the warm-up step or before
    ``PRUNE_STARTUP_TRIALS`` trials completed; then prune when the trial's best value so far
    (``seen``: its values up to ``step``) is worse than the percentile of the complete trials'
    values at ``step``; a trial with only NaN so far is pruned.
    """
    import numpy as np

    if step < max_steps // 2:
        return False
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    at_step = [c[step] for c in map(curve_of, complete) if step in c]
    if len(complete) < PRUNE_STARTUP_TRIALS or not any(math.isfinite(v) for v in at_step):
        return False
    finite = [v for v in seen if math.isfinite(v)]
    if not finite:
        return True
    minimize = study.directions[0].name == "MINIMIZE"
    best = min(finite) if minimize else max(finite)
    threshold = float(np.nanpercentile(at_step, PRUNE_PERCENTILE if minimize else 100 - PRUNE_PERCENTILE))
    return best > threshold if minimize else best < threshold
