"""The measured prior (issue #14): a short learning-rate probe, for runs no published law covers.

Before the study, a few very short trials of AdamW at spread learning rates (``PROBE_LRS``, half a
decade apart) run through the trials' own Trainer set-up (``training.fit.trial_trainer``: the same
callbacks, clipping, precision and device), so the probe accepts every script a trial accepts.
Together they cost at most ``PROBE_SHARE`` of the search's compute in optimizer steps
(``--trials`` x ``--max-steps``); a budget that leaves fewer than ``MIN_PROBE_STEPS`` steps per
learning rate is too small to probe.

Each probe run is scored by its mean training loss over its last quarter. The trial's own score,
the metric at the end, was tried first and rejected: after 20 steps a BatchNorm network's
validation loss measures how far its running statistics lag behind the weights, not how well it
trains (examples/shapes.py: val_loss 4.7 at AdamW 3e-2 after 20 steps, 0.30 after 200 steps, the
best LR at 200 steps). Modules that optimize manually return no loss from ``training_step``; they
are scored by the metric at the end. The centre is the vertex of a parabola through the best
score and its two neighbours in log10(LR) (the best LR itself at an edge of the grid).

This is a few short runs, not Lightning's ``Tuner.lr_find`` (an LR range test in the manner of
Smith 2017, "Cyclical Learning Rates"), because its result did not fit, measured on this
repository's benchmark tasks (100 steps from 1e-5 to 1, AdamW, clipping 1.0): the minimum of its
smoothed training loss lay at 0.1-0.35, 3-60x above the best 200-step LR (tabular and charlm),
or not before 1 (shapes); its steepest-slope suggestion was 30-60x below it on shapes
and charlm and about 500x below on tabular. It also sets one LR on every parameter group and reads
the training loss, which a manually optimized module does not return. The probe's centre is
checked against a wide search on every benchmark task by ``benchmarks/search_efficiency.py``
(within 3x, issue #14).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tunekit.errors import BadInput

# At most 5% of the search's optimizer steps (issue #14's target).
PROBE_SHARE = 0.05
# AdamW learning rates, half a decade apart: the range in which the bundled and benchmark tasks'
# optima lie (3e-3 to 5e-2 at 200 steps), with a point beyond each side of it.
PROBE_LRS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
# Fewer steps than this per LR measure the warmup, not the LR.
MIN_PROBE_STEPS = 12
# The probe's weight decay: AdamW's default (DeepSeek LLM's 0.1); over a few dozen steps
# lr * wd * steps stays below 0.3 at every probed LR, so the decay barely acts.
PROBE_WEIGHT_DECAY = 0.1
SCORED_FRACTION = 0.25  # the last quarter of each probe run's steps is averaged


@dataclass(frozen=True)
class ProbeRequest:
    """What the probe needs to know about the search it precedes.

    Attributes:
        trials: full trials the search will run (sizes the probe's share).
        max_steps: optimizer steps per full trial.
        base: a recipe the search would run (its schedule, clipping, batch, seed, device fields);
            the probe replaces its optimizer with AdamW at each probed LR and its budget.
        metric, minimize: the trials' objective (the score of manually optimized modules).
        options: a ``training.fit.RunOptions``: where the trials train.
    """

    trials: int
    max_steps: int
    base: Any
    metric: str = "val_loss"
    minimize: bool = True
    options: Any = None


@dataclass(frozen=True)
class ProbeResult:
    """The probe's curve and chosen point, stored in the study (``Prior.record["probe"]``)."""

    lr: float
    steps: int
    points: tuple[tuple[float, float], ...]  # (AdamW LR, score); inf where the run diverged
    score: str
    share: float
    edge: bool

    def record(self) -> dict:
        return {
            "lr": float(f"{self.lr:.4g}"),
            "steps_per_lr": self.steps,
            "points": [[lr, float(f"{v:.5g}") if math.isfinite(v) else None] for lr, v in self.points],
            "score": self.score,
            "share": float(f"{self.share:.4g}"),
            "at_edge": self.edge,
        }

    def derivation(self) -> str:
        where = "the edge of the probed range" if self.edge else "a parabola through the best three"
        return (
            f"measured: {len(self.points)} AdamW runs of {self.steps} steps at LR {self.points[0][0]:.3g}-"
            f"{self.points[-1][0]:.3g}, scored by {self.score}; centre {self.lr:.3g} at {where} "
            f"({self.share:.1%} of the search's steps)"
        )


def probe_request(
    trials: int,
    max_steps: int,
    schedules: list[str],
    batch_size: int | None,
    *,
    seed: int = 0,
    manual_optimization: bool = False,
    metric: str = "val_loss",
    minimize: bool = True,
    options: Any = None,
) -> ProbeRequest:
    """The probe of a search: its base recipe is the search's first AdamW point (the first of
    ``schedules`` that is not schedule-free, wsd by preference; clipping on unless the module
    optimizes manually) at the script's default batch."""
    from tunekit.priors._registry import DEFAULT_CENTRE_LR
    from tunekit.search_spaces.catalog import get_schedule
    from tunekit.search_spaces.space import SearchSpace, SpaceConfig

    scheduled = [s for s in schedules if not get_schedule(s).schedule_free] or ["wsd"]
    config = SpaceConfig(
        optimizers=["adamw"],
        schedules=scheduled,
        centre_lr=DEFAULT_CENTRE_LR,
        max_steps=max_steps,
        default_batch_size=batch_size,
        seed=seed,
        manual_optimization=manual_optimization,
    )
    base = SearchSpace(config).first_recipe(batch_size)
    return ProbeRequest(trials, max_steps, base, metric, minimize, options)


def probe_steps(trials: int, max_steps: int) -> int:
    """Steps per probed LR within ``PROBE_SHARE`` of ``trials`` x ``max_steps`` (never above a trial's)."""
    return min(max_steps, math.floor(PROBE_SHARE * trials * max_steps / len(PROBE_LRS)))


def check_probe_budget(trials: int, max_steps: int) -> None:
    """Raises BadInput when ``trials`` x ``max_steps`` is too small to probe within its share."""
    steps = probe_steps(trials, max_steps)
    if steps < MIN_PROBE_STEPS:
        need = math.ceil(MIN_PROBE_STEPS * len(PROBE_LRS) / PROBE_SHARE)
        raise BadInput(
            f"--prior measure needs at least {need} optimizer steps in all (--trials x --max-steps) to probe "
            f"{len(PROBE_LRS)} learning rates within {PROBE_SHARE:.0%} of them, and {trials} x {max_steps} "
            f"gives {trials * max_steps}; raise --trials or --max-steps, or use --prior none."
        )


def run_probe(script: Any, request: ProbeRequest) -> ProbeResult:
    """Run the probe on ``script`` (a ``LoadedScript``) and choose the AdamW centre.

    Raises:
        BadInput: the budget is too small to probe (``check_probe_budget``).
        Exception: whatever the user's code raised (the pre-study check has run it already).
    """
    check_probe_budget(request.trials, request.max_steps)
    steps = probe_steps(request.trials, request.max_steps)
    scored, points = "", []
    for lr in PROBE_LRS:
        value, scored = _probe_run(script, request, lr, steps)
        points.append((lr, value))
    lr, edge = choose(points)
    spent = steps * len(PROBE_LRS) / (request.trials * request.max_steps)
    return ProbeResult(lr, steps, tuple(points), scored, spent, edge)


def choose(points: list[tuple[float, float]]) -> tuple[float, bool]:
    """The LR at the vertex of the parabola through the best score and its neighbours in log10(LR).

    Scores are lower-is-better; non-finite ones count as worst. Returns (LR, at the grid's edge).
    """
    values = [v if math.isfinite(v) else math.inf for _, v in points]
    best = min(range(len(values)), key=values.__getitem__)
    if best in (0, len(values) - 1) or not all(math.isfinite(values[i]) for i in (best - 1, best + 1)):
        return points[best][0], best in (0, len(values) - 1)
    x = [math.log10(points[i][0]) for i in (best - 1, best, best + 1)]
    y = [values[i] for i in (best - 1, best, best + 1)]
    h = x[1] - x[0]
    curvature = y[0] - 2 * y[1] + y[2]
    offset = 0.5 * h * (y[0] - y[2]) / curvature if curvature > 0 else 0.0
    offset = max(-h / 2, min(h / 2, offset))  # never past halfway to a worse neighbour
    return 10 ** (x[1] + offset), False


def _probe_run(script: Any, request: ProbeRequest, lr: float, steps: int) -> tuple[float, str]:
    """One probe run: (score, what the score is). Diverged runs score inf."""
    import lightning.pytorch as pl

    from tunekit.recipes import OptimizerSection
    from tunekit.training.callbacks import Diverged, MetricNotLogged
    from tunekit.training.fit import RunOptions, check_failure, fit_to_the_end, trial_callbacks, trial_trainer
    from tunekit.training.quiet import silence_lightning

    silence_lightning()

    base = request.base
    recipe = replace(
        base,
        optimizer=OptimizerSection("adamw", {"lr": lr, "weight_decay": PROBE_WEIGHT_DECAY}),
        training=replace(base.training, max_steps=steps, samples=None, evaluations=1),
    )
    # One device, as the pre-study check: a probe run needs no process group.
    options = replace(request.options or RunOptions(), devices=1, strategy="auto")
    pl.seed_everything(recipe.training.seed, workers=True, verbose=False)
    model = script.build_model()
    data = script.build_data(recipe.training.batch_size)
    callbacks, reporter = trial_callbacks(recipe, request.metric)
    losses = _training_losses()
    trainer = trial_trainer(recipe, model, options, [*callbacks, losses])
    try:
        fit_to_the_end(trainer, model, data, reporter)
    except Diverged:
        return math.inf, losses.what(request.metric)
    except MetricNotLogged:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code or Lightning refusing a setting: one sentence
        raise BadInput(check_failure(exc, script.spec.path, recipe, options)) from None
    tail = losses.values[-max(1, round(SCORED_FRACTION * steps)) :]
    if tail and len(losses.values) >= steps:
        value = sum(tail) / len(tail)
        return (value if math.isfinite(value) else math.inf), losses.what(request.metric)
    value = reporter.history[-1][1] if reporter.history else math.nan
    value = value if request.minimize else -value
    return (value if math.isfinite(value) else math.inf), losses.what(request.metric)


def _training_losses() -> Any:
    """A callback keeping the loss ``training_step`` returned at each batch (none in manual optimization)."""
    import lightning.pytorch as pl

    class TrainingLosses(pl.Callback):
        def __init__(self) -> None:
            self.values: list[float] = []

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args: Any) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None and pl_module.automatic_optimization:
                self.values.append(float(loss))

        def what(self, metric: str) -> str:
            return "mean training loss over the last quarter" if self.values else f"{metric} at the end"

    return TrainingLosses()
