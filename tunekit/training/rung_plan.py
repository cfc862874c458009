"""What a trial evaluates at its rungs (``search --fidelity sh``, issue #9), without importing torch.

The study side (``tunekit.study.rungs``) chooses the rung budgets and compares values; the
training side (``tunekit.training.branches``) produces a value per rung. This module is the
contract between them: the kind of value a schedule gives at a rung, the step a rung's branch
forks from, and the ``RungPlan`` a trial passes to ``run_fit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tunekit.recipes import Recipe
from tunekit.search_spaces.catalog import get_schedule
from tunekit.search_spaces.schedules import decay_count


def rung_kind(schedule: str, automatic_optimization: bool = True) -> str:
    """``cooldown``, ``anytime`` or ``budget-bound`` (``Schedule.rung_value``) for a trial.

    A cooldown branch runs the module's ``training_step`` in tunekit's own loop, with Lightning's
    closure and clipping (``training.branches``); a module that optimizes manually steps its
    optimizer itself, so its WSD trials get no branch and are compared as budget-bound ones.
    """
    kind = get_schedule(schedule).rung_value
    return "budget-bound" if kind == "cooldown" and not automatic_optimization else kind


def fork_step(recipe: Recipe, budget: int, kind: str) -> int:
    """The step a rung's branch starts from: ``b - floor(decay_fraction * b)`` for a cooldown, else ``b``.

    Hägele et al. 2024: a cooldown of the run's own length fraction and shape from any step of
    the stable phase gives the loss of a run of that length. At least step 1 (there is no state
    to fork before the first step).
    """
    if kind != "cooldown":
        return budget
    return max(1, budget - decay_count(recipe.schedule.params["decay_fraction"], budget))


def decay_start(recipe: Recipe) -> int | None:
    """The step a cooldown schedule's main run starts to decay (its stable phase's last state), else None."""
    if rung_kind(recipe.schedule.name) != "cooldown":
        return None
    total = recipe.training.max_steps
    return total - decay_count(recipe.schedule.params["decay_fraction"], total)


@dataclass(frozen=True)
class RungValue:
    """A trial's value at rung ``budget`` (its own optimizer steps), measured from step ``fork``."""

    budget: int
    fork: int
    value: float


@dataclass
class RungPlan:
    """The rung budgets of one trial (its own steps, smallest first) and where their values go.

    ``on_rung(RungValue)`` is called once per rung, in order, and may raise (``optuna.TrialPruned``)
    to stop the trial there. ``should_stop()`` is polled after each branch step (Ctrl-C).
    ``branch_steps`` counts the optimizer steps trained in branches: a trial's cost is its main
    steps plus these. ``keep_stable``: the path of a Lightning checkpoint a WSD trial writes when its
    main run reaches its decay (``training.stable_phase``).
    """

    budgets: Sequence[int]
    on_rung: Callable[[RungValue], None]
    should_stop: Callable[[], bool] | None = None
    branch_steps: int = field(default=0)
    keep_stable: str | None = None  # WSD-S: a WSD trial saves its state at its decay's start here
