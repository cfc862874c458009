"""The optimizer-family and schedule registries, with the built-ins, and the look-ups by name.

The one module that owns these two registries (issue #13): each is a ``Registry`` filled by the
function that registers its built-ins. Everything else reads them through the functions here
(a test may swap a registry for ``registry.copy()`` with ``monkeypatch.setattr``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunekit.errors import BadInput
from tunekit.registry import Registry
from tunekit.search_spaces.builtin_families import register_builtin_families
from tunekit.search_spaces.builtin_schedules import register_builtin_schedules
from tunekit.search_spaces.families import OptimizerFamily
from tunekit.search_spaces.schedules import Schedule

FAMILIES: Registry[OptimizerFamily] = Registry("optimizer", register_builtin_families)
SCHEDULES: Registry[Schedule] = Registry("schedule", register_builtin_schedules)


def get_family(name: object) -> OptimizerFamily:
    """The family called ``name``; BadInput (listing the registered ones) for an unknown name."""
    return FAMILIES.lookup(name)


def list_families(pattern: str = "*") -> list[OptimizerFamily]:
    """Registered families whose name matches the glob ``pattern``, in registration order."""
    return FAMILIES.matching(pattern)


def default_optimizers() -> list[str]:
    """The families searched when ``--optimizers`` is not given (``tunekit optimizers`` marks them).

    The default set is small so that a budget of a few dozen trials tunes each family; the others
    are one ``--optimizers`` away.
    """
    return FAMILIES.names(lambda f: f.in_default_search)


def get_schedule(name: object) -> Schedule:
    """The schedule called ``name``; BadInput (listing the registered ones) for an unknown name."""
    return SCHEDULES.lookup(name)


def list_schedules(pattern: str = "*") -> list[Schedule]:
    """Registered schedules whose name matches the glob ``pattern``, in registration order."""
    return SCHEDULES.matching(pattern)


def default_schedules() -> list[str]:
    return SCHEDULES.names()


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The schedule ``name``'s defaults merged with ``params``, validated (``Schedule.resolve``).

    Raises:
        BadInput: unknown schedule, unknown parameter, or an invalid value.
    """
    return get_schedule(name).resolve(params)


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
    name, merged = split_section(schedule, params)
    return get_schedule(name).multiplier(step, total, resolve_params(name, merged))


def warmup_steps(schedule: str | Mapping[str, Any], total: int, params: Mapping[str, Any] | None = None) -> int:
    """``W = ceil(warmup_fraction * total)``: warmup steps of a trial (a schedule-free optimizer takes these)."""
    name, merged = split_section(schedule, params)
    return get_schedule(name).warmup_steps(total, merged)


def split_section(schedule: str | Mapping[str, Any], params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A schedule name or section, plus overrides, as ``(name, params)``."""
    if isinstance(schedule, Mapping):
        if "name" not in schedule:
            raise BadInput(f"schedule section {dict(schedule)!r} has no name; choose from: {', '.join(SCHEDULES)}.")
        merged = {k: v for k, v in schedule.items() if k != "name"}
        return schedule["name"], {**merged, **(params or {})}
    return schedule, dict(params or {})


def names_of(kind: str) -> Registry:
    """The registry behind ``--optimizers`` or ``--schedules``."""
    return FAMILIES if kind == "optimizers" else SCHEDULES
