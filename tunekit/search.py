"""Run a study: sample a recipe per trial, train it, report, prune, record why.

Trial outcomes:
- COMPLETE: the metric at the END of training (rankings flip mid-run under LR decay).
- PRUNED: a pruner stopped it at a validation point, or it diverged (reason "diverged at step k").
- FAIL: the user's code raised (reason and traceback stored on the trial), or Ctrl-C (reason
  "interrupted"; the same parameters are queued again so ``resume`` retries them).
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Any

from tunekit.errors import BadInput, RunFailure
from tunekit.interrupts import InterruptFlag
from tunekit.search_spaces.space import SearchSpace
from tunekit.study import (
    INTERRUPTED,
    ORIGIN_ATTR,
    REASON_ATTR,
    RECIPE_ATTR,
    TRACEBACK_ATTR,
    StudySettings,
    counts_toward_target,
)
from tunekit.training.script import LoadedScript

# TPE's random start: enough trials to cover the families before modelling them.
N_STARTUP_TRIALS = 5
# Prune only in the second half of the budget, and only the worst quarter at the same step:
# WSD keeps a high LR until its decay, so early comparisons against cosine would be unfair.
PRUNE_PERCENTILE = 75.0
PRUNE_STARTUP_TRIALS = 4
# Stop the study when the first trials all fail with the same error: the script is broken.
FAIL_FAST_TRIALS = 3


class TrialFailed(Exception):
    """The user's code raised during a trial; the study goes on."""


@dataclass
class SearchOutcome:
    interrupted: bool
    ran: int


def make_sampler(seed: int, n_existing: int) -> Any:
    import optuna

    # multivariate + group: without group=True, Optuna falls back to independent sampling for a
    # conditional space (each family's own parameters).
    return optuna.samplers.TPESampler(
        multivariate=True,
        group=True,
        n_startup_trials=N_STARTUP_TRIALS,
        seed=seed + n_existing,  # a resumed or parallel run must not replay the same draws
        constant_liar=True,
    )


def make_pruner(max_steps: int) -> Any:
    import optuna

    return optuna.pruners.PercentilePruner(
        PRUNE_PERCENTILE, n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=max_steps // 2
    )


def remaining_trials(study: Any, settings: StudySettings) -> int:
    done = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return max(0, (settings.target_trials or 0) - done)


def enqueue_prediction(study: Any, space: SearchSpace, script: LoadedScript) -> None:
    """Queue the prior's predicted point as the study's first trial (once, for a new study)."""
    if study.get_trials(deepcopy=False):
        return
    study.enqueue_trial(space.predicted_point(script.default_batch_size), user_attrs={ORIGIN_ATTR: "prior prediction"})


def run_search(
    storage: Any,
    study: Any,
    settings: StudySettings,
    script: LoadedScript,
    *,
    n_trials: int | None,
    timeout: float | None,
    view: Any,
    accelerator: str = "auto",
) -> SearchOutcome:
    """Run up to ``n_trials`` trials (or until ``timeout`` seconds) of ``study`` in this process.

    Raises:
        BadInput: the metric is never logged.
        RunFailure: the first trials all failed the same way.
    """
    import optuna

    from tunekit.training.callbacks import Diverged, Interrupted, MetricNotLogged
    from tunekit.training.fit import run_fit

    space = SearchSpace(settings.space)
    existing = len(study.get_trials(deepcopy=False))
    study = optuna.load_study(
        study_name=study.study_name,
        storage=storage,
        sampler=make_sampler(settings.space.seed, existing),
        pruner=make_pruner(settings.space.max_steps),
    )
    enqueue_prediction(study, space, script)
    flag = InterruptFlag(on_first=view.interrupt_requested)

    def objective(trial: optuna.Trial) -> float:
        if flag.requested():
            raise Interrupted()
        recipe = space.sample(trial)
        recipe.prior = settings.prior
        trial.set_user_attr(RECIPE_ATTR, recipe.to_dict())
        view.trial_started(trial.number, recipe)

        def on_eval(step: int, value: float) -> None:
            trial.report(value, step)
            view.evaluated(step, value)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} ({settings.metric}={value:.4g}, in the worst quarter)")

        try:
            result = run_fit(
                recipe,
                script,
                settings.metric,
                on_eval=on_eval,
                on_step=view.step,
                should_stop=flag.requested,
                accelerator=accelerator,
            )
        except optuna.TrialPruned as exc:
            trial.set_user_attr(REASON_ATTR, str(exc))
            raise
        except Diverged as exc:
            trial.set_user_attr(REASON_ATTR, str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except Interrupted:
            trial.set_user_attr(REASON_ATTR, INTERRUPTED)
            raise
        except (MetricNotLogged, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: fail this trial, keep the study going
            trial.set_user_attr(REASON_ATTR, f"{type(exc).__name__}: {exc}"[:500])
            trial.set_user_attr(TRACEBACK_ATTR, traceback.format_exc()[-8000:])
            raise TrialFailed(str(exc)) from exc
        if not math.isfinite(result.value):
            trial.set_user_attr(REASON_ATTR, f"diverged at step {result.steps}")
            raise optuna.TrialPruned(f"diverged at step {result.steps}")
        return result.value

    def stop_when_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if flag.requested():
            study.stop()

    def stop_when_broken(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
        first = finished[:FAIL_FAST_TRIALS]
        if len(first) == FAIL_FAST_TRIALS and len(finished) == FAIL_FAST_TRIALS:
            reasons = {t.user_attrs.get(REASON_ATTR) for t in first if t.state.name == "FAIL"}
            if len(reasons) == 1 and all(t.state.name == "FAIL" for t in first) and None not in reasons:
                study.stop()
                raise RunFailure(
                    f"the first {FAIL_FAST_TRIALS} trials all failed with '{reasons.pop()}'; the script is "
                    "broken: fix it ('tunekit show' has the traceback) and run again."
                )

    ran_before = len(study.get_trials(deepcopy=False))
    interrupted = False
    with flag, view:
        try:
            study.optimize(
                objective,
                n_trials=n_trials,
                timeout=timeout,
                catch=(TrialFailed,),
                callbacks=[view.trial_finished, stop_when_asked, stop_when_broken],
            )
        except Interrupted:
            interrupted = True
        except MetricNotLogged as exc:
            raise BadInput(str(exc)) from None
        interrupted = interrupted or flag.requested()
        if interrupted:
            _requeue_interrupted(study)
    return SearchOutcome(interrupted, len(study.get_trials(deepcopy=False)) - ran_before)


def _requeue_interrupted(study: Any) -> None:
    """Queue each interrupted trial's parameters again, so ``resume`` retries them first."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get(ORIGIN_ATTR) for t in trials}
    for t in trials:
        origin = f"retry of interrupted trial {t.number}"
        if t.state.name == "FAIL" and t.user_attrs.get(REASON_ATTR) == INTERRUPTED and origin not in queued:
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.WAITING,
                    params=t.params,
                    distributions=t.distributions,
                    user_attrs={ORIGIN_ATTR: origin},
                )
            )
