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
ORIGIN_ATTR = "tunekit.origin"  # why a trial was enqueued: "prior prediction", "retry of N"
SETTINGS_VERSION = 1

# Reasons for failures that are not the trial's fault: such trials are retried and not counted.
INTERRUPTED = "interrupted"


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

    if name in study_names(storage):
        study = load_existing_study(storage, name)
        stored = StudySettings.from_study(study)
        old, new = stored.comparable(), settings.comparable()
        for key in [k for k in old if (k in given or k == "script") and old[k] != new[k]]:
            raise BadInput(
                f"study '{name}' was created with {key} {_show(old[key])}, not {_show(new[key])}; "
                "run with the same setting to continue it, or choose a new --study name."
            )
        return study, stored
    study = optuna.create_study(storage=storage, study_name=name, direction=settings.direction)
    settings.save(study)
    return study, settings


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
    return trial.user_attrs.get(REASON_ATTR, "")


def counts_toward_target(trial: Any) -> bool:
    """Finished trials that count: complete, pruned, or failed in the user's code.

    Interrupted trials and trials of dead workers (failed by the heartbeat check, with no tunekit
    reason) are retried instead, so they do not count.
    """
    state = trial.state.name
    if state in ("COMPLETE", "PRUNED"):
        return True
    return state == "FAIL" and REASON_ATTR in trial.user_attrs and reason_of(trial) != INTERRUPTED


def state_counts(trials: list) -> dict[str, int]:
    out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0}
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


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
