"""Learning-rate schedules: a registry of pure multiplier functions.

A schedule is a function ``fn(step, total, **params) -> float`` giving the multiplier of the peak
learning rate, in [0, 1], at optimizer step ``step`` of a trial of ``total`` optimizer steps.
Schedules step once per optimizer step, never per epoch. Formulas and sources are in
cited at each registration in ``builtin_schedules.py``.

Time convention (the same for every schedule):

- ``step`` and ``total`` given to ``fn`` are absolute: step 0 is the first optimizer step, and the
  trial's optimizer steps are ``0 .. total - 1``. ``multiplier(..., total)`` is the value the
  schedule reaches at the end of the budget (the floor); steps past ``total`` read as ``total``.
- Warmup is shared and applied by :func:`multiplier`, not by ``fn``: with
  ``W = ceil(warmup_fraction * total)`` (:func:`warmup_count`; at least one step whenever the
  fraction is positive, issue #10), steps ``t < W`` get
  ``t/W + (1 - t/W)/100`` (linear from 1% of peak, epfml/schedules-and-scaling ``wsd_schedule``)
  and ``fn`` applies from step ``W`` on.
  ``none`` (schedule-free optimizers) gets no warmup here: the optimizer owns it.
- Schedules that decay over the whole run (``cosine``, ``linear``, ``rex``, ``sgdr``) measure
  progress over the post-warmup steps, ``p = (t - W) / (total - W)`` (:func:`post_warmup_progress`),
  as google/init2winit's schedule families do: the decay starts at exactly 1 where warmup ends
  (no jump) and reaches its floor exactly at ``total``, whatever the warmup.
- ``wsd`` counts its decay from the end of the run, as Hägele et al. define it: the last
  ``floor(decay_fraction * total)`` steps, so the decay length does not depend on the warmup.

Nothing here imports torch: ``tunekit schedules`` imports this module and must stay fast. The
curves are in ``builtin_schedules.py``, the registry in ``catalog.py``, the torch scheduler that
runs them in ``tunekit.training.lr_scheduler`` and plots in ``schedule_plots.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.params import FloatRange, Param

# Warmup starts at 1% of the peak LR (epfml/schedules-and-scaling `init_div_factor=100`).
WARMUP_START = 0.01
# Every built-in schedule's default warmup: 5% of the budget (the one place this number lives).
DEFAULT_WARMUP_FRACTION = 0.05
# Suggested search range for the shared `warmup_fraction` (the space builder owns the shared axes).
WARMUP_SPACE = FloatRange(0.0, 0.2)

# How a schedule's value at a rung is read (Schedule.rung_value, issue #9).
RUNG_VALUES = ("cooldown", "anytime", "budget-bound")

# A check normalises one parameter value or raises ValueError with the end of a sentence
# ("must be a number in [0, 1], got 1.5"); Schedule.resolve turns that into BadInput.
Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Schedule:
    """One registry entry.

    Attributes:
        name: registry key, as written in recipes (``schedule: {name: wsd, ...}``).
        description: one line for ``tunekit schedules``.
        source: the paper or code whose formula ``fn`` follows.
        fn: ``fn(step, total, **params) -> float``, the multiplier in [0, 1] from the end of warmup on.
            ``params`` is the full resolved set, ``warmup_fraction`` included (see the module
            docstring for the time convention).
        space: the schedule's own searched parameters (the shared ``warmup_fraction`` is not in it).
        defaults: every parameter the schedule takes, with its default, ``warmup_fraction`` included.
        checks: per parameter, a validator (see ``Check``); every key of ``defaults`` has one.
        check_all: optional validator of the resolved parameters together (raises ValueError).
        schedule_free: True only for ``none``: the optimizer averages iterates and owns its warmup,
            so no LR scheduler is built and the multiplier is always 1.
        rung_value: what the value at step ``b`` of a longer run says about a run of length ``b``
            (``search --fidelity sh``, issue #9; one of ``RUNG_VALUES``): ``cooldown``, the end of
            such a run after a cooldown branch with the schedule's own decay (WSD, Hägele et al.
            2024); ``anytime``, that value itself (no decay: constant, schedule-free); ``budget-bound``,
            nothing (the curve depends on the total budget: compared only with the same schedule at
            the same step). A schedule registered without it is budget-bound, the safe choice.
    """

    name: str
    description: str
    source: str
    fn: Callable[..., float]
    space: Mapping[str, Param]
    defaults: Mapping[str, Any]
    checks: Mapping[str, Check] = field(default_factory=dict)
    check_all: Callable[[Mapping[str, Any]], None] | None = None
    schedule_free: bool = False
    rung_value: str = "budget-bound"

    def __post_init__(self) -> None:
        """Validated at construction: ``defaults`` include ``warmup_fraction``, ``space`` and ``checks``
        name only parameters of ``defaults`` (checks: all of them), and every default passes its check.

        Raises:
            ValueError: the entry is inconsistent.
        """
        # Read-only views: a registered entry cannot be changed behind the registry's back.
        for attr in ("space", "defaults", "checks"):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))
        keys = set(self.defaults)
        if self.rung_value not in RUNG_VALUES:
            raise ValueError(f"schedule '{self.name}': rung_value must be one of {RUNG_VALUES}")
        if self.rung_value == "cooldown" and not {"decay_fraction", "decay_shape"} <= keys:
            raise ValueError(f"schedule '{self.name}': a cooldown schedule takes decay_fraction and decay_shape")
        if "warmup_fraction" not in keys:
            raise ValueError(f"schedule '{self.name}': defaults must include warmup_fraction")
        if not set(self.space) <= keys or set(self.checks) != keys:
            raise ValueError(
                f"schedule '{self.name}': space {sorted(self.space)} and checks {sorted(self.checks)} "
                f"must name parameters of defaults {sorted(keys)} (checks: all of them)"
            )
        try:
            self.resolve({})
        except BadInput as err:
            raise ValueError(f"schedule '{self.name}': its defaults are invalid: {err}") from err

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults merged with ``params``, validated.

        Args:
            params: parameter overrides. A ``name`` key equal to this schedule's name is ignored,
                so a recipe's schedule section can be passed as is.

        Returns:
            Every parameter with its value (ints given for float parameters become floats).

        Raises:
            BadInput: unknown parameter (the message lists the valid ones), or a value of the wrong
                type or out of range (the message names the parameter).
        """
        name = self.name
        given = dict(params or {})
        if "name" in given and (section := given.pop("name")) != name:
            raise BadInput(f"schedule section names {section!r} but {name!r} was asked for.")
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise BadInput(
                f"schedule '{name}' has no parameter {', '.join(map(repr, unknown))}; "
                f"valid parameters: {', '.join(self.defaults)}."
            )
        resolved = {**self.defaults, **given}
        for key, value in resolved.items():
            try:
                resolved[key] = self.checks[key](value)
            except ValueError as err:
                raise BadInput(f"schedule '{name}': parameter '{key}' {err}.") from None
        if self.check_all is not None:
            try:
                self.check_all(resolved)
            except ValueError as err:
                raise BadInput(f"schedule '{name}': {err}.") from None
        return resolved

    def warmup_steps(self, total: int, params: Mapping[str, Any] | None = None) -> int:
        """``W = ceil(warmup_fraction * total)`` (:func:`warmup_count`; a schedule-free optimizer takes these)."""
        return warmup_count(self.resolve(params)["warmup_fraction"], total)

    def multiplier(self, step: int, total: int, params: Mapping[str, Any]) -> float:
        """The full multiplier (warmup included) with already resolved ``params``; no validation."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if total < 1:
            raise BadInput(f"the schedule needs a budget of at least 1 optimizer step, got {total}.")
        t = min(step, total)
        if self.schedule_free:
            return float(self.fn(t, total, **params))
        w = warmup_count(params["warmup_fraction"], total)
        if t < w:
            # Warmup: linear from WARMUP_START to 1 over W steps (epfml/schedules-and-scaling).
            return t / w + (1 - t / w) * WARMUP_START
        return float(self.fn(t, total, **params))


def post_warmup_progress(step: int, total: int, warmup_fraction: float) -> float:
    """``p = (step - W) / (total - W)`` clipped to [0, 1]: 0 where warmup ends, 1 at ``total``.

    This is the clock of the schedules that decay over the whole run (cosine, linear, rex, sgdr).
    With no post-warmup steps (``W >= total``) it is 1.
    """
    w = warmup_count(warmup_fraction, total)
    if total <= w:
        return 1.0
    return min(max((step - w) / (total - w), 0.0), 1.0)


def warmup_count(warmup_fraction: float, total: int) -> int:
    """Warmup steps of a ``total``-step trial: ``W = ceil(warmup_fraction * total)``, at most ``total``.

    Rounded up, so any positive fraction gives at least one warmup step (issue #10: Python's
    ``round`` rounds half to even, and ``round(0.05 * 10) == 0`` silently dropped the warmup of a
    10-step trial). 1e-9 absorbs float error in the product (``0.07 * 100 == 7.000000000000001`` is
    7 steps, not 8), as :func:`decay_count` does.
    """
    if warmup_fraction <= 0:
        return 0
    return min(total, max(1, math.ceil(warmup_fraction * total - 1e-9)))


def decay_count(decay_fraction: float, total: int) -> int:
    # floor; 1e-9 absorbs float error in the product (0.29 * 100 = 28.999999999999996 is 29 steps).
    return math.floor(decay_fraction * total + 1e-9)


# --- Parameter checks ---------------------------------------------------------------------------


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return float(value)


def fraction(value: Any) -> float:
    x = number(value)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"must be a fraction in [0, 1], got {value!r}")
    return x


def positive(value: Any) -> float:
    x = number(value)
    if x <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return x


def at_least_one(value: Any) -> float:
    x = number(value)
    if x < 1:
        raise ValueError(f"must be >= 1, got {value!r}")
    return value if isinstance(value, int) else x  # an int stays an int in the recipe (t_mult: 2)


def count(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be an integer >= 1, got {value!r}")
    return value


def one_of(*choices: str) -> Check:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check
