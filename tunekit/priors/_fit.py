"""Fit our own law from tuned proxy studies, save it as YAML, and predict with it.

The model (Wen et al. 2025 did this by hand; Step Law's form)::

    log10 lr* = a + b log10 N + c log10 D        lr* is the AdamW-equivalent peak LR
    log10 B*  = a' + c' log10 D                  only when the studies searched the batch size

One point per study: its near-best complete trials (within ``tolerance`` of the best value, as
Step Law reads its broad optimum plateau instead of the single best run) are averaged in log space
with weights ``exp(-gap / (tolerance / 2))``, where ``gap`` is the relative distance to the best
value. The point's uncertainty is the weighted spread of those LRs over the square root of their
effective number, never below ``MIN_POINT_SIGMA``. The points are fitted by weighted least
squares (weights 1 / sigma^2). An exponent whose variable does not vary across the studies cannot
be fitted; it is fixed at Step Law's value and marked as fixed.

Each trial's LR is divided by its family's ratio to AdamW (``tunekit optimizers``), so families
mix on one scale; families on their own scale (no ratio) are left out. ``family=`` keeps one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.priors import _laws
from tunekit.yaml_files import read_yaml

LAW_FILE_VERSION = 1
DEFAULT_TOLERANCE = 0.02  # Step Law's loss contours stop at +2% of the global minimum
MIN_POINT_SIGMA = 0.05  # log10 units (x1.12): the resolution of an optimum read from a few dozen trials
# The searched half-width around a fitted law's prediction, as a factor: two standard deviations
# of the prediction, but at least 3x (the plateau) and at most 10x (the published laws' width).
MIN_HALF_WIDTH, MAX_HALF_WIDTH = 3.0, 10.0

_FIXED_EXPONENTS = {"n_exponent": _laws.STEPLAW_LR_N_EXP, "d_exponent": _laws.STEPLAW_LR_D_EXP}
_BATCH_FIXED = {"d_exponent": _laws.STEPLAW_BATCH_D_EXP}


@dataclass(frozen=True)
class StudyPoint:
    """One study's optimum: where its near-best trials sit."""

    study: str
    n_params: float
    tokens: float
    lr: float
    sigma: float  # uncertainty of log10 lr
    trials: int
    best_value: float
    batch_tokens: float | None = None
    batch_sigma: float | None = None


@dataclass(frozen=True)
class PowerLaw:
    """log10 y = log10_coef + sum(exponent_k log10 x_k), with what was fitted and how well."""

    log10_coef: float
    exponents: dict[str, float]
    fitted: tuple[str, ...]
    covariance: list[list[float]]  # of (log10_coef, *fitted)
    residual_log10: float
    chi2_dof: float | None
    points: int

    def predict_log10(self, x: dict[str, float]) -> tuple[float, float]:
        """log10 y and its standard deviation for the variables ``x`` (log10 values by exponent name)."""
        y = self.log10_coef + sum(e * x[k] for k, e in self.exponents.items())
        row = [1.0] + [x[k] for k in self.fitted]
        var = sum(row[i] * self.covariance[i][j] * row[j] for i in range(len(row)) for j in range(len(row)))
        return y, math.sqrt(max(var, 0.0))

    def stderr(self) -> dict[str, float]:
        names = ["log10_coef", *self.fitted]
        return {n: math.sqrt(max(self.covariance[i][i], 0.0)) for i, n in enumerate(names)}

    def to_dict(self) -> dict:
        return {
            "coef": _r(10**self.log10_coef),
            **{k: _r(v) for k, v in self.exponents.items()},
            "fitted": list(self.fitted),
            "fixed": {k: "Step Law" for k in self.exponents if k not in self.fitted},
            "stderr": {k: _r(v) for k, v in self.stderr().items()},
            "covariance": [[_r(v) for v in row] for row in self.covariance],
            "residual_log10": _r(self.residual_log10),
            "chi2_dof": None if self.chi2_dof is None else _r(self.chi2_dof),
            "points": self.points,
        }

    @classmethod
    def from_dict(cls, d: dict, names: tuple[str, ...]) -> PowerLaw:
        return cls(
            math.log10(float(d["coef"])),
            {k: float(d[k]) for k in names},
            tuple(d["fitted"]),
            [[float(v) for v in row] for row in d["covariance"]],
            float(d["residual_log10"]),
            None if d.get("chi2_dof") is None else float(d["chi2_dof"]),
            int(d["points"]),
        )


@dataclass(frozen=True)
class FittedLaw:
    """A law fitted by ``tunekit law fit``: what ``--prior law.yaml`` loads."""

    lr: PowerLaw
    batch: PowerLaw | None
    units: str  # "tokens" or "samples"
    reference_batch: float  # tokens (or samples) per step at which the LR law holds when B is not fitted
    domain: dict
    studies: list[StudyPoint]
    selection: dict = field(default_factory=dict)

    def predict(self, n_params: float, tokens: float) -> dict:
        """The law's LR (and batch) with 1-sigma factors and whether it extrapolates."""
        x = {"n_exponent": math.log10(n_params), "d_exponent": math.log10(tokens)}
        y, s = self.lr.predict_log10(x)
        out: dict[str, Any] = {"lr": 10**y, "lr_sigma_log10": s, "batch_tokens": None, "notes": []}
        if self.batch is not None:
            yb, sb = self.batch.predict_log10(x)
            out["batch_tokens"], out["batch_sigma_log10"] = 10**yb, sb
        for key, value, what in (("n_params", n_params, "N"), ("tokens", tokens, "D")):
            lo, hi = self.domain[key]
            if value > hi * 1.01 or value < lo / 1.01:
                far = value / hi if value > hi else lo / value
                out["notes"].append(
                    f"{what}={value:.3g} is {far:.2g}x outside the fitted {what} range [{lo:.3g}, {hi:.3g}]"
                )
        return out

    def to_yaml(self, command: str) -> str:
        import yaml

        data = {
            "tunekit_law": LAW_FILE_VERSION,
            "units": self.units,
            "lr": self.lr.to_dict(),
            "batch": None if self.batch is None else self.batch.to_dict(),
            "reference_batch": _r(self.reference_batch),
            "domain": {k: [_r(v) for v in lim] for k, lim in self.domain.items()},
            "selection": self.selection,
            "studies": [
                {
                    "study": p.study,
                    "n_params": _r(p.n_params),
                    "tokens": _r(p.tokens),
                    "lr": _r(p.lr),
                    "lr_sigma_log10": _r(p.sigma),
                    "batch_tokens": None if p.batch_tokens is None else _r(p.batch_tokens),
                    "trials": p.trials,
                    "best_value": _r(p.best_value),
                }
                for p in self.studies
            ],
        }
        header = (
            "# tunekit law: the optimal AdamW-equivalent peak LR (and batch size) as power laws in N and D,\n"
            "# fitted from the near-best trials of tuned proxy studies.\n"
            f"# Made by: {command}\n"
            "# Use it:  tunekit predict SCRIPT --prior THIS_FILE; tunekit search SCRIPT --prior THIS_FILE\n"
            "# lr: log10 lr = log10 coef + n_exponent log10 N + d_exponent log10 D; batch: the same in D only.\n"
            "# 'fixed' exponents could not be fitted (their variable did not vary) and are Step Law's.\n"
        )
        return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)


def _r(x: float) -> float:
    """6 significant digits: enough for a law, short enough to read."""
    return float(f"{float(x):.6g}")


def load_law(path: str | Path) -> FittedLaw:
    """Read a law file written by ``tunekit law fit``.

    Raises:
        BadInput: missing file, invalid YAML, or not a tunekit law file.
    """
    data = read_yaml(
        path,
        "law file",
        f"fit one with 'tunekit law fit --study A --study B -o {path}'",
        syntax_hint="fix it or fit it again with tunekit law fit",
        at_line=False,
    )
    if not isinstance(data, dict) or data.get("tunekit_law") != LAW_FILE_VERSION:
        raise BadInput(
            f"'{path}' is not a tunekit law file (version {LAW_FILE_VERSION}); write one with 'tunekit law fit -o {path}'."
        )
    try:
        lr = PowerLaw.from_dict(data["lr"], ("n_exponent", "d_exponent"))
        batch = PowerLaw.from_dict(data["batch"], ("d_exponent",)) if data.get("batch") else None
        studies = [
            StudyPoint(
                s["study"],
                s["n_params"],
                s["tokens"],
                s["lr"],
                s["lr_sigma_log10"],
                s["trials"],
                s["best_value"],
                s.get("batch_tokens"),
            )
            for s in data.get("studies", [])
        ]
        return FittedLaw(
            lr,
            batch,
            data["units"],
            float(data["reference_batch"]),
            {k: tuple(v) for k, v in data["domain"].items()},
            studies,
            data.get("selection") or {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(
            f"law file '{path}' is incomplete ({type(exc).__name__}: {exc}); fit it again with tunekit law fit."
        ) from None


# --- From studies to points --------------------------------------------------------------------


def near_best_weights(values: list[float], minimize: bool, tolerance: float) -> list[float]:
    """Weights of trials by their relative gap to the best value: exp(-gap / (tolerance/2)), 0 beyond tolerance."""
    best = min(values) if minimize else max(values)
    scale = abs(best) or 1.0
    out = []
    for v in values:
        gap = (v - best if minimize else best - v) / scale
        out.append(math.exp(-gap / (tolerance / 2)) if gap <= tolerance else 0.0)
    return out


def weighted_log_mean(xs: list[float], ws: list[float]) -> tuple[float, float]:
    """Weighted mean of log10 x, and its uncertainty: weighted spread / sqrt(effective n), floored."""
    total = sum(ws)
    logs = [math.log10(x) for x in xs]
    mean = sum(w * lx for w, lx in zip(ws, logs, strict=True)) / total
    var = sum(w * (lx - mean) ** 2 for w, lx in zip(ws, logs, strict=True)) / total
    n_eff = total**2 / sum(w * w for w in ws)
    return mean, math.sqrt(var / n_eff + MIN_POINT_SIGMA**2)


@dataclass(frozen=True)
class TrialPoint:
    """What the fit needs from one complete trial."""

    value: float
    lr: float  # AdamW-equivalent
    batch: float  # tokens (or samples) per step
    tokens: float  # D of this trial


def study_point(name: str, n_params: float, trials: list[TrialPoint], minimize: bool, tolerance: float) -> StudyPoint:
    """The optimum of one study from its complete trials.

    Raises:
        BadInput: the study has no usable complete trial.
    """
    if not trials:
        raise BadInput(
            f"study '{name}' has no complete trial with a ratio-scaled optimizer; run more trials or drop it."
        )
    weights = near_best_weights([t.value for t in trials], minimize, tolerance)
    used = [(t, w) for t, w in zip(trials, weights, strict=True) if w > 0]
    ts, ws = [t for t, _ in used], [w for _, w in used]
    log_lr, sigma = weighted_log_mean([t.lr for t in ts], ws)
    log_d, _ = weighted_log_mean([t.tokens for t in ts], ws)
    batch_tokens = batch_sigma = None
    if len({t.batch for t in trials}) > 1:  # the batch size was searched
        log_b, batch_sigma = weighted_log_mean([t.batch for t in ts], ws)
        batch_tokens = 10**log_b
    best = min(t.value for t in trials) if minimize else max(t.value for t in trials)
    return StudyPoint(name, n_params, 10**log_d, 10**log_lr, sigma, len(ts), best, batch_tokens, batch_sigma)


# --- Weighted least squares ---------------------------------------------------------------------


def fit_power_law(
    ys: list[float], sigmas: list[float], xs: dict[str, list[float]], fixed: dict[str, float]
) -> PowerLaw:
    """Weighted least squares of log10 y on log10 x_k; a variable that does not vary gets its ``fixed`` exponent.

    The covariance is (X^T W X)^-1, inflated by chi^2/dof when the scatter exceeds the points' sigmas.
    """
    import numpy as np

    log_y = np.log10(np.asarray(ys, dtype=float))
    logs = {k: np.log10(np.asarray(v, dtype=float)) for k, v in xs.items()}
    fitted = tuple(k for k, v in logs.items() if np.ptp(v) > 0.05)  # varies by more than 12%
    if len(log_y) < 1 + len(fitted):
        raise BadInput(f"{len(log_y)} studies cannot fit {1 + len(fitted)} parameters; tune another proxy.")
    exponents = {k: fixed[k] for k in logs if k not in fitted}
    target = log_y - sum((exponents[k] * logs[k] for k in exponents), np.zeros_like(log_y))
    design = np.column_stack([np.ones_like(log_y), *[logs[k] for k in fitted]])
    w = 1.0 / np.asarray(sigmas, dtype=float) ** 2
    xtw = design.T * w
    cov = np.linalg.pinv(xtw @ design)
    beta = cov @ xtw @ target
    resid = target - design @ beta
    dof = len(log_y) - design.shape[1]
    chi2_dof = float((w * resid**2).sum() / dof) if dof > 0 else None
    if chi2_dof is not None and chi2_dof > 1:
        cov = cov * chi2_dof
    exponents.update({k: float(b) for k, b in zip(fitted, beta[1:], strict=True)})
    return PowerLaw(
        float(beta[0]),
        {k: exponents[k] for k in logs},
        fitted,
        cov.tolist(),
        float(np.sqrt(np.mean(resid**2))),
        chi2_dof,
        len(log_y),
    )


def fit_law(points: list[StudyPoint], units: str, reference_batch: float, selection: dict) -> FittedLaw:
    """The LR law (and the batch law when at least two studies searched the batch) from study points.

    Raises:
        BadInput: fewer than two studies, or too few to fit what varies.
    """
    if len(points) < 2:
        raise BadInput("a law needs at least two studies at different N or D; pass --study more than once.")
    lr = fit_power_law(
        [p.lr for p in points],
        [p.sigma for p in points],
        {"n_exponent": [p.n_params for p in points], "d_exponent": [p.tokens for p in points]},
        _FIXED_EXPONENTS,
    )
    if not lr.fitted:
        raise BadInput("the studies all have the same N and D; tune proxies at different widths or step budgets.")
    batched = [p for p in points if p.batch_tokens is not None]
    batch = None
    if len(batched) >= 2:
        try:
            batch = fit_power_law(
                [p.batch_tokens for p in batched],
                [p.batch_sigma for p in batched],
                {"d_exponent": [p.tokens for p in batched]},
                _BATCH_FIXED,
            )
        except BadInput:
            batch = None
    domain = {
        "n_params": (min(p.n_params for p in points), max(p.n_params for p in points)),
        "tokens": (min(p.tokens for p in points), max(p.tokens for p in points)),
    }
    return FittedLaw(lr, batch, units, reference_batch, domain, points, selection)


def half_width(sigma_log10: float) -> float:
    """The searched factor either side of a fitted prediction: 10^(2 sigma), clamped to [3, 10]."""
    return min(MAX_HALF_WIDTH, max(MIN_HALF_WIDTH, 10 ** (2 * sigma_log10)))


# --- Reading tunekit studies ----------------------------------------------------------------------


@dataclass(frozen=True)
class StudyTrials:
    """The complete trials of one study as fit inputs, with the study's N and D unit."""

    name: str
    n_params: float
    units: str
    minimize: bool
    trials: list[TrialPoint]
    skipped: int  # complete trials left out (family on its own scale, or filtered by family=)


def fit_studies(
    studies: list[StudyTrials], tolerance: float = DEFAULT_TOLERANCE, family: str | None = None
) -> FittedLaw:
    """Fit a law from studies read with ``read_study``.

    Raises:
        BadInput: studies with different D units, or too few to fit.
    """
    units = {s.units for s in studies}
    if len(units) > 1:
        raise BadInput("the studies mix sequence tasks (D in tokens) and others (D in samples); fit them separately.")
    points = [study_point(s.name, s.n_params, s.trials, s.minimize, tolerance) for s in studies]
    batches = [t.batch for s in studies for t in s.trials]
    reference = 10 ** (sum(math.log10(b) for b in batches) / len(batches))
    selection = {
        "tolerance": tolerance,
        "family": family or "all with a ratio to AdamW (LR divided by the ratio)",
        "weights": f"exp(-gap / {tolerance / 2:g}) for trials within {tolerance:.0%} of the study's best",
    }
    return fit_law(points, units.pop(), reference, selection)
