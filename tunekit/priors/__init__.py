"""Scaling-law priors: where the optimum learning rate should be, before anything is trained.

A prior gives the AdamW learning rate the search is centred on (each family scales it by its own
ratio, see ``tunekit optimizers``) and how wide the ranges are. Priors:

- ``deepseek`` (default): DeepSeek LLM, eta*(C) with C = M D (Bi et al. 2024).
- ``steplaw``: Step Law, eta*(N, D) (Li et al. 2025).
- ``none``: plain wide ranges around AdamW 1e-3, i.e. AdamW [1e-5, 1e-1].
- ``measure``: a short LR probe before the study (``_probe.py``, issue #14), within 5% of the
  search's steps.
- a ``law.yaml`` written by ``tunekit law fit``: our own law, fitted on tuned proxy studies.

The published laws take N (non-embedding parameters), D (training tokens) and C (compute),
measured from the script as the laws define them (``_measure.py``); their LR is moved from the
law's optimal batch to the run's batch by the square-root rule. Outside a law's domain (a task
that is not a token sequence), the search is centred by the same probe when the budget allows it
(else on the documented default, AdamW 1e-3). Widths are in ``_registry.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.priors._probe import ProbeRequest, probe_request
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
    "MEASURE",
    "MEASURED_SPAN_SCALE",
    "NONE_SPAN_SCALE",
    "NO_PRIOR",
    "PRIOR_NAMES",
    "Centre",
    "FamilyRange",
    "Law",
    "Plan",
    "Prediction",
    "Prior",
    "ProbeRequest",
    "batch_of_law",
    "family_ranges",
    "get_law",
    "list_laws",
    "make_prior",
    "plan",
    "probe_request",
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
MEASURE = "measure"
PRIOR_NAMES = (DEFAULT_PRIOR, *LAWS.names(lambda law: law.name != DEFAULT_PRIOR), MEASURE, "none")
# The measured centre is within 3x of a wide search's best on every benchmark task (issue #14), so
# it is searched as a law in its domain is: 10x either side.
MEASURED_SPAN_SCALE = LAW_SPAN_SCALE


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
    probe: Any = None,
) -> Plan:
    """Measure the run and work out the prior called ``name`` (see the module docstring).

    Args:
        script: a ``LoadedScript``.
        max_steps: optimizer steps per trial.
        batch_size: samples per step (None: read from the first batch).
        tokens_per_sample: overrides the measurement from the first batch.
        families: the families to show ranges for (default: all registered).
        measure_for_none: with ``none``, still measure N and D for the record (failures ignored).
        probe: a ``ProbeRequest`` (``_probe.py``): lets ``measure``, and a law outside its domain,
            centre the search on a short LR probe. Without it, ``measure`` is refused.

    Raises:
        BadInput: unknown prior, a bad law file, a script that cannot be measured, or ``measure``
            without a probe request or with a budget too small to probe.
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
    if name == MEASURE:
        return _measured_plan(script, max_steps, batch_size, tokens_per_sample, families, probe)
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
        if not chosen.in_domain:
            centre, record = _out_of_domain(name, script, centre, record, probe, notes)
        prior = Prior(name, centre.lr, centre.span_scale, _rounded(record))
    return Plan(
        prior, m, predictions, fitted, centre, family_ranges(prior.centre_lr, prior.span_scale, families), notes
    )


def make_prior(
    name: str,
    script: Any = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    tokens_per_sample: float | None = None,
    probe: Any = None,
) -> Prior:
    """The prior called ``name`` for this script and budget (``steplaw``, ``deepseek``, ``measure``,
    ``none`` or a law file); ``probe`` as in ``plan``.

    Raises:
        BadInput: unknown prior name, a bad law file, a script that cannot be measured, or
            ``measure`` with a budget too small to probe.
    """
    if name == "none" and script is None:
        return NO_PRIOR
    return plan(name, script, max_steps or 1, batch_size, tokens_per_sample=tokens_per_sample, probe=probe).prior


def batch_of_law(record: dict) -> float | None:
    """A prior record's optimal batch in samples (a sequence law in its domain), else None."""
    tokens, per_sample = record.get("law_batch_tokens"), record.get("tokens_per_sample")
    return tokens / per_sample if tokens and per_sample else None


def _measured_plan(
    script: Any, max_steps: int, batch_size: int | None, tokens_per_sample: float | None, families: Any, probe: Any
) -> Plan:
    """``--prior measure``: the probe's centre for any run; N, D, C and the laws shown beside it."""
    from tunekit.priors._measure import measure
    from tunekit.priors._probe import check_probe_budget, run_probe

    if probe is None:
        raise BadInput("--prior measure trains a short LR probe; it needs a search's --trials and --max-steps.")
    check_probe_budget(probe.trials, probe.max_steps)  # before anything trains
    try:
        m = measure(script, max_steps, batch_size, tokens_per_sample)
    except BadInput:
        m = None
    result = run_probe(script, probe)
    centre = Centre(result.lr, MEASURED_SPAN_SCALE, result.derivation())
    record = {"law": MEASURE, **(_measured(m) if m else {}), "lr": result.lr, "probe": result.record()}
    prior = Prior(MEASURE, result.lr, MEASURED_SPAN_SCALE, _rounded(record))
    predictions = [law.predict(m) for law in list_laws()] if m else []
    ranges = family_ranges(prior.centre_lr, prior.span_scale, families)
    return Plan(prior, m, predictions, None, centre, ranges, [])


def _out_of_domain(name: str, script: Any, centre: Centre, record: dict, probe: Any, notes: list[str]) -> tuple:
    """A law outside its domain: the probe's centre when the budget allows one, else the default."""
    from tunekit.priors._probe import MIN_PROBE_STEPS, probe_steps, run_probe

    if probe is None or probe_steps(probe.trials, probe.max_steps) < MIN_PROBE_STEPS:
        why = "without an LR probe" if probe is None else "the budget is too small to probe the LR within 5% of it"
        notes.append(f"{name} is out of its fitted domain here; {why}, the centre is the default AdamW 1e-3.")
        return centre, record
    result = run_probe(script, probe)
    notes.append(f"{name} is out of its fitted domain here; the search is centred on a measured LR probe.")
    measured = Centre(result.lr, MEASURED_SPAN_SCALE, result.derivation())
    return measured, {**record, "lr": result.lr, "probe": result.record()}


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
