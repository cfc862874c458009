"""Scaling-law priors: where the optimum learning rate should be, before anything is trained.

A prior gives the AdamW learning rate the search is centred on (each family scales it by its own
ratio, see ``tunekit optimizers``) and how wide the ranges are. Priors:

- ``deepseek`` (default): DeepSeek LLM, eta*(C) with C = M D (Bi et al. 2024).
- ``steplaw``: Step Law, eta*(N, D) (Li et al. 2025).
- ``none``: plain wide ranges around AdamW 1e-3, i.e. AdamW [1e-5, 1e-1].
- a ``law.yaml`` written by ``tunekit law fit``: our own law, fitted on tuned proxy studies.

The published laws take N (non-embedding parameters), D (training tokens) and C (compute),
measured from the script as the laws define them (``_measure.py``); their LR is moved from the
law's optimal batch to the run's batch by the square-root rule. Outside a law's domain (a task
that is not a token sequence), the search is centred on the documented default (AdamW 1e-3)
instead. Widths are in ``_registry.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.priors._registry import (
    DEFAULT_CENTRE_LR,
    DEFAULT_SPAN_SCALE,
    LAW_SPAN_SCALE,
    LAWS,
    NONE_SPAN_SCALE,
    Centre,
    FamilyRange,
    Law,
    Prediction,
    centre_for_batch,
    family_ranges,
    get_law,
    list_laws,
)
from tunekit.search_spaces.families import LR_SPAN

__all__ = [
    "DEFAULT_CENTRE_LR",
    "DEFAULT_PRIOR",
    "DEFAULT_SPAN_SCALE",
    "LAW_SPAN_SCALE",
    "NONE_SPAN_SCALE",
    "NO_PRIOR",
    "PRIOR_NAMES",
    "Centre",
    "FamilyRange",
    "Law",
    "Plan",
    "Prediction",
    "Prior",
    "family_ranges",
    "get_law",
    "list_laws",
    "make_prior",
    "plan",
]


@dataclass(frozen=True)
class Prior:
    """The outcome of a prior: recorded in the study and in every exported recipe."""

    law: str
    centre_lr: float
    span_scale: float = 1.0
    record: dict = field(default_factory=dict)


# Without a law: a documented default centre (AdamW 1e-3, the torch and Kingma & Ba default) with
# ranges 10x wider on each side than a centred search, i.e. AdamW lr in [1e-5, 1e-1].
NO_PRIOR = Prior("none", DEFAULT_CENTRE_LR, span_scale=NONE_SPAN_SCALE, record={"law": "none", "lr": DEFAULT_CENTRE_LR})

DEFAULT_PRIOR = "deepseek"
# The registered laws (the default first) and "none": what --prior accepts besides a law file.
PRIOR_NAMES = (DEFAULT_PRIOR, *LAWS.names(lambda law: law.name != DEFAULT_PRIOR), "none")


@dataclass(frozen=True)
class Plan:
    """Everything ``tunekit predict`` shows, and the prior ``search`` uses.

    Attributes:
        prior: what the search is centred on (``make_prior`` returns this).
        measurement: N, D, C of the run (None for ``none`` when the script could not be measured).
        predictions: every registered law's prediction for this run, the chosen one first.
        fitted: a fitted law's prediction (``--prior law.yaml``), else None.
        centre: how the centre was derived.
        families: each family's centre and range for this prior.
        notes: what to be careful about.
    """

    prior: Prior
    measurement: Any
    predictions: list[Prediction]
    fitted: dict | None
    centre: Centre
    families: list[FamilyRange]
    notes: list[str]


def is_law_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or Path(name).is_file()


def plan(
    name: str,
    script: Any,
    max_steps: int,
    batch_size: int | None = None,
    *,
    tokens_per_sample: float | None = None,
    families: list[str] | None = None,
    measure_for_none: bool = True,
) -> Plan:
    """Measure the run and work out the prior called ``name`` (see the module docstring).

    Args:
        script: a ``LoadedScript``.
        max_steps: optimizer steps per trial.
        batch_size: samples per step (None: read from the first batch).
        tokens_per_sample: overrides the measurement from the first batch.
        families: the families to show ranges for (default: all registered).
        measure_for_none: with ``none``, still measure N and D for the record (failures ignored).

    Raises:
        BadInput: unknown prior, a bad law file, or a script that cannot be measured.
    """
    from tunekit.priors._measure import measure

    name = DEFAULT_PRIOR if name == "default" else name
    if name not in PRIOR_NAMES and not is_law_file(name):
        raise BadInput(
            f"unknown prior '{name}'; choose from: {', '.join(PRIOR_NAMES)}, or a law file from 'tunekit law fit'."
        )
    if name == "none":
        m = None
        if script is not None and measure_for_none:
            try:
                m = measure(script, max_steps, batch_size, tokens_per_sample)
            except BadInput:
                m = None
        record = {"law": "none", "lr": DEFAULT_CENTRE_LR, **(_measured(m) if m else {})}
        centre = Centre(
            DEFAULT_CENTRE_LR, NONE_SPAN_SCALE, "no prior: default centre AdamW 1e-3, ranges 100x either side"
        )
        prior = Prior("none", DEFAULT_CENTRE_LR, NONE_SPAN_SCALE, record)
        predictions = [law.predict(m) for law in list_laws()] if m else []
        return Plan(prior, m, predictions, None, centre, family_ranges(prior.centre_lr, prior.span_scale, families), [])
    if script is None:
        raise BadInput(f"prior '{name}' needs the model script to measure; pass it, or use --prior none.")
    m = measure(script, max_steps, batch_size, tokens_per_sample)
    predictions = [law.predict(m) for law in list_laws()]
    notes: list[str] = []
    if is_law_file(name):
        prior, centre, fitted = _fitted_prior(name, m, notes)
    else:
        fitted = None
        chosen = next(p for p in predictions if p.law == name)
        predictions = [chosen, *(p for p in predictions if p is not chosen)]
        centre = centre_for_batch(chosen, m)
        record: dict[str, Any] = {"law": name, **_measured(m), "lr": centre.lr, "in_domain": chosen.in_domain}
        if chosen.in_domain:
            record["law_lr"] = chosen.lr
            record["law_batch_tokens"] = chosen.batch_tokens
        prior = Prior(name, centre.lr, centre.span_scale, _rounded(record))
        if not chosen.in_domain:
            notes.append(f"{name} is out of its fitted domain here; the search is centred on the default AdamW 1e-3.")
    return Plan(
        prior, m, predictions, fitted, centre, family_ranges(prior.centre_lr, prior.span_scale, families), notes
    )


def make_prior(
    name: str,
    script: Any = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    tokens_per_sample: float | None = None,
) -> Prior:
    """The prior called ``name`` for this script and budget (``steplaw``, ``deepseek``, ``none`` or a law file).

    Raises:
        BadInput: unknown prior name, a bad law file, or a script that cannot be measured.
    """
    if name == "none" and script is None:
        return NO_PRIOR
    return plan(name, script, max_steps or 1, batch_size, tokens_per_sample=tokens_per_sample).prior


def _measured(m: Any) -> dict:
    out = m.record()
    if m.batch_size:
        out["batch_size"] = int(m.batch_size)
    return out


def _fitted_prior(path: str, m: Any, notes: list[str]) -> tuple[Prior, Centre, dict]:
    from tunekit.priors._fit import half_width, load_law
    from tunekit.priors._laws import transfer_lr

    law = load_law(path)
    unit = "tokens" if m.sequence else "samples"
    if law.units != unit:
        raise BadInput(
            f"law file '{path}' was fitted on D in {law.units}, but this run's D is in {unit}; fit it on studies of this kind of model."
        )
    pred = law.predict(m.n_params, m.tokens)
    notes.extend(pred["notes"])
    # The LR law holds at the fitted batch law's B*(D) when the batch was searched, else at the
    # studies' batch; the square-root rule moves it to this run's batch.
    at_batch = pred["batch_tokens"] or law.reference_batch
    lr = transfer_lr(pred["lr"], at_batch, m.batch_tokens, "sqrt") if m.batch_size else pred["lr"]
    width = half_width(pred["lr_sigma_log10"])
    span_scale = width / LR_SPAN  # the families' LRRange.span
    derivation = (
        f"fitted law {pred['lr']:.3g} (±{10 ** pred['lr_sigma_log10']:.2g}x, 1σ) at a batch of {at_batch:.3g} {unit}"
        + (
            f", x sqrt({m.batch_tokens / at_batch:.3g}) for this run's batch"
            if m.batch_size and at_batch != m.batch_tokens
            else ""
        )
        + f"; searched {width:.2g}x either side"
    )
    record = {
        "law": "fitted",
        "file": str(path),
        **_measured(m),
        "lr": lr,
        "law_lr": pred["lr"],
        "lr_sigma_log10": pred["lr_sigma_log10"],
    }
    return Prior("fitted", lr, span_scale, _rounded(record)), Centre(lr, span_scale, derivation), pred


def _rounded(record: dict) -> dict:
    """Floats to 4 significant digits, so studies and recipes stay readable."""
    return {k: (float(f"{v:.4g}") if isinstance(v, float) and math.isfinite(v) else v) for k, v in record.items()}
