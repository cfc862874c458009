"""The law registry: each published law as an entry that turns a ``Measurement`` into a prediction.

A prediction is the law's optimal peak LR for AdamW at the law's own optimal batch size, that batch
size, and whether the run is inside the law's fitted domain. ``centre_for_batch`` moves the LR to
the batch the search actually uses (square-root rule: every searched family is scaled from the
AdamW centre by its ratio, and AdamW is Adam-like). Out of domain, a prior falls back to
``DEFAULT_CENTRE_LR``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from tunekit.priors import _laws
from tunekit.priors._measure import Measurement
from tunekit.registry import Registry

# Out of a law's domain (and for `--prior none`): AdamW's documented default LR, 1e-3 (Kingma & Ba
# 2015; torch.optim.AdamW). Each family's centre is this times its ratio, which gives back the
# families' own reference defaults: SGD 1e-2, schedule-free AdamW 3e-3 (reference 2.5e-3), Lion
# 2e-4 (reference 1e-4 to 3e-4), MARS 1e-2 (reference 6e-3 against AdamW 6e-4). Muon's own LR is
# absolute (0.02, KellerJordan/Muon), not scaled.
DEFAULT_CENTRE_LR = 1e-3

# Widths, as multiples of each family's own span (LRRange.span, 10 for the built-in families): the
# range is [centre / (span * scale), centre * (span * scale)].
# - A law inside its domain: scale 1, i.e. 10x either side. The published laws are fitted to within
#   tens of percent on their own models; 10x leaves room for a law that is off by several times on
#   another architecture, data set or scale.
LAW_SPAN_SCALE = 1.0
# - `--prior none`: scale 10, i.e. AdamW [1e-5, 1e-1], the range users write by hand.
NONE_SPAN_SCALE = 10.0
# - Out of the domain, at the default centre: nothing is known about this task beyond the default,
#   so `none`'s width is kept (a narrower default cut off the bundled CNN's optimum, AdamW 3e-2 to
#   1e-1 at 200 steps).
DEFAULT_SPAN_SCALE = NONE_SPAN_SCALE


@dataclass(frozen=True)
class Prediction:
    """One law's answer for one measured run.

    Attributes:
        law: registry name.
        lr: optimal AdamW peak LR at the law's optimal batch size (None when the law has no LR term).
        batch_tokens: the law's optimal batch size in tokens (None when it predicts none).
        in_domain: the run is inside what the law was fitted on; out of it, priors use the default centre.
        inputs: the measured quantities the law used, for display.
        notes: where the numbers come from and what to be careful about.
    """

    law: str
    lr: float | None
    batch_tokens: float | None
    in_domain: bool
    inputs: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Law:
    """A registered law: name, one-line description, citation, and its prediction function."""

    name: str
    description: str
    source: str
    predict: Callable[[Measurement], Prediction]


def get_law(name: str) -> Law:
    """The law called ``name``.

    Raises:
        BadInput: unknown name; the message lists the registered laws.
    """
    return LAWS.lookup(name)


def list_laws(pattern: str = "*") -> list[Law]:
    return LAWS.matching(pattern)


# --- Domains ---------------------------------------------------------------------------------------
# Both laws were fitted on decoder-only LLM pretraining with AdamW. Step Law's figures go up to
# 1B parameters on 100B tokens (step-law.github.io); DeepSeek's hyperparameter grid spans compute
# budgets of roughly 1e17-3e20 FLOPs (Bi et al. 2024, Fig. 3; bounds read off the figure, unverified).
# A sequence task far below those scales is still predicted (the exponents are what extrapolates),
# with the distance stated; a non-sequence task is outside the domain.
STEPLAW_SMALLEST_N = 1e8  # order of magnitude of the smallest models in the paper's sweeps (unverified)
DEEPSEEK_SMALLEST_C = 1e17


def _out_of_task_domain(m: Measurement) -> str:
    return (
        f"not a sequence task ({m.tokens_source}): D = {m.samples:.3g} samples, and the LLM laws are out of "
        "their fitted domain, so the default centre is used"
    )


def _scale_note(what: str, value: float, smallest: float) -> tuple[str, ...]:
    if value >= smallest:
        return ()
    return (
        f"{what} = {value:.2g} is {smallest / value:.2g}x below the ~{smallest:.0e} of the law's smallest fitted "
        "runs (approximate): the prediction is an extrapolation; the searched range allows for it being off",
    )


def _steplaw(m: Measurement) -> Prediction:
    inputs = {"n_params": m.n_params, "tokens": m.tokens}
    if not m.sequence:
        return Prediction("steplaw", None, None, False, inputs, (_out_of_task_domain(m),))
    batch = _laws.steplaw_batch_tokens(m.tokens)
    return Prediction(
        "steplaw",
        _laws.steplaw_lr(m.n_params, m.tokens),
        batch,
        True,
        inputs,
        (
            "eta* = 1.79·N^-0.713·D^0.307, B* = 0.58·D^0.571 tokens (the paper's form, as the current calculator)",
            *_march2025_note(m, batch),
            *_scale_note("N", m.n_params, STEPLAW_SMALLEST_N),
        ),
    )


def _march2025_note(m: Measurement, batch: float) -> tuple[str, ...]:
    """The Step Law calculator's March-2025 batch form, when it differs from the paper's by > 1.5x."""
    other = _laws.steplaw_batch_tokens_march2025(m.n_params, m.tokens)
    ratio = max(other / batch, batch / other)
    if ratio <= _laws.STEPLAW_MARCH2025_SHOW_RATIO:
        return ()
    return (
        f"the Step Law calculator's March-2025 form B = 8.91·N^-0.1636·D^0.592 gives {other:.3g} tokens, "
        f"{ratio:.2g}x the paper's {batch:.3g} (it was withdrawn on 2025-03-11; the paper's form is used)",
    )


def _deepseek(m: Measurement) -> Prediction:
    inputs = {"flops_per_token": m.flops_per_token, "tokens": m.tokens, "compute": m.compute}
    if not m.sequence:
        return Prediction("deepseek", None, None, False, inputs, (_out_of_task_domain(m),))
    return Prediction(
        "deepseek",
        _laws.deepseek_lr(m.compute),
        _laws.deepseek_batch_tokens(m.compute),
        True,
        inputs,
        (
            f"eta* = 0.3118·C^-0.1250, B* = 0.2920·C^0.3271 tokens, C = M·D; {m.flops_source}",
            *_scale_note("C", m.compute, DEEPSEEK_SMALLEST_C),
        ),
    )


def register_builtin_laws(registry: Registry[Law]) -> None:
    """Add the published laws to ``registry`` (``tunekit predict`` shows them in this order)."""
    registry.add(
        Law(
            "steplaw",
            "Step Law: eta*(N, D) and B*(D), fitted on 3,700 AdamW LLM pretraining runs",
            "Li et al. 2025, Predictable Scale Part I (arXiv 2503.04715; step-law/steplaw fits)",
            _steplaw,
        )
    )
    registry.add(
        Law(
            "deepseek",
            "DeepSeek LLM: eta*(C) and B*(C) from the compute budget C = M·D",
            "Bi et al. 2024, DeepSeek LLM, section 3 (Scaling Laws of Hyperparameters)",
            _deepseek,
        )
    )


LAWS: Registry[Law] = Registry("law", register_builtin_laws)


# --- From a prediction to the search's centre --------------------------------------------------------


@dataclass(frozen=True)
class Centre:
    """The AdamW LR a search is centred on, how it was derived, and at which batch it applies."""

    lr: float
    span_scale: float
    derivation: str
    beta2: float | None = None  # AdamW's beta2 with the law's half-life at the run's batch, when transferred


# The Adam-like default the laws were fitted with (DeepSeek LLM: AdamW betas (0.9, 0.95)).
LAW_BETA2 = 0.95


def centre_for_batch(prediction: Prediction, m: Measurement) -> Centre:
    """The search centre for ``m``'s batch size from a law's prediction (default centre out of domain).

    The law's LR is optimal at its own batch B*; at the run's batch B it is moved by the square-root
    rule for Adam-like optimizers (Malladi et al. 2022), LR x sqrt(B / B*), and AdamW's beta2 keeps
    its half-life in tokens (Marek et al. 2025), beta2^(B / B*).
    """
    if not prediction.in_domain or prediction.lr is None:
        return Centre(DEFAULT_CENTRE_LR, DEFAULT_SPAN_SCALE, "default centre (AdamW 1e-3): outside the law's domain")
    if prediction.batch_tokens is None or not m.batch_size:
        return Centre(prediction.lr, LAW_SPAN_SCALE, f"{prediction.law} LR as predicted")
    lr = _laws.transfer_lr(prediction.lr, prediction.batch_tokens, m.batch_tokens, "sqrt")
    beta2 = _laws.transfer_beta2(LAW_BETA2, prediction.batch_tokens, m.batch_tokens)
    kappa = m.batch_tokens / prediction.batch_tokens
    return Centre(
        lr,
        LAW_SPAN_SCALE,
        f"{prediction.law} LR {prediction.lr:.3g} at its B* = {prediction.batch_tokens:.3g} tokens, x sqrt({kappa:.3g}) "
        f"for this run's batch of {m.batch_tokens:.3g} tokens (square-root rule, Malladi et al. 2022)",
        beta2,
    )


@dataclass(frozen=True)
class FamilyRange:
    """One family's LR centre and searched range, as the search space builds them."""

    family: str
    param: str
    ratio: float | None
    centre: float
    low: float
    high: float
    batch_rule: str
    source: str


def family_ranges(centre_lr: float, span_scale: float, families: list[str] | None = None) -> list[FamilyRange]:
    """Every family's LR centre and range for ``centre_lr``, exactly as ``SearchSpace`` builds them."""
    from tunekit.search_spaces.catalog import get_family, list_families

    chosen = [get_family(n) for n in families] if families else list_families()
    out = []
    for fam in chosen:
        for param, lr_range in fam.lr_params.items():
            r = lr_range.range(centre_lr, span_scale)
            out.append(
                FamilyRange(
                    fam.name,
                    param,
                    None if lr_range.absolute is not None else lr_range.ratio,
                    lr_range.centre(centre_lr),
                    r.low,
                    r.high,
                    fam.batch_rule,
                    fam.source,
                )
            )
    return out


def log10_span(low: float, high: float) -> float:
    return math.log10(high / low)
