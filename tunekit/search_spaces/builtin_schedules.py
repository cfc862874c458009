"""The built-in LR schedules: pure multiplier curves, each citing its formula, and their registration.

Each ``fn`` receives the absolute step and total plus every resolved parameter, and applies from
the end of warmup on (the time convention is in ``schedules.py``).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from tunekit.registry import Registry
from tunekit.search_spaces.params import Choice, FloatRange, IntRange
from tunekit.search_spaces.schedules import (
    DEFAULT_WARMUP_FRACTION,
    Schedule,
    at_least_one,
    count,
    decay_count,
    fraction,
    one_of,
    positive,
    post_warmup_progress,
    warmup_count,
)

_WARMUP = {"warmup_fraction": DEFAULT_WARMUP_FRACTION}
_WARMUP_CHECK = {"warmup_fraction": fraction}


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
    n_decay = decay_count(decay_fraction, total)
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
    # REX (Chen, Wolfe, Kyrillidis, "REX: Revisiting Budgeted Training with an Improved Schedule",
    # MLSys 2022, arXiv 2107.04197) in google/init2winit's generalised form (1 - p) / (1 - p (1 - beta))
    # (init2winit/projects/optlrschedule/scheduler/rex_schedule_family.py). beta = 0.5 is the
    # paper's (1 - p) / (1/2 + 1/2 (1 - p)); beta = 0.1 is the third-party IvanVassi/REX_LR
    # (`lr_scheduler.py`: z / (0.1 + 0.9 z), z = 1 - p; not by the paper's authors); beta = 1 is linear decay.
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
    w = warmup_count(warmup_fraction, total)
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


def sgdr_restarts(total: int, cycles: int, t_mult: float, warmup_fraction: float = 0.0) -> list[int]:
    """Absolute steps where SGDR cycles start, the first at ``W``; the last cycle ends at ``total``.

    The ``n = total - W`` post-warmup steps are split into ``cycles`` cycles of lengths
    ``T_0 * t_mult**i``, so ``T_0 = n (t_mult - 1) / (t_mult**cycles - 1)`` (``n / cycles`` when
    ``t_mult == 1``), and each boundary ``W + T_0 (t_mult**i - 1) / (t_mult - 1)`` is rounded to a
    step. With ``t_mult >= 1`` the last cycle is the longest (at least ``n / cycles`` steps), so no
    restart falls right before the end. Cycles that round to zero steps (tiny budgets) are dropped.
    """
    w = warmup_count(warmup_fraction, total)
    return [w + b for b in _sgdr_boundaries(total - w, cycles, float(t_mult))[:-1]]


def _register_warmup_stable_decay(register: Callable[[Schedule], Schedule]) -> None:
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
                "decay_fraction": fraction,
                "decay_shape": one_of(*_WSD_SHAPES),
                "final_lr_fraction": fraction,
            },
            check_all=_wsd_fits,
            rung_value="cooldown",  # a cooldown from the stable phase ends a run of that length (Hägele et al.)
        )
    )


def _register_whole_run_decays(register: Callable[[Schedule], Schedule]) -> None:
    register(
        Schedule(
            name="rex",
            description="reflected exponential decay to 0 over the run; beta=0.5 paper, 0.1 IvanVassi/REX_LR",
            source="Chen, Wolfe & Kyrillidis 2022 (MLSys), REX: Revisiting Budgeted Training with an Improved "
            "Schedule; beta as in google/init2winit's rex schedule family",
            fn=_rex,
            space={},  # REX's point is having no schedule hyperparameter; beta stays at the paper's.
            defaults={**_WARMUP, "beta": 0.5},
            checks={**_WARMUP_CHECK, "beta": positive},
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
            checks={**_WARMUP_CHECK, "cycles": count, "t_mult": at_least_one, "eta_min": fraction},
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
            checks={**_WARMUP_CHECK, "final_lr_fraction": fraction},
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
            checks={**_WARMUP_CHECK, "final_lr_fraction": fraction},
        )
    )


def _register_flat(register: Callable[[Schedule], Schedule]) -> None:
    register(
        Schedule(
            name="constant",
            description="constant peak LR after warmup",
            source="baseline (warmup as in epfml/schedules-and-scaling)",
            fn=_constant,
            space={},
            defaults=dict(_WARMUP),
            checks=dict(_WARMUP_CHECK),
            rung_value="anytime",  # no decay: a constant run of length b ends at its value at b
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
            rung_value="anytime",  # the averaged point x is an anytime estimate (Defazio et al. 2024)
        )
    )


def register_builtin_schedules(registry: Registry[Schedule]) -> None:
    """Add every built-in schedule to ``registry``, in the order ``tunekit schedules`` lists them."""
    for group in (_register_warmup_stable_decay, _register_whole_run_decays, _register_flat):
        group(registry.add)
