"""How a tunekit study samples and prunes: grouped multivariate TPE; a late percentile pruner, or rungs.

Either pruner compares a trial only with its comparison set (``tunekit.study.rungs``, issue #9).
"""

from __future__ import annotations

from typing import Any

from tunekit.study.rungs import Fidelity, phase_pruner, rung_pruner

# TPE's random start: enough trials to cover the families before modelling them.
N_STARTUP_TRIALS = 5
# Full fidelity: prune only in the second half of the budget, only the worst quarter at the same
# step, and only against trials of the same schedule in the same phase (issue #9): at 75% of the
# budget WSD is still at its peak LR while cosine has decayed to 0.16 of it.
PRUNE_PERCENTILE = 75.0
PRUNE_STARTUP_TRIALS = 4


def make_sampler(seed: int) -> Any:
    import optuna

    # multivariate + group: without group=True, Optuna falls back to independent sampling for a
    # conditional space (each family's own parameters).
    return optuna.samplers.TPESampler(
        multivariate=True,
        group=True,
        n_startup_trials=N_STARTUP_TRIALS,
        seed=seed,
        constant_liar=True,
    )


def make_pruner(max_steps: int, fidelity: Fidelity | None = None, manual_optimization: bool = False) -> Any:
    """The study's pruner: ASHA over ``fidelity``'s rungs, else the late percentile rule; per comparison set."""
    import optuna

    rungs = (fidelity or Fidelity()).rungs(max_steps)
    if rungs:
        return rung_pruner(rungs, fidelity.eta, manual_optimization, fidelity.compressed)
    percentile = optuna.pruners.PercentilePruner(
        PRUNE_PERCENTILE, n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=max_steps // 2
    )
    return phase_pruner(percentile, max_steps)
