"""Run a study: sample a recipe per trial, train it, report, prune, record why.

Trial outcomes:
- COMPLETE: the metric at the END of training (rankings flip mid-run under LR decay).
- PRUNED: a pruner stopped it at a validation point, or it diverged (reason "diverged at step k").
- FAIL: the user's code raised (reason and traceback stored on the trial; "out of memory: ..." for
  OOM), or Ctrl-C (reason "interrupted"; the same parameters are queued again so ``resume`` retries
  them), or its worker died (no reason: the heartbeat check failed it and queued it again).

Every worker (this process, the ``--jobs`` processes, other machines) works toward the study's
shared target (``settings.target_trials``), so N workers together run the requested count:
- before a trial, a worker starts one only while finished-and-counted plus RUNNING trials are
  below the target; when the remaining trials all run elsewhere, it waits, so that if their worker
  died it is there to retry them once the heartbeat check fails them;
- two workers may both see the last free place at once; after ``ask`` each counts the trials
  queued or running with a smaller number, and the later one gives its trial up (FAIL, reason
  ``SURPLUS``, not counted) before sampling anything.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

from tunekit.errors import BadInput, RunFailure
from tunekit.interrupts import ForcedStop, InterruptFlag
from tunekit.search_spaces.space import SearchSpace
from tunekit.storage import grace_period, reap_dead_workers
from tunekit.study import (
    INTERRUPTED,
    ORIGIN_ATTR,
    PREDICTED_ATTR,
    PROGRESS_ATTR,
    REASON_ATTR,
    RECIPE_ATTR,
    SURPLUS,
    TRACEBACK_ATTR,
    WORKER_ATTR,
    StudySettings,
    counts_toward_target,
    reason_of,
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
PROGRESS_EVERY = 2.0  # seconds between records of a running trial's step (read by other processes' views)
WAIT_POLL = 1.0  # seconds between looks at the study while the remaining trials run elsewhere


class TrialFailed(Exception):
    """The user's code raised during a trial; the study goes on."""


class Surplus(Exception):
    """Another worker took the study's last free place first; this trial is given up unrun."""


@dataclass
class SearchOutcome:
    interrupted: bool
    ran: int
    forced: bool = False  # a second Ctrl-C: stopped in the middle of a batch


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


def sampler_seed(seed: int, trials: list, worker: int) -> int:
    """The sampler's seed: resumed and parallel runs must not replay the same draws.

    A lone run is reproducible (``--seed`` plus the trials so far). A ``--jobs`` worker adds its
    index; a process that joins trials already running elsewhere adds its pid.
    """
    offset = len(trials) + 1_000_003 * worker
    if any(t.state.name == "RUNNING" for t in trials):
        offset += 7_919 * os.getpid()
    return (seed + offset) % 2**32


def make_pruner(max_steps: int) -> Any:
    import optuna

    return optuna.pruners.PercentilePruner(
        PRUNE_PERCENTILE, n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=max_steps // 2
    )


def counted_trials(trials: list) -> int:
    return sum(counts_toward_target(t) for t in trials)


def remaining_trials(study: Any, settings: StudySettings) -> int:
    return max(0, (settings.target_trials or 0) - counted_trials(study.get_trials(deepcopy=False)))


def enqueue_next_prediction(study: Any, space: SearchSpace, script: LoadedScript) -> None:
    """Queue the prior's predicted point of the next family that has no trial yet.

    Every family in the space starts at its prediction (centre LR, paper defaults, the default
    schedule) before TPE models it: a fair comparison tunes each family on its own (Wen et al.
    2025), and a family TPE's random start never drew would otherwise never be judged at all.
    """
    trials = study.get_trials(deepcopy=False)
    if any(t.state.name == "WAITING" for t in trials):
        return  # the queued trial runs next; queue more only when the queue is empty (none left over)
    tried = {t.params.get("optimizer") for t in trials} | {t.user_attrs.get(PREDICTED_ATTR) for t in trials}
    for family in space.families:
        if family.name not in tried:
            point = space.predicted_point(script.default_batch_size, family.name)
            study.enqueue_trial(point, user_attrs={ORIGIN_ATTR: "prior prediction", PREDICTED_ATTR: family.name})
            return


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA/MPS/CPU out-of-memory, whichever way torch or Python reported it."""
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    # CPU allocations fail with a plain RuntimeError: "DefaultCPUAllocator: can't allocate memory".
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(s in text for s in ("out of memory", "allocate memory"))


def failure_reason(exc: BaseException) -> str:
    """The reason stored on a trial failed by ``exc`` ("out of memory: ..." for OOM)."""
    text = f"{type(exc).__name__}: {exc}"
    return (f"out of memory: {text}" if is_out_of_memory(exc) else text)[:500]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def wait_for_place(
    storage: Any, study: Any, target: int, flag: InterruptFlag, deadline: float | None, view: Any
) -> bool:
    """Whether this worker should start another trial; waits while the last ones run elsewhere.

    Each look first fails the trials of dead workers (no heartbeat for the grace period) and queues
    them again, so a waiting worker is what retries them.
    """
    unclaimed: dict[int, float] = {}
    while True:
        if flag.requested() or (deadline is not None and time.monotonic() >= deadline):
            return False
        reap_dead_workers(study)
        trials = study.get_trials(deepcopy=False)
        counted = counted_trials(trials)
        running = [t for t in trials if t.state.name == "RUNNING"]
        if counted >= target:
            return False
        if counted + len(running) < target:
            return True
        _fail_unclaimed(storage, study, running, unclaimed)
        view.waiting([t.number for t in running])
        time.sleep(WAIT_POLL)


def _fail_unclaimed(storage: Any, study: Any, running: list, first_seen: dict[int, float]) -> None:
    """Fail and queue again RUNNING trials that no worker ever claimed, after a grace period.

    A worker killed between Optuna's ``ask`` and the start of the objective leaves a RUNNING trial
    with no heartbeat at all, which Optuna's check skips forever. Every live worker stores its name
    on its trial as soon as the objective starts, so a trial seen without one for a whole grace
    period (on this process's own clock: no clock skew between machines) lost its worker.
    """
    import optuna

    now = time.monotonic()
    for t in running:
        if WORKER_ATTR in t.user_attrs:
            continue
        if now - first_seen.setdefault(t.number, now) <= grace_period():
            continue
        try:
            failed = storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # it finished (or another worker failed it) in the meantime
        if failed:
            storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(t._trial_id))


def _later_than_target(study: Any, number: int, target: int) -> bool:
    """Whether trial ``number`` is beyond the target, given the trials queued or running before it."""
    trials = study.get_trials(deepcopy=False)
    ahead = sum(1 for t in trials if t.number < number and t.state.name in ("RUNNING", "WAITING"))
    return counted_trials(trials) + ahead >= target


def run_search(
    storage: Any,
    study: Any,
    settings: StudySettings,
    script: LoadedScript,
    *,
    timeout: float | None,
    view: Any,
    accelerator: str = "auto",
    worker: int = 0,
    parent_pid: int | None = None,
) -> SearchOutcome:
    """Run trials of ``study`` in this process until the study's target is reached (or ``timeout``).

    Args:
        timeout: seconds after which no new trial is started.
        view: receives progress events (``SearchView``, or ``QuietView`` in a worker process).
        worker: the index (from 1) of a ``--jobs`` worker process; 0 for a lone run.
        parent_pid: in a ``--jobs`` worker, the parent's pid: if it dies, stop as if interrupted.

    Raises:
        BadInput: the metric is never logged.
        RunFailure: the first trials all failed the same way.
    """
    import optuna

    from tunekit.training.callbacks import Diverged, Interrupted, MetricNotLogged
    from tunekit.training.fit import run_fit
    from tunekit.training.quiet import silence_lightning

    silence_lightning()
    space = SearchSpace(settings.space)
    trials = study.get_trials(deepcopy=False)
    study = optuna.load_study(
        study_name=study.study_name,
        storage=storage,
        sampler=make_sampler(sampler_seed(settings.space.seed, trials, worker)),
        pruner=make_pruner(settings.space.max_steps),
    )
    target = settings.target_trials or 0
    flag = InterruptFlag(on_first=view.interrupt_requested, parent_pid=parent_pid)
    me = worker_name()
    ran: list[int] = []  # numbers of the trials this process ran

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        if flag.requested():
            trial.set_user_attr(REASON_ATTR, INTERRUPTED)
            raise Interrupted()
        # Optuna's heartbeat thread records its first beat whenever it gets the GIL and the database
        # lock; a worker killed before that leaves a RUNNING trial with no beat at all, which the
        # heartbeat check never fails. Beat once here, so a trial that started training is covered.
        storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr(WORKER_ATTR, me)
        if _later_than_target(study, trial.number, target):
            trial.set_user_attr(REASON_ATTR, SURPLUS)
            raise Surplus()
        last_record = [time.monotonic()]

        def on_step(step: int, total: int) -> None:
            view.step(step, total)
            now = time.monotonic()
            if now - last_record[0] >= PROGRESS_EVERY:
                last_record[0] = now
                trial.set_user_attr(PROGRESS_ATTR, {"step": step, "total": total})

        def on_eval(step: int, value: float) -> None:
            trial.report(value, step)
            view.evaluated(step, value)
            # The last evaluation ends the trial: it completes with that value, never pruned at the line.
            if step < settings.space.max_steps and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} ({settings.metric}={value:.4g}, in the worst quarter)")

        try:
            recipe = space.sample(trial)
            recipe.prior = settings.prior
            trial.set_user_attr(RECIPE_ATTR, recipe.to_dict())
            view.trial_started(trial.number, recipe)
            result = run_fit(
                recipe,
                script,
                settings.metric,
                on_eval=on_eval,
                on_step=on_step,
                should_stop=flag.requested,
                accelerator=accelerator,
            )
        except optuna.TrialPruned as exc:
            trial.set_user_attr(REASON_ATTR, str(exc))
            raise
        except Diverged as exc:
            trial.set_user_attr(REASON_ATTR, str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except (Interrupted, KeyboardInterrupt):
            trial.set_user_attr(REASON_ATTR, INTERRUPTED)
            raise
        except ForcedStop:
            # Optuna records a KeyboardInterrupt as FAIL (it would leave the trial RUNNING on ForcedStop).
            trial.set_user_attr(REASON_ATTR, INTERRUPTED)
            raise KeyboardInterrupt from None
        except MetricNotLogged as exc:
            trial.set_user_attr(REASON_ATTR, str(exc)[:500])
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: fail this trial, keep the study going
            trial.set_user_attr(REASON_ATTR, failure_reason(exc))
            trial.set_user_attr(TRACEBACK_ATTR, traceback.format_exc()[-8000:])
            if is_out_of_memory(exc):
                _release_memory()
            raise TrialFailed(str(exc)) from exc
        if not math.isfinite(result.value):
            trial.set_user_attr(REASON_ATTR, f"diverged at step {result.steps}")
            raise optuna.TrialPruned(f"diverged at step {result.steps}")
        return result.value

    def stop_when_broken(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = [t for t in study.get_trials(deepcopy=False) if counts_toward_target(t)]
        if len(counted) < FAIL_FAST_TRIALS or any(t.state.name != "FAIL" for t in counted):
            return
        reasons = {reason_of(t) for t in counted}
        if len(reasons) == 1:
            raise RunFailure(
                f"the first {FAIL_FAST_TRIALS} trials all failed with '{reasons.pop()}'; the script is "
                "broken: fix it ('tunekit show' has the traceback) and run again."
            )

    deadline = None if timeout is None else time.monotonic() + timeout
    interrupted = forced = False
    with flag, view:
        try:
            while wait_for_place(storage, study, target, flag, deadline, view):
                enqueue_next_prediction(study, space, script)
                study.optimize(
                    objective,
                    n_trials=1,
                    catch=(TrialFailed, Surplus),
                    callbacks=[view.trial_finished, stop_when_broken],
                )
        except Interrupted:
            interrupted = True
        except (ForcedStop, KeyboardInterrupt):
            interrupted = forced = True
        except MetricNotLogged as exc:
            raise BadInput(str(exc)) from None
        interrupted = interrupted or flag.requested()
        if interrupted:
            _requeue_interrupted(study, ran)
    return SearchOutcome(interrupted, len(ran), forced)


def _release_memory() -> None:
    """Give back what a trial that ran out of memory held, so the next trial starts clean."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _requeue_interrupted(study: Any, numbers: list[int]) -> None:
    """Queue the parameters of this process's interrupted trials again, so ``resume`` retries them first."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get(ORIGIN_ATTR) for t in trials}
    mine = set(numbers)
    for t in trials:
        origin = f"retry of interrupted trial {t.number}"
        if (
            t.number in mine
            and t.params  # stopped before sampling: nothing to retry
            and t.state.name == "FAIL"
            and t.user_attrs.get(REASON_ATTR) == INTERRUPTED
            and origin not in queued
        ):
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.WAITING,
                    params=t.params,
                    distributions=t.distributions,
                    user_attrs={ORIGIN_ATTR: origin},
                )
            )
