"""Scaling-law priors: where the optimum learning rate should be, before anything is trained.

A prior gives the AdamW learning rate the search is centred on (each family scales it by its own
ratio) and how wide the ranges are. ``none`` gives plain wide ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunekit.errors import BadInput


@dataclass(frozen=True)
class Prior:
    """The outcome of a prior: recorded in the study and in every exported recipe."""

    law: str
    centre_lr: float
    span_scale: float = 1.0
    record: dict = field(default_factory=dict)


# Without a law: a documented default centre (AdamW 1e-3, the torch and Kingma & Ba default) with
# ranges 10x wider on each side than a centred search, i.e. AdamW lr in [1e-5, 1e-1].
NO_PRIOR = Prior("none", 1e-3, span_scale=10.0, record={"law": "none", "lr": 1e-3})

PRIOR_NAMES = ("default", "none")


def make_prior(name: str, script: Any = None, max_steps: int | None = None, batch_size: int | None = None) -> Prior:
    """The prior called ``name`` for this script and budget.

    Raises:
        BadInput: unknown prior name.
    """
    if name == "none":
        return NO_PRIOR
    if name == "default":
        return Prior("default", 3e-3, record={"law": "default", "lr": 3e-3})
    raise BadInput(f"unknown prior '{name}'; choose from: {', '.join(PRIOR_NAMES)}.")
