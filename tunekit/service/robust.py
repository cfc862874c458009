"""``show --robust``: retrain a study's top trials with new seeds, then rank them by the mean (issue #12).

Each re-run goes through ``training.fit.run_fit``, the fit path of every trial, with the trial's
recipe and only its training seed changed; it is stored as a trial of the sibling study
``NAME.reruns`` (why a sibling: ``tunekit.study.reruns``), never sampled and never pruned. A re-run
already there for the same trial and seed is reused, so asking twice trains nothing new.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from tunekit.errors import BadInput
from tunekit.recipes import Recipe
from tunekit.service.search import open_run
from tunekit.study.records import (
    ORIGIN_ATTR,
    REASON_ATTR,
    RECIPE_ATTR,
    RERUN_ATTR,
    recipe_of,
    rerun_of,
)
from tunekit.study.reruns import RERUNS_OF_ATTR, RobustRow, done_reruns, rerun_seeds, rerun_study_name, robust_rows
from tunekit.study.settings import ranked_trials
from tunekit.training.fit import RunOptions


@dataclass(frozen=True)
class RobustRequest:
    """Re-run the ``top`` best complete trials of ``study_name`` with ``seeds`` new seeds each."""

    study_name: str
    url: str
    seeds: int = 3
    top: int = 3


def robust_ranking(
    request: RobustRequest, on_rerun: Callable[[int, int, float | None, str], None] | None = None
) -> list[RobustRow]:
    """Train the missing re-runs, then return the top trials ranked by their re-runs' mean.

    ``on_rerun(trial, seed, value, reason)`` is called after each new re-run (``value`` None when
    it failed; ``reason`` says why).

    Raises:
        BadInput: ``seeds`` or ``top`` below 1, no such study, its script is gone, or no complete trial.
    """
    import optuna

    from tunekit.training.fit import run_fit

    if request.seeds < 1 or request.top < 1:
        raise BadInput(f"--seeds and --top must be at least 1, got {request.seeds} and {request.top}.")
    run = open_run(request.url, request.study_name, RunOptions())  # no option given: the stored ones apply
    top = ranked_trials(run.study)[: request.top]
    if not top:
        raise BadInput(
            f"study '{request.study_name}' has no complete trial to re-run; "
            f"run tunekit resume --study {request.study_name} first."
        )
    minimize = run.settings.minimize
    done = done_reruns(run.storage, request.study_name)
    missing = [
        (t, seed) for t in top for seed in rerun_seeds(recipe_of(t), request.seeds) if (t.number, seed) not in done
    ]
    if missing:
        sibling = optuna.create_study(
            storage=run.storage,
            study_name=rerun_study_name(request.study_name),
            direction=run.settings.direction,
            load_if_exists=True,
        )
        sibling.set_user_attr(RERUNS_OF_ATTR, request.study_name)
    for t, seed in missing:
        recipe = Recipe.from_dict(recipe_of(t), where=f"trial {t.number}'s recipe").with_training(seed=seed)
        with warnings.catch_warnings():
            # Optuna warns that heartbeats run only under optimize: a re-run is not sampled, so it uses ask/tell
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = sibling.ask()
        trial.set_user_attr(RERUN_ATTR, {"of": t.number, "seed": seed})
        trial.set_user_attr(ORIGIN_ATTR, rerun_of(t.number, seed).to_dict())
        trial.set_user_attr(RECIPE_ATTR, recipe.to_dict())
        try:
            # the study's stored device options (precision included), as its trials trained
            value = run_fit(recipe, run.script, run.settings.metric, options=run.options).value
        except Exception as exc:  # noqa: BLE001 - the user's code: record this re-run as failed, go on
            trial.set_user_attr(REASON_ATTR, f"{type(exc).__name__}: {exc}"[:500])
            sibling.tell(trial, state=optuna.trial.TrialState.FAIL)
            if on_rerun:
                on_rerun(t.number, seed, None, f"{type(exc).__name__}: {exc}")
            continue
        except BaseException:  # Ctrl-C: the re-run is recorded as failed (retried next time), then stop
            sibling.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        if not math.isfinite(value):
            # A diverged re-run counts as the worst value: a recipe that diverges on some seeds is not robust.
            value = math.inf if minimize else -math.inf
        sibling.tell(trial, value)
        done[(t.number, seed)] = value
        if on_rerun:
            on_rerun(t.number, seed, value, "")
    return robust_rows(top, request.seeds, done, minimize)
