"""How a tunekit study samples and prunes: grouped multivariate TPE and a late percentile pruner."""

from __future__ import annotations

from typing import Any

# TPE's random start: enough trials to cover the families before modelling them.
N_STARTUP_TRIALS = 5
# Prune only in the second half of the budget, and only the worst quarter at the same step:
# WSD keeps a high LR until its decay, so early comparisons against cosine would be unfair.
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


def make_pruner(max_steps: int) -> Any:
    import optuna

    return optuna.pruners.PercentilePruner(
        PRUNE_PERCENTILE, n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=max_steps // 2
    )
