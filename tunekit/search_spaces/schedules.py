"""Learning-rate schedules: a registry of pure multiplier functions.

A schedule is a function ``fn(step, total, **params) -> float`` giving the multiplier of the peak
learning rate, in [0, 1], at optimizer step ``step`` of a trial of ``total`` optimizer steps.
Schedules step once per optimizer step, never per epoch. Formulas and sources are in
``shared/literature.md`` ("Learning-rate schedules"); each registration cites its own.

Time convention (the same for every schedule):

- ``step`` and ``total`` given to ``fn`` are absolute: step 0 is the first optimizer step, and the
  trial's optimizer steps are ``0 .. total - 1``. ``multiplier(..., total)`` is the value the
  schedule reaches at the end of the budget (the floor); steps past ``total`` read as ``total``.
- Warmup is shared and applied by :func:`multiplier`, not by ``fn``: with
  ``W = round(warmup_fraction * total)`` (Python's round), steps ``t < W`` get
  ``t/W + (1 - t/W)/100`` (linear from 1% of peak, epfml/schedules-and-scaling ``wsd_schedule``)
  and ``fn`` applies from step ``W`` on.
  ``none`` (schedule-free optimizers) gets no warmup here: the optimizer owns it.
- Schedules that decay over the whole run (``cosine``, ``linear``, ``rex``, ``sgdr``) measure
  progress over the post-warmup steps, ``p = (t - W) / (total - W)`` (:func:`post_warmup_progress`),
  as google/init2winit's schedule families do: the decay starts at exactly 1 where warmup ends
  (no jump) and reaches its floor exactly at ``total``, whatever the warmup.
- ``wsd`` counts its decay from the end of the run, as Hägele et al. define it: the last
  ``floor(decay_fraction * total)`` steps, so the decay length does not depend on the warmup.

Nothing here imports torch: ``tunekit schedules`` imports this module and must stay fast.
:func:`build_lr_scheduler` imports torch when called; plots are in ``schedule_plots.py``.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, KeysView, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tunekit.errors import BadInput
from tunekit.registry import Registry
from tunekit.search_spaces.params import Choice, FloatRange, IntRange, Param

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from tunekit.training.lr_scheduler import ScheduleLR

__all__ = [
    "SCHEDULE_NAMES",
    "WARMUP_SPACE",
    "WARMUP_START",
    "Schedule",
    "build_lr_scheduler",
    "get_schedule",
    "list_schedules",
    "multiplier",
    "post_warmup_progress",
    "register",
    "resolve_params",
    "sgdr_restarts",
    "warmup_steps",
]

# Warmup starts at 1% of the peak LR (epfml/schedules-and-scaling `init_div_factor=100`).
WARMUP_START = 0.01
# Suggested search range for the shared `warmup_fraction` (the space builder owns the shared axes).
WARMUP_SPACE = FloatRange(0.0, 0.2)

# A check normalises one parameter value or raises ValueError with the end of a sentence
# ("must be a number in [0, 1], got 1.5"); resolve_params turns that into BadInput.
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

    def __post_init__(self) -> None:
        # Read-only views: a registered entry cannot be changed behind the registry's back.
        for attr in ("space", "defaults", "checks"):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))

    def multiplier(self, step: int, total: int, params: Mapping[str, Any]) -> float:
        """The full multiplier (warmup included) with already resolved ``params``; no validation."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if total < 1:
            raise BadInput(f"the schedule needs a budget of at least 1 optimizer step, got {total}.")
        t = min(step, total)
        if self.schedule_free:
            return float(self.fn(t, total, **params))
        w = _warmup_count(params["warmup_fraction"], total)
        if t < w:
            # Warmup: linear from WARMUP_START to 1 over W steps (epfml/schedules-and-scaling).
            return t / w + (1 - t / w) * WARMUP_START
        return float(self.fn(t, total, **params))


_REGISTRY: Registry[Schedule] = Registry("schedule")
# Live view of the registered names, in registration order.
SCHEDULE_NAMES: KeysView[str] = _REGISTRY.keys()


def register(schedule: Schedule, *, replace: bool = False) -> Schedule:
    """Add a schedule to the registry.

    Args:
        schedule: the entry; its ``defaults`` must include ``warmup_fraction``, its ``space`` and
            ``checks`` must name only parameters in ``defaults``, and every default must pass its check.
        replace: allow overwriting an entry of the same name.

    Returns:
        The schedule, so ``register`` can be used on a module-level constant.

    Raises:
        ValueError: the name is taken (without ``replace``) or the entry is inconsistent.
    """
    keys = set(schedule.defaults)
    if "warmup_fraction" not in keys:
        raise ValueError(f"schedule '{schedule.name}': defaults must include warmup_fraction")
    if not set(schedule.space) <= keys or set(schedule.checks) != keys:
        raise ValueError(
            f"schedule '{schedule.name}': space {sorted(schedule.space)} and checks {sorted(schedule.checks)} "
            f"must name parameters of defaults {sorted(keys)} (checks: all of them)"
        )
    _REGISTRY.add(schedule, replace=replace)
    try:
        resolve_params(schedule.name, {})
    except BadInput as err:
        del _REGISTRY[schedule.name]
        raise ValueError(f"schedule '{schedule.name}': its defaults are invalid: {err}") from err
    return schedule


def get_schedule(name: str) -> Schedule:
    """The registered schedule called ``name``.

    Raises:
        BadInput: no schedule has that name; the message lists the valid names.
    """
    return _REGISTRY.lookup(name)


def list_schedules(pattern: str = "*") -> list[Schedule]:
    """Registered schedules whose name matches the glob ``pattern``, in registration order."""
    return _REGISTRY.matching(pattern)


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The schedule's defaults merged with ``params``, validated.

    Args:
        name: a registered schedule name.
        params: parameter overrides. A ``name`` key equal to ``name`` is ignored, so a recipe's
            schedule section can be passed as is.

    Returns:
        Every parameter of the schedule with its value (ints given for float parameters become floats).

    Raises:
        BadInput: unknown schedule, unknown parameter (the message lists the valid ones), or a value of
            the wrong type or out of range (the message names the parameter).
    """
    schedule = get_schedule(name)
    given = dict(params or {})
    if "name" in given and (section := given.pop("name")) != name:
        raise BadInput(f"schedule section names {section!r} but {name!r} was asked for.")
    unknown = sorted(set(given) - set(schedule.defaults))
    if unknown:
        raise BadInput(
            f"schedule '{name}' has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(schedule.defaults)}."
        )
    resolved = {**schedule.defaults, **given}
    for key, value in resolved.items():
        try:
            resolved[key] = schedule.checks[key](value)
        except ValueError as err:
            raise BadInput(f"schedule '{name}': parameter '{key}' {err}.") from None
    if schedule.check_all is not None:
        try:
            schedule.check_all(resolved)
        except ValueError as err:
            raise BadInput(f"schedule '{name}': {err}.") from None
    return resolved


def multiplier(
    schedule: str | Mapping[str, Any], step: int, total: int, params: Mapping[str, Any] | None = None
) -> float:
    """The LR multiplier at optimizer step ``step`` of ``total``, warmup included.

    Args:
        schedule: a schedule name, or a recipe's schedule section ``{"name": ..., **params}``.
        step: optimizer step, from 0. Steps past ``total`` read as ``total``.
        total: optimizer steps in the trial (>= 1).
        params: parameter overrides (merged over those of a schedule section).

    Returns:
        The multiplier in [0, 1]: the LR used by optimizer step ``step`` is ``peak_lr * multiplier``.

    Raises:
        BadInput: unknown schedule or invalid parameters.
    """
    name, merged = _split(schedule, params)
    return get_schedule(name).multiplier(step, total, resolve_params(name, merged))


def warmup_steps(schedule: str | Mapping[str, Any], total: int, params: Mapping[str, Any] | None = None) -> int:
    """``W = round(warmup_fraction * total)``: warmup steps of a trial (a schedule-free optimizer takes these)."""
    name, merged = _split(schedule, params)
    return _warmup_count(resolve_params(name, merged)["warmup_fraction"], total)


def post_warmup_progress(step: int, total: int, warmup_fraction: float) -> float:
    """``p = (step - W) / (total - W)`` clipped to [0, 1]: 0 where warmup ends, 1 at ``total``.

    This is the clock of the schedules that decay over the whole run (cosine, linear, rex, sgdr).
    With no post-warmup steps (``W >= total``) it is 1.
    """
    w = _warmup_count(warmup_fraction, total)
    if total <= w:
        return 1.0
    return min(max((step - w) / (total - w), 0.0), 1.0)


def sgdr_restarts(total: int, cycles: int, t_mult: float, warmup_fraction: float = 0.0) -> list[int]:
    """Absolute steps where SGDR cycles start, the first at ``W``; the last cycle ends at ``total``.

    The ``n = total - W`` post-warmup steps are split into ``cycles`` cycles of lengths
    ``T_0 * t_mult**i``, so ``T_0 = n (t_mult - 1) / (t_mult**cycles - 1)`` (``n / cycles`` when
    ``t_mult == 1``), and each boundary ``W + T_0 (t_mult**i - 1) / (t_mult - 1)`` is rounded to a
    step. With ``t_mult >= 1`` the last cycle is the longest (at least ``n / cycles`` steps), so no
    restart falls right before the end. Cycles that round to zero steps (tiny budgets) are dropped.
    """
    w = _warmup_count(warmup_fraction, total)
    return [w + b for b in _sgdr_boundaries(total - w, cycles, float(t_mult))[:-1]]


def build_lr_scheduler(optimizer: Optimizer, cfg: Mapping[str, Any], total_steps: int) -> ScheduleLR | None:
    """A torch LR scheduler that applies a recipe's schedule section to every param group.

    The LR of each param group at optimizer step ``t`` is its own base LR (the group's ``lr`` when the
    scheduler is built) times ``multiplier(cfg, t, total_steps)``; the first optimizer step uses
    ``multiplier(0)``. Step it once per optimizer step, after ``optimizer.step()`` (in Lightning:
    ``{"scheduler": ..., "interval": "step"}``; the default interval "epoch" would step it once per
    epoch). Its ``state_dict`` / ``load_state_dict`` resume the schedule where it was.

    Args:
        optimizer: the optimizer, with its peak LR(s) set in its param groups.
        cfg: ``{"name": ..., **params}``.
        total_steps: optimizer steps in the trial.

    Returns:
        A ``tunekit.training.lr_scheduler.ScheduleLR``, or ``None`` for a schedule-free schedule
        (``none``): the optimizer then runs at its own LR and warmup.

    Raises:
        BadInput: unknown schedule, invalid parameters, or ``total_steps < 1``.
    """
    name, params = _split(cfg, None)
    schedule = get_schedule(name)
    params = resolve_params(name, params)
    if total_steps < 1:
        raise BadInput(f"the schedule needs a budget of at least 1 optimizer step, got {total_steps}.")
    if schedule.schedule_free:
        return None
    from tunekit.training.lr_scheduler import ScheduleLR

    return ScheduleLR(optimizer, name, params, total_steps)


# --- Parameter checks ---------------------------------------------------------------------------


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return float(value)


def _fraction(value: Any) -> float:
    x = _number(value)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"must be a fraction in [0, 1], got {value!r}")
    return x


def _positive(value: Any) -> float:
    x = _number(value)
    if x <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return x


def _at_least_one(value: Any) -> float:
    x = _number(value)
    if x < 1:
        raise ValueError(f"must be >= 1, got {value!r}")
    return value if isinstance(value, int) else x  # an int stays an int in the recipe (t_mult: 2)


def _count(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be an integer >= 1, got {value!r}")
    return value


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


# --- Helpers ------------------------------------------------------------------------------------


def _split(schedule: str | Mapping[str, Any], params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    if isinstance(schedule, Mapping):
        if "name" not in schedule:
            raise BadInput(f"schedule section {dict(schedule)!r} has no name; choose from: {', '.join(_REGISTRY)}.")
        merged = {k: v for k, v in schedule.items() if k != "name"}
        return schedule["name"], {**merged, **(params or {})}
    return schedule, dict(params or {})


def _warmup_count(warmup_fraction: float, total: int) -> int:
    # Python's round, as literature.md and the schedule-free optimizer's warmup_steps use it.
    return round(warmup_fraction * total)


def _decay_count(decay_fraction: float, total: int) -> int:
    # floor; 1e-9 absorbs float error in the product (0.29 * 100 = 28.999999999999996 is 29 steps).
    return math.floor(decay_fraction * total + 1e-9)


# --- Schedules ----------------------------------------------------------------------------------
# Each fn receives the absolute step and total plus every resolved parameter (see module docstring).

_WSD_SHAPES: dict[str, Callable[[float], float]] = {
    # Hägele et al. 2024, §3 and epfml/schedules-and-scaling `wsd_schedule`; x in [0, 1] through the decay.
    "linear": lambda x: 1 - x,
    "cosine": lambda x: 0.5 * (1 + math.cos(math.pi * x)),
    "1-sqrt": lambda x: 1 - math.sqrt(x),
    "square": lambda x: 1 - x * x,
}


def _wsd(
    step: int, total: int, *, decay_fraction: float, decay_shape: str, final_lr_fraction: float, **_: Any
) -> float:
    # Hägele et al. 2024: stable until T - n_decay, n_decay = floor(decay_fraction * T), then
    # r + (1 - r) * shape(x) with x = (t - (T - n_decay)) / n_decay; r from t = T on.
    n_decay = _decay_count(decay_fraction, total)
    start = total - n_decay
    if step < start:
        return 1.0
    if step >= total:
        return final_lr_fraction
    x = (step - start) / n_decay
    return final_lr_fraction + (1 - final_lr_fraction) * _WSD_SHAPES[decay_shape](x)


def _wsd_fits(params: Mapping[str, Any]) -> None:
    if params["warmup_fraction"] + params["decay_fraction"] > 1 + 1e-12:
        raise ValueError(
            f"warmup_fraction + decay_fraction must be <= 1 (warmup and decay cannot overlap), got "
            f"{params['warmup_fraction']} + {params['decay_fraction']}"
        )


def _rex(step: int, total: int, *, beta: float, warmup_fraction: float, **_: Any) -> float:
    # Chen et al. 2021 (REX), in google/init2winit's generalised form (1 - p) / (1 - p (1 - beta)).
    # beta = 0.5 is the paper's (1 - p) / (1/2 + 1/2 (1 - p)); beta = 0.1 is the authors' code
    # (IvanVassi/REX_LR `lr_scheduler.py`: z / (0.1 + 0.9 z), z = 1 - p); beta = 1 is linear decay.
    z = 1 - post_warmup_progress(step, total, warmup_fraction)
    return z / (beta + (1 - beta) * z)


@functools.lru_cache(maxsize=64)
def _sgdr_boundaries(n: int, cycles: int, t_mult: float) -> tuple[int, ...]:
    # Cycle i starts at T_0 (t_mult**i - 1) / (t_mult - 1) post-warmup steps (T_0 i when t_mult == 1),
    # with T_0 chosen so that the start of cycle `cycles` is n: the last cycle ends at the budget.
    if n <= 0:
        return (0,)
    if t_mult == 1:
        starts = [round(n * i / cycles) for i in range(cycles + 1)]
    else:
        geometric = [t_mult**i - 1 for i in range(cycles + 1)]
        starts = [round(n * g / geometric[-1]) for g in geometric]
    return tuple(sorted(set(starts)))


def _sgdr(
    step: int, total: int, *, cycles: int, t_mult: float, eta_min: float, warmup_fraction: float, **_: Any
) -> float:
    # Loshchilov & Hutter 2017, eq. 5: eta_min + 1/2 (1 - eta_min)(1 + cos(pi T_cur / T_i)),
    # T_cur resetting at each restart; the same as torch CosineAnnealingWarmRestarts(T_0, T_mult, eta_min).
    w = _warmup_count(warmup_fraction, total)
    bounds = _sgdr_boundaries(total - w, cycles, float(t_mult))
    s = step - w
    if s >= bounds[-1]:
        return eta_min
    i = bisect.bisect_right(bounds, s) - 1
    t_cur, t_i = s - bounds[i], bounds[i + 1] - bounds[i]
    return eta_min + 0.5 * (1 - eta_min) * (1 + math.cos(math.pi * t_cur / t_i))


def _cosine(step: int, total: int, *, final_lr_fraction: float, warmup_fraction: float, **_: Any) -> float:
    # Loshchilov & Hutter 2017 without restarts: r + (1 - r) 1/2 (1 + cos(pi p)).
    p = post_warmup_progress(step, total, warmup_fraction)
    return final_lr_fraction + (1 - final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * p))


def _linear(step: int, total: int, *, final_lr_fraction: float, warmup_fraction: float, **_: Any) -> float:
    # Defazio et al. 2023 (1 - t/T); Bergsma et al. 2025 (D2Z): r + (1 - r)(1 - p).
    p = post_warmup_progress(step, total, warmup_fraction)
    return final_lr_fraction + (1 - final_lr_fraction) * (1 - p)


def _constant(step: int, total: int, **_: Any) -> float:
    return 1.0


_WARMUP = {"warmup_fraction": 0.05}
_WARMUP_CHECK = {"warmup_fraction": _fraction}


def _register_warmup_stable_decay() -> None:
    register(
        Schedule(
            name="wsd",
            description="warmup, constant LR, then a short decay at the end (1-sqrt by default)",
            source="Hägele et al. 2024, Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations; "
            "epfml/schedules-and-scaling src/optim/utils.py::wsd_schedule",
            fn=_wsd,
            # Hägele et al.: 10-20% decay is enough; 1-sqrt beats linear.
            space={
                "decay_fraction": FloatRange(0.1, 0.3),
                "decay_shape": Choice(("1-sqrt", "linear", "cosine", "square")),
            },
            defaults={**_WARMUP, "decay_fraction": 0.2, "decay_shape": "1-sqrt", "final_lr_fraction": 0.0},
            checks={
                **_WARMUP_CHECK,
                "decay_fraction": _fraction,
                "decay_shape": _one_of(*_WSD_SHAPES),
                "final_lr_fraction": _fraction,
            },
            check_all=_wsd_fits,
        )
    )


def _register_whole_run_decays() -> None:
    register(
        Schedule(
            name="rex",
            description="reflected exponential decay to 0 over the run; beta=0.5 paper, 0.1 authors' code",
            source="Chen et al. 2021, REX: Revisiting Budgeted Training with an Improved Schedule; "
            "beta as in google/init2winit rex schedule family",
            fn=_rex,
            space={},  # REX's point is having no schedule hyperparameter; beta stays at the paper's.
            defaults={**_WARMUP, "beta": 0.5},
            checks={**_WARMUP_CHECK, "beta": _positive},
        )
    )
    register(
        Schedule(
            name="sgdr",
            description="cosine with warm restarts; the last of `cycles` cycles ends at the budget",
            source="Loshchilov & Hutter 2017, SGDR: Stochastic Gradient Descent with Warm Restarts",
            fn=_sgdr,
            space={"cycles": IntRange(2, 4), "t_mult": Choice((1, 2))},
            defaults={**_WARMUP, "cycles": 3, "t_mult": 2, "eta_min": 0.0},
            checks={**_WARMUP_CHECK, "cycles": _count, "t_mult": _at_least_one, "eta_min": _fraction},
        )
    )
    register(
        Schedule(
            name="cosine",
            description="cosine decay to final_lr_fraction of the peak (default 0) at the budget",
            source="Loshchilov & Hutter 2017 (SGDR without restarts)",
            fn=_cosine,
            space={},
            # Decay to 0, not the common 10%: trials are judged on the final model, and decaying to zero
            # gives the better end point (Bergsma et al. 2025; Hägele et al. 2024).
            defaults={**_WARMUP, "final_lr_fraction": 0.0},
            checks={**_WARMUP_CHECK, "final_lr_fraction": _fraction},
        )
    )
    register(
        Schedule(
            name="linear",
            description="linear decay to final_lr_fraction of the peak (default 0: decay to zero)",
            source="Defazio et al. 2023, When, Why and How Much?; Bergsma et al. 2025, Straight to Zero (D2Z)",
            fn=_linear,
            space={},
            defaults={**_WARMUP, "final_lr_fraction": 0.0},
            checks={**_WARMUP_CHECK, "final_lr_fraction": _fraction},
        )
    )


def _register_flat() -> None:
    register(
        Schedule(
            name="constant",
            description="constant peak LR after warmup",
            source="baseline (warmup as in epfml/schedules-and-scaling)",
            fn=_constant,
            space={},
            defaults=dict(_WARMUP),
            checks=dict(_WARMUP_CHECK),
        )
    )
    register(
        Schedule(
            name="none",
            description="no scheduler: for schedule-free optimizers, which own their warmup",
            source="Defazio et al. 2024, The Road Less Scheduled",
            fn=_constant,
            space={},
            # The optimizer gets warmup_steps(...) from this; the multiplier itself stays 1.
            defaults=dict(_WARMUP),
            checks=dict(_WARMUP_CHECK),
            schedule_free=True,
        )
    )


_register_warmup_stable_decay()
_register_whole_run_decays()
_register_flat()
