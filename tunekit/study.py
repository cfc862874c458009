"""A tunekit study: an Optuna study plus the settings that let ``resume`` rebuild everything.

The settings (script, metric, direction, budget, space, prior, trial target) live in the study's
user attributes, and each trial carries its full recipe, its outcome reason and, when it failed,
the traceback. Nothing outside the database is needed to resume, show or export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.space import SpaceConfig
from tunekit.storage import load_existing_study, study_names
from tunekit.training.script import ScriptSpec

SETTINGS_ATTR = "tunekit.settings"
RECIPE_ATTR = "tunekit.recipe"
REASON_ATTR = "tunekit.reason"
TRACEBACK_ATTR = "tunekit.traceback"
PREDICTED_ATTR = "tunekit.predicted_family"  # on a family's queued predicted point
ORIGIN_ATTR = "tunekit.origin"  # why a trial was enqueued: "prior prediction", "retry of N"
WORKER_ATTR = "tunekit.worker"  # "host:pid" of the process running the trial
PROGRESS_ATTR = "tunekit.progress"  # {"step": s, "total": T}, updated every few seconds while running
SETTINGS_VERSION = 1

# Reasons for failures that are not the trial's fault: such trials are retried and not counted.
INTERRUPTED = "interrupted"
# A FAIL trial without a tunekit reason was failed by the heartbeat check: its process died
# (kill -9, the OOM killer, a lost machine) before it could record anything.
WORKER_DIED = "worker died (no heartbeat)"
# Several workers asked for the study's last trial at once; the later ones give theirs up at once.
SURPLUS = "not run: other workers had already started the study's last trials"


@dataclass
class StudySettings:
    """What a study was created with."""

    script: ScriptSpec
    metric: str
    direction: str
    space: SpaceConfig
    prior: dict
    target_trials: int | None = None

    def to_dict(self) -> dict:
        return {
            "version": SETTINGS_VERSION,
            "script": self.script.to_dict(),
            "metric": self.metric,
            "direction": self.direction,
            "space": self.space.to_dict(),
            "prior": self.prior,
            "target_trials": self.target_trials,
        }

    @classmethod
    def from_study(cls, study: Any) -> StudySettings:
        data = study.user_attrs.get(SETTINGS_ATTR)
        if not isinstance(data, dict):
            raise BadInput(
                f"study '{study.study_name}' was not created by tunekit (no settings stored); use another --study."
            )
        if data.get("version") != SETTINGS_VERSION:
            raise BadInput(f"study '{study.study_name}' was written by another tunekit version; upgrade tunekit.")
        return cls(
            ScriptSpec.from_dict(data["script"]),
            data["metric"],
            data["direction"],
            SpaceConfig.from_dict(data["space"]),
            data["prior"],
            data.get("target_trials"),
        )

    def save(self, study: Any) -> None:
        study.set_user_attr(SETTINGS_ATTR, self.to_dict())

    def comparable(self) -> dict:
        """The settings that make trials comparable; a continued study must keep them."""
        space = self.space.to_dict()
        return {
            "script": self.script.path,
            "--model": self.script.model,
            "--data": self.script.data,
            "--model-arg": self.script.model_args,
            "--data-arg": self.script.data_args,
            "--metric": self.metric,
            "--direction": self.direction,
            "--max-steps": space["max_steps"],
            "--optimizers": space["optimizers"],
            "--schedules": space["schedules"],
            "--space": space["overrides"],
            "--seed": space["seed"],
            "--evaluations": space["evaluations"],
            "--prior": self.prior.get("law"),
        }


def create_or_continue(storage: Any, name: str, settings: StudySettings, given: set[str]) -> tuple[Any, StudySettings]:
    """Create the study, or continue the existing one when its settings agree.

    Args:
        given: the options the user typed (``--max-steps``, ...); only those are compared with an
            existing study, so ``tunekit search script.py`` continues whatever it started with.

    Raises:
        BadInput: the study exists and a given option disagrees with what it was created with.
    """
    import optuna

    if name not in study_names(storage):
        try:
            study = optuna.create_study(storage=storage, study_name=name, direction=settings.direction)
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another worker created it a moment ago: continue it below
        else:
            settings.save(study)
            return study, settings
    study = load_existing_study(storage, name)
    stored = _stored_settings(study)
    old, new = stored.comparable(), settings.comparable()
    for key in [k for k in old if (k in given or k == "script") and old[k] != new[k]]:
        raise BadInput(
            f"study '{name}' was created with {key} {_show(old[key])}, not {_show(new[key])}; "
            "run with the same setting to continue it, or choose a new --study name."
        )
    return study, stored


def _stored_settings(study: Any, wait: float = 5.0) -> StudySettings:
    """The study's settings, waiting briefly for a worker that created it an instant ago to store them."""
    import time

    deadline = time.monotonic() + wait
    while SETTINGS_ATTR not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.1)
    return StudySettings.from_study(study)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, dict) else str(value)


def open_study(storage: Any, name: str) -> tuple[Any, StudySettings]:
    study = load_existing_study(storage, name)
    return study, StudySettings.from_study(study)


# --- reading trials -------------------------------------------------------------------------


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


def is_surplus(trial: Any) -> bool:
    return trial.user_attrs.get(REASON_ATTR) == SURPLUS


def state_counts(trials: list) -> dict[str, int]:
    """Trials per state; surplus trials (given up before they started) are left out."""
    out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0}
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


def best_trial(study: Any) -> Any | None:
    """The best complete trial, or None when no trial has completed."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    return min(complete, key=lambda t: sign * t.value)


def ranked_trials(study: Any) -> list:
    """Complete trials, best first."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    return sorted(complete, key=lambda t: sign * t.value)


def describe(recipe: dict | None) -> str:
    """A short label such as ``adamw/wsd lr=3.0e-03``."""
    if not recipe:
        return "-"
    opt, sched = recipe["optimizer"], recipe["schedule"]
    return f"{opt['name']}/{sched['name']} lr={opt.get('lr', float('nan')):.2e}"
