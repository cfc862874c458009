"""Schedule-aware fidelity (issue #9): rung budgets, comparison sets, and a pruner that compares only within them.

A trial is judged by comparing its value at a step with other trials' values there. That is fair
only between values that mean the same thing (Wen et al. 2025: compare at the END of a run, since
LR decay flips rankings mid-run). So every value a pruner sees belongs to a comparison set, and a
trial is compared only with its own set:

- ``search --fidelity full`` (the default): values of the main run at a validation step. The set
  is the schedule and its phase at that step (``wsd, at peak LR`` or ``cosine, decaying``): a
  decaying schedule's value is never compared with one that has not decayed yet.
- ``search --fidelity sh``: asynchronous successive halving (ASHA, Li et al. 2020) over rung
  budgets ``max_steps / eta^k`` down to ``--min-steps``. A value at rung ``b`` is the end of a run
  of length ``b``: after a cooldown branch for WSD (``tunekit.training.branches``), the value
  itself for constant and schedule-free runs (``Schedule.rung_value``). Those are one set,
  ``end of run``. A budget-bound schedule (cosine, linear, REX, SGDR) has no end-of-run value
  before its budget. ``--budget-bound`` chooses what it gets instead: ``compressed`` (the default),
  a separate run of the whole schedule in ``b`` steps (an end-of-run value, in the ``end of run``
  set), the full run trained from scratch if promoted; or ``own-schedule``, its value at step ``b``
  of the full-length curve, compared only with trials of the same schedule at the same step.
  Measured on ``benchmarks/search_efficiency.py`` (4 tasks x 3 seeds, issue #9): the same final
  bests either way, but ``own-schedule`` pruned none of the 16 budget-bound trials (the first of
  each schedule has nothing to lose to) while ``compressed`` pruned 7 and spent 8% fewer steps on them.

The rung logic itself is Optuna's (``SuccessiveHalvingPruner``: ASHA's promotion rule, the rung
values stored as system attributes; ``PercentilePruner`` for full fidelity); what is ours is the
view of the study each of them is given: the trials of the judged trial's comparison set, and one
rule on top of ASHA's (``HalvingWithinSpread``): a trial that ASHA would stop goes on when its rung
value is within the seed-to-seed spread of the promotion threshold, since a difference smaller
than the noise says nothing about the run's end (the margin the allocation uses, issue #14).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.catalog import get_schedule
from tunekit.study.allocation import SEED_SPREAD
from tunekit.study.records import RECIPE_ATTR
from tunekit.training.rung_plan import rung_kind

FIDELITIES = ("full", "sh")
# What a budget-bound schedule's trial reports at a rung (--budget-bound, issue #9); the first is the default.
BUDGET_BOUND = ("compressed", "own-schedule")
DEFAULT_ETA = 3
END_OF_RUN = "end of run"  # the comparison set of cooldown and anytime values at a rung


@dataclass(frozen=True)
class Fidelity:
    """How trials are judged: ``full`` (whole budget, late percentile pruning) or ``sh`` (rungs)."""

    mode: str = "full"
    min_steps: int | None = None  # the smallest rung budget (sh); None in full mode
    eta: int = DEFAULT_ETA  # the reduction factor: 1/eta of a rung's trials go on
    budget_bound: str = BUDGET_BOUND[0]  # how budget-bound schedules are judged at a rung (module docstring)

    @classmethod
    def parse(
        cls,
        mode: str | None,
        min_steps: int | None,
        eta: int | None,
        max_steps: int,
        budget_bound: str | None = None,
    ) -> Fidelity:
        """Validated ``--fidelity``, ``--min-steps``, ``--eta``, ``--budget-bound`` (None: the defaults).

        ``--min-steps`` defaults to ``max_steps // eta``: one rung, at a third of the budget for
        eta 3. Measured (benchmarks/search_efficiency.py, issue #9): at 200 steps, rungs at 22 and
        66 pruned the best recipe in 2 of 3 charlm seeds at 22 steps (Muon starts slower than
        AdamW and overtakes it later); one rung at 66 matched full fidelity at 12 trials in all 6
        seeds with 64-80% of its compute.

        Raises:
            BadInput: an unknown mode or ``budget_bound``, ``eta < 2``, ``min_steps`` outside
                ``[1, max_steps]``, or ``min_steps``/``eta``/``budget_bound`` without ``sh``.
        """
        if mode in (None, "full") and (min_steps is not None or eta is not None or budget_bound is not None):
            raise BadInput(
                "--min-steps, --eta and --budget-bound set the rungs of --fidelity sh; add --fidelity sh, or drop them."
            )
        if budget_bound is not None and budget_bound not in BUDGET_BOUND:
            raise BadInput(
                f"--budget-bound {budget_bound} is not a rule; use own-schedule (compared within its schedule) "
                "or compressed (the whole schedule trained in the rung's steps)."
            )
        mode = mode or "full"
        if mode not in FIDELITIES:
            raise BadInput(f"--fidelity {mode} is not a fidelity; use full (whole runs) or sh (successive halving).")
        eta = DEFAULT_ETA if eta is None else eta
        if eta < 2:
            raise BadInput(f"--eta {eta} keeps every trial at every rung; use --eta 2 or more (3 is the default).")
        if min_steps is not None and not 1 <= min_steps <= max_steps:
            raise BadInput(
                f"--min-steps {min_steps} is outside 1..{max_steps} (the --max-steps budget); use a smaller rung."
            )
        if mode == "full":
            return cls("full", None, eta)
        return cls("sh", min_steps or max(1, max_steps // eta), eta, budget_bound or BUDGET_BOUND[0])

    @classmethod
    def from_dict(cls, data: dict | None) -> Fidelity:
        """A study's stored fidelity; studies from before issue #9 have none: full.

        A study stored before ``--budget-bound`` keeps the rule it ran with, ``own-schedule``.
        """
        return cls(**{"budget_bound": "own-schedule", **data}) if data else cls()

    def to_dict(self) -> dict:
        return {"mode": self.mode, "min_steps": self.min_steps, "eta": self.eta, "budget_bound": self.budget_bound}

    @property
    def compressed(self) -> bool:
        """Budget-bound trials train a compressed run per rung (``--budget-bound compressed``)."""
        return self.mode == "sh" and self.budget_bound == "compressed"

    def rungs(self, max_steps: int) -> list[int]:
        """The rung budgets below ``max_steps``, smallest first ([] in full mode)."""
        return rung_budgets(max_steps, self.min_steps, self.eta) if self.mode == "sh" else []


def rung_budgets(max_steps: int, min_steps: int, eta: int) -> list[int]:
    """``m, m*eta, m*eta^2, ...`` below ``max_steps`` with ``m = max_steps // eta^K >= min_steps``.

    These are Optuna's ``SuccessiveHalvingPruner`` rungs with ``min_resource=m`` (its promotion
    steps are ``m * eta^k``), so a value reported at one of them is judged at exactly that rung.
    """
    k = 0
    while max_steps // eta ** (k + 1) >= min_steps:
        k += 1
    smallest = max_steps // eta**k
    return [smallest * eta**i for i in range(k)]


def rung_set(recipe: dict, manual_optimization: bool, compressed: bool = False) -> str:
    """The comparison set of a trial's rung values: ``END_OF_RUN``, or its budget-bound schedule's name.

    With ``compressed`` (``--budget-bound compressed``) every rung value ends a run, so all are ``END_OF_RUN``.
    """
    name = recipe["schedule"]["name"]
    return END_OF_RUN if compressed or rung_kind(name, not manual_optimization) != "budget-bound" else name


def phase_set(recipe: dict, step: int, max_steps: int) -> str:
    """The comparison set of a main-run value at ``step`` (full fidelity): schedule and LR phase.

    ``step`` counts at the default batch (issue #10), ``max_steps`` is the study's budget.
    """
    section = dict(recipe["schedule"])
    schedule = get_schedule(section.pop("name"))
    params = schedule.resolve(section)
    total = recipe["training"]["max_steps"]
    own = round(step * total / max_steps)
    decaying = own >= schedule.warmup_steps(total, params) and schedule.multiplier(own, total, params) < 1 - 1e-12
    return f"{schedule.name} trials {'decaying' if decaying else 'at peak LR'}"


class StudyView:
    """A study that lists only the trials ``keep`` accepts; everything else is the study's own."""

    def __init__(self, study: Any, keep: Callable[[Any], bool]):
        self._study = study
        self._keep = keep

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list:
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if self._keep(t)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


@dataclass(frozen=True)
class Verdict:
    """What the last ``prune`` compared: the set's name and how many values it held."""

    set_name: str
    values: int


class ComparisonSetPruner:
    """An Optuna pruner that judges a trial only against the trials of its comparison set.

    ``set_of(trial, step)`` names a trial's set at ``step`` (trials without a recipe are one set
    of their own, None). Optuna calls a
    study's pruner through ``prune(study, trial)`` only, so this wraps one without subclassing
    ``BasePruner`` (which would import optuna with this module).
    """

    def __init__(self, inner: Any, set_of: Callable[[Any, int], str | None], count: Callable[[list, int], int]):
        self.inner = inner
        self.set_of = set_of
        self.count = count  # values of the set at a step, from its trials (for the reason)
        self.last: Verdict | None = None

    def view(self, study: Any, trial: Any, step: int) -> StudyView:
        mine = self.set_of(trial, step)
        return StudyView(study, lambda t: t.number != trial.number and self.set_of(t, step) == mine)

    def prune(self, study: Any, trial: Any) -> bool:
        step = trial.last_step
        if step is None:
            return False
        view = self.view(study, trial, step)
        verdict = self.inner.prune(view, trial)
        self.last = Verdict(str(self.set_of(trial, step)), self.count(view.get_trials(deepcopy=False), step) + 1)
        return verdict


def recipe_set(set_of_recipe: Callable[[dict, int], str]) -> Callable[[Any, int], str | None]:
    """``set_of(trial, step)`` from a rule on the trial's stored recipe."""

    def set_of(trial: Any, step: int) -> str | None:
        recipe = trial.user_attrs.get(RECIPE_ATTR)
        return set_of_recipe(recipe, step) if recipe else None

    return set_of


class HalvingWithinSpread:
    """Optuna's ASHA (``SuccessiveHalvingPruner``, rungs at ``rungs``), except that a trial within
    ``margin`` (relative) of its rung's promotion threshold is promoted.

    ASHA keeps the best ``1/eta`` of a rung's values whatever their differences. Measured on the
    tabular benchmark (``benchmarks/search_efficiency.py``, seed 2, issue #9): at rung 66 of 200,
    12 of the first 14 values lay within 0.406-0.436, and the recipe that won at 200 steps in the
    full-fidelity study was 10th of the 14 there, so ASHA's cut was noise.
    """

    def __init__(self, rungs: list[int], eta: int, margin: float = SEED_SPREAD):
        import optuna

        self.inner = optuna.pruners.SuccessiveHalvingPruner(min_resource=rungs[0], reduction_factor=eta)
        self.rungs, self.eta, self.margin = rungs, eta, margin

    def prune(self, study: Any, trial: Any) -> bool:
        if not self.inner.prune(study, trial):
            return False
        step = trial.last_step
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        key = f"completed_rung_{_rung_index(self.rungs, step)}"
        sign = 1.0 if study.direction.name == "MINIMIZE" else -1.0
        trials = study.get_trials(deepcopy=False)
        others = [t.system_attrs[key] for t in trials if key in t.system_attrs and t.number != trial.number]
        competing = sorted(sign * v for v in [*others, value] if math.isfinite(v))  # best first
        threshold = competing[max(0, len(competing) // self.eta - 1)]  # ASHA's promotion threshold
        return sign * value > threshold + self.margin * abs(threshold)


def rung_pruner(rungs: list[int], eta: int, manual_optimization: bool, compressed: bool = False) -> ComparisonSetPruner:
    """ASHA within the seed spread (``HalvingWithinSpread``) per comparison set, with rungs at ``rungs``."""
    inner = HalvingWithinSpread(rungs, eta)

    def count(trials: list, step: int) -> int:
        key = f"completed_rung_{_rung_index(rungs, step)}"
        return sum(key in t.system_attrs for t in trials)

    return ComparisonSetPruner(inner, recipe_set(lambda r, _: rung_set(r, manual_optimization, compressed)), count)


def phase_pruner(inner: Any, max_steps: int) -> ComparisonSetPruner:
    """``inner`` (a pruner comparing values at one step) within each schedule-and-phase set."""

    def count(trials: list, step: int) -> int:
        return sum(t.state.name == "COMPLETE" and step in t.intermediate_values for t in trials)

    return ComparisonSetPruner(inner, recipe_set(lambda r, step: phase_set(r, step, max_steps)), count)


def _rung_index(rungs: list[int], step: int) -> int:
    return max((i for i, b in enumerate(rungs) if b <= step), default=0)


def rung_reason(
    rungs: list[int], step: int, max_steps: int, metric: str, value: float, verdict: Verdict, eta: int
) -> str:
    """Why a trial stopped at a rung: the rung, its value, and the set it was compared with."""
    shown = f"{value:.4g}" if math.isfinite(value) else str(value)
    if verdict.set_name == END_OF_RUN:
        among = f"the {verdict.values} end-of-run values (after a cooldown branch, anytime, or compressed to this step)"
    else:
        among = f"the {verdict.values} {verdict.set_name} values at this step (budget-bound: own schedule only)"
    return (
        f"pruned at rung {_rung_index(rungs, step) + 1} of {len(rungs)} (step {step} of {max_steps}, "
        f"{metric}={shown}): behind the best 1/{eta} of {among} by more than the {SEED_SPREAD:.0%} seed spread"
    )
