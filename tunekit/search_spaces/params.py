"""Search-space vocabulary: the three kinds of searchable parameter.

A parameter is written in YAML as ``{low, high, log}`` (a float or int range) or ``{choices: [...]}``
(a categorical), following algoperf's small ``min/max/scaling`` vocabulary. Names are Optuna
parameter names such as ``adamw.lr`` or ``wsd.decay_fraction``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

from tunekit.errors import BadInput


@dataclass(frozen=True)
class FloatRange:
    """A float in ``[low, high]``, sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise BadInput(f"range [{self.low}, {self.high}] is empty or not finite; give low <= high.")
        if self.log and self.low <= 0:
            raise BadInput(f"log range [{self.low}, {self.high}] must be positive; give low > 0 or log: false.")

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def to_yaml(self) -> dict:
        return {"low": float(self.low), "high": float(self.high), "log": self.log}


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]``, sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise BadInput(f"range [{self.low}, {self.high}] is empty; give low <= high.")
        if self.log and self.low <= 0:
            raise BadInput(f"log range [{self.low}, {self.high}] must be positive; give low > 0 or log: false.")

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def to_yaml(self) -> dict:
        return {"low": int(self.low), "high": int(self.high), "log": self.log}


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of values (strings, numbers, booleans or null)."""

    choices: tuple

    def __post_init__(self) -> None:
        if not self.choices:
            raise BadInput("choices is empty; list at least one value.")

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def to_yaml(self) -> dict:
        return {"choices": list(self.choices)}


Param = Union[FloatRange, IntRange, Choice]


def param_from_yaml(name: str, spec: Any) -> Param:
    """Parse one parameter of a space file.

    Args:
        name: the parameter's name, used in error messages.
        spec: ``{low, high[, log]}`` or ``{choices: [...]}``.

    Raises:
        BadInput: the spec is not one of the two forms, or its values are of the wrong type.
    """
    if not isinstance(spec, dict):
        raise BadInput(f"parameter '{name}' must be a mapping {{low, high, log}} or {{choices}}, got {spec!r}.")
    keys = set(spec)
    if keys == {"choices"}:
        choices = spec["choices"]
        if not isinstance(choices, list):
            raise BadInput(f"parameter '{name}': choices must be a list, got {choices!r}.")
        return Choice(tuple(choices))
    if keys in ({"low", "high"}, {"low", "high", "log"}):
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        if not isinstance(log, bool):
            raise BadInput(f"parameter '{name}': log must be true or false, got {log!r}.")
        for bound in (low, high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise BadInput(f"parameter '{name}': low and high must be numbers, got {bound!r}.")
        if isinstance(low, int) and isinstance(high, int):
            return IntRange(low, high, log)
        return FloatRange(float(low), float(high), log)
    raise BadInput(
        f"parameter '{name}' has keys {sorted(keys)}; write {{low, high, log}} for a range or {{choices: [...]}}."
    )
