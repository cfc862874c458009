"""The trial loop of one process: sample a recipe per trial, train it, report, prune, record why.

Trial outcomes:
- COMPLETE: the metric at the END of training (rankings flip mid-run under LR decay).
- PRUNED: a pruner stopped it at a validation point, or it diverged (reason "diverged at step k").
- FAIL: the user's code raised (reason and traceback stored on the trial; "out of memory: ..." for
  OOM), or Ctrl-C (reason "interrupted"; the same parameters are queued again so ``resume`` retries
  them), or its worker died (no reason: the heartbeat check failed it and queued it again).

How several workers share one study's target is in ``tunekit.study.coordination``. The loop runs
one ``study.optimize(n_trials=1)`` per trial rather than ``ask``/``tell``: only ``optimize`` runs
Optuna's heartbeat thread, which the dead-worker retry depends on.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import tempfile
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput, RunFailure
from tunekit.interrupts import ForcedStop, InterruptFlag
from tunekit.search_spaces.space import SearchSpace
from tunekit.service.events import SearchEvents
from tunekit.study.allocation import enqueue_allocated, named_families
from tunekit.study.continuation import continued_start
from tunekit.study.coordination import (
    enqueue_next_prediction,
    later_than_target,
    requeue_interrupted,
    sampler_seed,
    wait_for_place,
)
from tunekit.study.objectives import should_prune_first_objective
from tunekit.study.records import (
    CURVE_ATTR,
    INTERRUPTED,
    PREDICTED_ATTR,
    PROGRESS_ATTR,
    REASON_ATTR,
    RECIPE_ATTR,
    RUNG_ATTR,
    STEPS_ATTR,
    SURPLUS,
    TRACEBACK_ATTR,
    WORKER_ATTR,
    counts_toward_target,
    reason_of,
)
from tunekit.study.rungs import Fidelity, rung_reason
from tunekit.study.sampling import make_pruner, make_sampler
from tunekit.study.settings import StudySettings
from tunekit.study.stable_states import artifact_folder, keep_stable_state
from tunekit.study.storage import record_heartbeat
from tunekit.training import peak_memory
from tunekit.training.fit import RunOptions
from tunekit.training.rung_plan import RungPlan, RungValue, decay_start, rung_kind
from tunekit.training.script import LoadedScript

# Stop the study when the first trials all fail with the same error: the script is broken.
FAIL_FAST_TRIALS = 3
PROGRESS_EVERY = 2.0  # seconds between records of a running trial's step (read by other processes' views)


class TrialFailed(Exception):
    """The user's code raised during a trial; the study goes on."""


class Surplus(Exception):
    """Another worker took the study's last free place first; this trial is given up unrun."""


@dataclass
class SearchOutcome:
    interrupted: bool
    ran: int
    forced: bool = False  # a second Ctrl-C: stopped in the middle of a batch


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


def run_search(
    storage: Any,
    study: Any,
    settings: StudySettings,
    script: LoadedScript,
    space: SearchSpace,
    *,
    timeout: float | None,
    view: SearchEvents,
    options: RunOptions,
    worker: int = 0,
    parent_pid: int | None = None,
) -> SearchOutcome:
    """Run trials of ``study`` in this process until the study's target is reached (or ``timeout``).

    Args:
        script, space: loaded once per process by the application service and passed down.
        timeout: seconds after which no new trial is started.
        view: receives progress events (the CLI's live view, or ``QuietView`` in a worker process).
        options: where each trial trains (``--accelerator``).
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
    from tunekit.training.ranks import RankGroup
    from tunekit.training.stable_resume import continue_stable_phase

    silence_lightning()
    trials = study.get_trials(deepcopy=False)
    # Optuna's Study keeps its sampler and pruner as plain attributes: set them, no second load.
    study.sampler = make_sampler(sampler_seed(settings.space.seed, trials, worker))
    fidelity = Fidelity.from_dict(settings.fidelity)
    study.pruner = make_pruner(settings.space.max_steps, fidelity, settings.space.manual_optimization)
    rungs = fidelity.rungs(settings.space.max_steps)  # issue #9: budgets at the default batch, smallest first
    manual = settings.space.manual_optimization
    target = settings.target_trials or 0
    flag = InterruptFlag(on_first=view.interrupt_requested, parent_pid=parent_pid)
    me = worker_name()
    ran: list[int] = []  # numbers of the trials this process ran
    # --devices N: this process is rank 0 of every trial; the other ranks stay up between trials.
    group = RankGroup(script, settings.metric, options) if options.devices > 1 else None
    # WSD-S checkpoints pass through here (removed when the loop ends, however it ends)
    scratch_files = None
    if artifact_folder(getattr(storage, "url", "")):
        scratch_files = tempfile.TemporaryDirectory(prefix="tunekit-", ignore_cleanup_errors=True)
    scratch = scratch_files.name if scratch_files is not None else None

    def train(recipe: Any, **callbacks: Any) -> Any:
        if group is not None:
            return group.run_fit(recipe, **callbacks)
        return run_fit(recipe, script, settings.metric, options=options, **callbacks)

    # search --also: two objectives; Optuna does not prune those, so the metric's curve is stored
    # by tunekit (CURVE_ATTR) and pruned by the same rule on the metric alone (study.objectives).
    also = settings.also
    max_steps = settings.space.max_steps

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        ran.append(trial.number)
        # Optuna's heartbeat thread records its first beat whenever it gets the GIL and the database
        # lock; a worker killed before that leaves a RUNNING trial with no beat at all, which the
        # heartbeat check never fails. Beat once here, so a trial that started training is covered.
        record_heartbeat(storage, trial)
        trial.set_user_attr(WORKER_ATTR, me)
        if flag.requested():
            trial.set_user_attr(STEPS_ATTR, 0)
            trial.set_user_attr(REASON_ATTR, INTERRUPTED)
            raise Interrupted()
        if later_than_target(study, trial.number, target):
            # Every trial records what it trained (issue #9), a trial given up unrun included.
            trial.set_user_attr(STEPS_ATTR, 0)
            trial.set_user_attr(REASON_ATTR, SURPLUS)
            raise Surplus()
        last_record = [time.monotonic()]

        def note_progress(step: int, total: int) -> None:
            view.step(step, total)
            now = time.monotonic()
            if now - last_record[0] >= PROGRESS_EVERY:
                last_record[0] = now
                trial.set_user_attr(PROGRESS_ATTR, {"step": step, "total": total})

        # Steps at the default batch (issue #10): trials of other batch sizes run max_steps * default / B
        # steps, so trials are compared at equal samples, not equal steps.
        at_default = [1.0, settings.space.max_steps]
        curve: dict[int, float] = {}
        # A family's predicted point trains its whole budget, reported but never pruned: the
        # allocation (issue #14) judges families by complete trials, so a pruned predicted point
        # dropped its family unseen (tabular benchmark, --fidelity sh: Muon 3% behind AdamW at
        # rung 66, 19% ahead at 200 steps).
        prunable = PREDICTED_ATTR not in trial.user_attrs
        main_steps = [0]  # the main run's optimizer steps so far (its branches are counted by the plan)

        def should_prune(step: int, value: float) -> bool:
            if also is None:
                trial.report(value, step)
                return trial.should_prune()
            curve[step] = value
            trial.set_user_attr(CURVE_ATTR, curve)
            within = study.pruner.view(study, trial, step)  # its comparison set only (issue #9)
            return should_prune_first_objective(within, step, list(curve.values()), max_steps)

        def on_eval(step: int, value: float) -> None:
            at = round(step * at_default[0])
            view.evaluated(step, value)
            if rungs:  # --fidelity sh judges at its rungs only (issue #9)
                if at >= max_steps:
                    # The end, recorded but not judged: asked, Optuna's halving pruner would file the
                    # value under every rung the trial has no value of (a --from-study trial's).
                    trial.report(value, at)
                return
            prune = should_prune(at, value)
            # The last evaluation ends the trial: it completes with that value, never pruned at the line.
            if step < at_default[1] and prune and prunable:
                among = study.pruner.last.set_name if study.pruner.last else "trials"
                raise optuna.TrialPruned(
                    f"pruned at step {step} ({settings.metric}={value:.4g}, in the worst quarter of {among} at this step)"
                )

        def on_rung(value: RungValue) -> None:
            budget = rungs[plan.budgets.index(value.budget)]
            trial.report(value.value, budget)
            trial.set_user_attr(RUNG_ATTR, budget)
            view.evaluated(budget, value.value)
            if trial.should_prune() and prunable:
                reason = rung_reason(
                    rungs, budget, max_steps, settings.metric, value.value, study.pruner.last, fidelity.eta
                )
                raise optuna.TrialPruned(reason)

        # WSD-S: a WSD trial of one device saves its state at its decay's start (kept if it completes).
        keep = Path(scratch, f"trial-{trial.number}.ckpt") if scratch is not None and group is None else None
        plan = RungPlan([], on_rung, should_stop=flag.requested, keep_stable=None if keep is None else str(keep))

        start: tuple[Path, int] | None = None  # search --from-study: the checkpoint and step it continues from

        def on_step(step: int, total: int) -> None:
            main_steps[0] = step - (start[1] if start else 0)  # the earlier study trained the steps before
            note_progress(step, total)

        try:
            recipe = options.stamp(replace(space.sample(trial), prior=settings.prior))
            if recipe.training.samples:
                at_default[:] = [settings.space.max_steps / recipe.training.max_steps, recipe.training.max_steps]
            trial.set_user_attr(RECIPE_ATTR, recipe.to_dict())
            view.trial_started(trial.number, recipe)
            if also == "peak_memory":
                peak_memory.start()
            plan.budgets = [max(1, round(b / at_default[0])) for b in rungs]
            start = continued_start(storage.url, trial, recipe, Path(scratch) if scratch and group is None else None)
            if start is not None:
                # search --from-study: its steps before ``start`` were judged in the earlier study, so
                # it has no rungs here; its value is the end of this budget, as every trial's.
                plan.budgets = []
            elif fidelity.compressed and rung_kind(recipe.schedule.name, not manual) == "budget-bound":
                # --budget-bound compressed (issue #9): a cosine, linear, REX or SGDR curve has no
                # end-of-run value before its budget, so each rung trains the whole schedule in b
                # steps from scratch; its steps count in the trial's cost, like a branch's.
                for budget in plan.budgets:
                    short = train(
                        replace(recipe, training=replace(recipe.training, max_steps=budget)),
                        on_step=on_step,
                        should_stop=flag.requested,
                    )
                    plan.branch_steps, main_steps[0] = plan.branch_steps + short.steps, 0
                    on_rung(RungValue(budget, 0, short.value))
                plan.budgets = []
            callbacks = {"on_eval": on_eval, "on_step": on_step, "should_stop": flag.requested}
            if rungs or keep is not None:
                callbacks["rungs"] = plan
            if start is None:
                result = train(recipe, **callbacks)
            else:
                result = continue_stable_phase(recipe, script, settings.metric, *start, options, **callbacks)
            main_steps[0] = result.steps
            trial.set_user_attr(RUNG_ATTR, max_steps)
            if keep is not None and keep.exists() and math.isfinite(result.value):
                keep_stable_state(storage.url, study, trial, keep, decay_start(recipe), result.value)
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
        finally:
            trial.set_user_attr(STEPS_ATTR, main_steps[0] + plan.branch_steps)
            for scratch_file in (keep, start[0] if start else None):
                if scratch_file is not None:
                    scratch_file.unlink(missing_ok=True)
        if not math.isfinite(result.value):
            trial.set_user_attr(REASON_ATTR, f"diverged at step {result.steps}")
            raise optuna.TrialPruned(f"diverged at step {result.steps}")
        if also is None:
            return result.value
        return result.value, {"seconds": lambda: result.seconds, "peak_memory": peak_memory.peak_mib}[also]()

    def stop_when_broken(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = [t for t in study.get_trials(deepcopy=False) if counts_toward_target(t)]
        if len(counted) < FAIL_FAST_TRIALS or any(t.state.name != "FAIL" for t in counted):
            return
        reasons = {reason_of(t) for t in counted}
        if len(reasons) != 1:
            return
        # "The script is broken" only when its code is on the tracebacks (issue #15): a failure
        # raised by Lightning or tunekit alone is a conflict of settings, not the user's bug.
        script_path = f'"{Path(settings.script.path).resolve()}"'
        if all(script_path in t.user_attrs.get(TRACEBACK_ATTR, "") for t in counted):
            raise RunFailure(
                f"the first {FAIL_FAST_TRIALS} trials all failed with '{reasons.pop()}'; the script is "
                "broken: fix it ('tunekit show' has the traceback) and run again."
            )
        raise RunFailure(
            f"the first {FAIL_FAST_TRIALS} trials all failed with '{reasons.pop()}' inside Lightning or tunekit, "
            "not in the script's code, so a setting of the script (a callback, a hook) and tunekit's conflict; "
            "find it in the traceback ('tunekit show') and change it, or report it as a tunekit issue."
        )

    deadline = None if timeout is None else time.monotonic() + timeout

    def stopping() -> bool:
        return flag.requested() or (deadline is not None and time.monotonic() >= deadline)

    def predict(family: str) -> dict:
        return space.predicted_point(script.default_batch_size, family)

    families = [f.name for f in space.families]
    named = named_families(settings.space.optimizers)  # their drops are announced as theirs (issue #14)
    interrupted = forced = False
    with flag, view, group or nullcontext(), scratch_files or nullcontext():
        try:
            while wait_for_place(storage, study, target, stopping, view.waiting):
                enqueue_next_prediction(study, families, predict)
                enqueue_allocated(study, families, settings.minimize, named, view.notice, space.params)
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
            requeue_interrupted(study, ran)
    return SearchOutcome(interrupted, len(ran), forced)


def _release_memory() -> None:
    """Give back what a trial that ran out of memory held, so the next trial starts clean."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
