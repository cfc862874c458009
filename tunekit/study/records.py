"""What tunekit writes on an Optuna trial, and how it reads it back: the one leaf for trial records.

Attribute keys, the reasons of trials that are not the trial's fault, where a trial came from
(its origin), the readers every view and command uses, and the one ``requeue``. Readers take
any object with Optuna's ``FrozenTrial`` shape (``state``, ``user_attrs``, ``params``, ``value``);
nothing here touches a storage except ``requeue``.

Origins are stored as data, ``{"kind": "prediction"}`` or ``{"kind": "retry", "of": 3, "why":
"interrupted"}``; studies written before issue #13 stored a sentence ("retry of interrupted trial
3"), which :func:`origin_of` still reads.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

SETTINGS_ATTR = "tunekit.settings"
RECIPE_ATTR = "tunekit.recipe"
REASON_ATTR = "tunekit.reason"
TRACEBACK_ATTR = "tunekit.traceback"
PREDICTED_ATTR = "tunekit.predicted_family"  # on a family's queued predicted point
ORIGIN_ATTR = "tunekit.origin"  # why a trial was enqueued (see Origin)
WORKER_ATTR = "tunekit.worker"  # "host:pid" of the process running the trial
RERUN_ATTR = "tunekit.rerun"  # {"of": trial number, "seed": training seed} on a show --robust re-run
# {step: value} of the metric in a multi-objective study (search --also), where Optuna's Trial.report
# raises and intermediate values on pruned trials break TPE's multi-objective split (Optuna 5.1)
CURVE_ATTR = "tunekit.curve"
PROGRESS_ATTR = "tunekit.progress"  # {"step": s, "total": T}, updated every few seconds while running
# Optimizer steps the trial trained, its rung branches included (issue #9), and the largest budget
# it was judged at: a rung of search --fidelity sh, or the full budget when it completed.
STEPS_ATTR = "tunekit.steps_trained"
RUNG_ATTR = "tunekit.rung"
STABLE_ATTR = "tunekit.stable_state"  # WSD-S: {"artifact_id", "step"} of a WSD trial's pre-cooldown checkpoint
# search --from-study: {"study", "trial", "artifact_id", "step"}, the earlier study's kept state this trial continues
CONTINUES_ATTR = "tunekit.continues"
DROPPED_ATTR = "tunekit.dropped_families"  # on the study: {family: why} (the allocation of issue #14)

# Reasons for failures that are not the trial's fault: such trials are retried and not counted.
INTERRUPTED = "interrupted"
# A FAIL trial without a tunekit reason was failed by the heartbeat check: its process died
# (kill -9, the OOM killer, a lost machine) before it could record anything.
WORKER_DIED = "worker died (no heartbeat)"
# Several workers asked for the study's last trial at once; the later ones give theirs up at once.
SURPLUS = "not run: other workers had already started the study's last trials"

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass(frozen=True)
class Origin:
    """Why a trial was queued: the prior's prediction, or a retry of trial ``of`` (``why``)."""

    # "prediction", "retry", "rerun" (a top trial retrained with a new seed, show --robust), or
    # "allocation" (a family given the trial by the evidence so far, issue #14; ``why`` says which), or
    # "continuation" (trial ``of`` of an earlier study, continued from its stable phase: search --from-study)
    kind: str
    of: int | None = None
    why: str | None = None  # for a retry: "interrupted" or "worker died"

    def describe(self) -> str:
        """The sentence ``show`` prints (the one old studies stored)."""
        if self.kind == "prediction":
            return "prior prediction"
        if self.kind == "rerun":
            return f"re-run of trial {self.of} ({self.why})"
        if self.kind == "allocation":
            return f"allocated: {self.why}"
        if self.kind == "continuation":
            return f"continues trial {self.of}'s stable phase ({self.why})"
        if self.why == "interrupted":
            return f"retry of interrupted trial {self.of}"
        return f"retry of trial {self.of} ({self.why})"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


PREDICTION = Origin("prediction")


def retry_of(number: int, why: str) -> Origin:
    return Origin("retry", number, why)


def rerun_of(number: int, seed: int) -> Origin:
    """A re-run of trial ``number`` with training seed ``seed`` (``show --robust``, issue #12)."""
    return Origin("rerun", number, f"seed {seed}")


_OLD_RETRY = (
    (re.compile(r"retry of interrupted trial (\d+)$"), "interrupted"),
    (re.compile(r"retry of trial (\d+) \((.+)\)$"), None),
)


def origin_of(trial: Any) -> Origin | None:
    """Where the trial came from, or None for a trial the sampler drew."""
    raw = trial.user_attrs.get(ORIGIN_ATTR)
    if isinstance(raw, dict):
        return Origin(**raw)
    if raw == "prior prediction":
        return PREDICTION
    for pattern, why in _OLD_RETRY:
        match = pattern.match(raw or "")
        if match:
            return retry_of(int(match.group(1)), why or match.group(2))
    return None


def curve_of(trial: Any) -> dict[int, float]:
    """The metric's values by validation step: reported to Optuna, or (multi-objective) ``CURVE_ATTR``."""
    if trial.intermediate_values:
        return dict(trial.intermediate_values)
    return {int(step): value for step, value in (trial.user_attrs.get(CURVE_ATTR) or {}).items()}


def recipe_of(trial: Any) -> dict | None:
    return trial.user_attrs.get(RECIPE_ATTR)


def reason_of(trial: Any) -> str:
    """Why a trial was pruned or failed; a FAIL without a recorded reason lost its worker."""
    reason = trial.user_attrs.get(REASON_ATTR, "")
    if not reason and trial.state.name == "FAIL":
        return WORKER_DIED
    return reason


def counts_toward_target(trial: Any) -> bool:
    """Finished trials that count: complete, pruned, or failed in the user's code (OOM included).

    Interrupted trials and trials of dead workers (failed by the heartbeat check, with no tunekit
    reason) are retried instead, and surplus trials never ran, so none of those count.
    """
    state = trial.state.name
    if state in ("COMPLETE", "PRUNED"):
        return True
    return state == "FAIL" and trial.user_attrs.get(REASON_ATTR) not in (None, INTERRUPTED, SURPLUS)


def counted_trials(trials: list) -> int:
    return sum(counts_toward_target(t) for t in trials)


def is_surplus(trial: Any) -> bool:
    return trial.user_attrs.get(REASON_ATTR) == SURPLUS


def state_counts(trials: list) -> dict[str, int]:
    """Trials per state; surplus trials (given up before they started) are left out."""
    out = dict.fromkeys(STATES, 0)
    for t in trials:
        if not is_surplus(t):
            out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def progress_of(trial: Any) -> str:
    """``step 40/200 on host:1234`` for a running trial (what its worker last recorded)."""
    progress = trial.user_attrs.get(PROGRESS_ATTR) or {}
    parts = []
    if progress:
        parts.append(f"step {progress.get('step', 0)}/{progress.get('total', '?')}")
    if trial.user_attrs.get(WORKER_ATTR):
        parts.append(f"on {trial.user_attrs[WORKER_ATTR]}")
    return " ".join(parts)


def steps_of(trial: Any) -> int | None:
    """Optimizer steps a trial trained, branches included (None: recorded before issue #9)."""
    return trial.user_attrs.get(STEPS_ATTR)


def rung_of(trial: Any) -> int | None:
    """The largest budget a trial was judged at (a rung, or the full budget); None before issue #9."""
    return trial.user_attrs.get(RUNG_ATTR)


def total_steps(trials: list) -> int:
    """Optimizer steps the trials trained together (branches included): the study's compute."""
    return sum(steps_of(t) or 0 for t in trials)


def ranked(trials: list, minimize: bool) -> list:
    """The complete trials among ``trials``, best first."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    # values[0]: the metric, also in a multi-objective study (search --also), where t.value raises
    return sorted(complete, key=lambda t: t.values[0], reverse=not minimize)


def best_of(trials: list, minimize: bool) -> Any | None:
    """The best complete trial among ``trials``, or None when none has completed."""
    best = ranked(trials, minimize)
    return best[0] if best else None


def describe(recipe: dict | None) -> str:
    """A short label such as ``adamw/wsd lr=3.0e-03``."""
    if not recipe:
        return "-"
    opt, sched = recipe["optimizer"], recipe["schedule"]
    return f"{opt['name']}/{sched['name']} lr={opt.get('lr', float('nan')):.2e}"


def requeue(study: Any, trial: Any, origin: Origin, system_attrs: dict | None = None) -> None:
    """Queue ``trial``'s parameters again as a WAITING trial marked with ``origin``.

    The only place tunekit adds a trial by hand: interrupted trials (``resume`` retries them
    first) and dead workers' trials (the heartbeat callback) both come back through here. The
    retry stays what the trial was: a family's predicted point (never pruned), or the continuation
    of an earlier study's stable phase.
    """
    import optuna

    carried = {k: trial.user_attrs[k] for k in (PREDICTED_ATTR, CONTINUES_ATTR) if k in trial.user_attrs}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={ORIGIN_ATTR: origin.to_dict(), **carried},
            system_attrs=system_attrs or {},
        )
    )
