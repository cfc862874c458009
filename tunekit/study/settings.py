"""A tunekit study: an Optuna study plus the settings that let ``resume`` rebuild everything.

The settings (script, metric, direction, budget, space, prior, trial target) live in the study's
user attributes, and each trial carries its full recipe, its outcome reason and, when it failed,
the traceback. Nothing outside the database is needed to resume, show or export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunekit.errors import BadInput
from tunekit.recipes import DEFAULT_PRECISION
from tunekit.search_spaces.space import SpaceConfig
from tunekit.study.objectives import directions
from tunekit.study.records import SETTINGS_ATTR, best_of, ranked
from tunekit.study.storage import load_existing_study, peek_storage, study_names
from tunekit.training.script import ScriptSpec

SETTINGS_VERSION = 1

# The settings that make trials comparable; a continued study must keep them (names of
# StudySettings/SpaceConfig fields, not of CLI options: the CLI maps its options onto these).
COMPARABLE = (
    "script",
    "model",
    "data",
    "model_args",
    "data_args",
    "metric",
    "direction",
    "max_steps",
    "optimizers",
    "schedules",
    "overrides",
    "seed",
    "evaluations",
    "prior",
    "precision",  # changes the numbers; devices, strategy and accelerator change only where they are computed
    "also",
    "fidelity",  # issue #9: --fidelity, --min-steps, --eta decide which trials run to the end
    "min_steps",
    "eta",
    "budget_bound",
)


@dataclass
class StudySettings:
    """What a study was created with."""

    script: ScriptSpec
    metric: str
    direction: str
    space: SpaceConfig
    prior: dict
    target_trials: int | None = None
    run: dict = field(default_factory=dict)  # RunOptions.to_dict() (issue #11); {} in studies stored before it
    also: str | None = None  # the second objective of ``search --also`` (tunekit.study.objectives)
    fidelity: dict = field(default_factory=dict)  # Fidelity.to_dict() (issue #9); {} before it: full

    def to_dict(self) -> dict:
        return {
            "version": SETTINGS_VERSION,
            "script": self.script.to_dict(),
            "metric": self.metric,
            "direction": self.direction,
            "space": self.space.to_dict(),
            "prior": self.prior,
            "target_trials": self.target_trials,
            "run": self.run,
            **({"also": self.also} if self.also else {}),
            **({"fidelity": self.fidelity} if self.fidelity else {}),
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
            dict(data.get("run") or {}),
            data.get("also"),
            dict(data.get("fidelity") or {}),
        )

    def save(self, study: Any) -> None:
        study.set_user_attr(SETTINGS_ATTR, self.to_dict())

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"

    def comparable(self) -> dict:
        """The values of ``COMPARABLE`` for these settings."""
        space = self.space.to_dict()
        return {
            "script": self.script.path,
            "model": self.script.model,
            "data": self.script.data,
            "model_args": self.script.model_args,
            "data_args": self.script.data_args,
            "metric": self.metric,
            "direction": self.direction,
            **{key: space[key] for key in ("max_steps", "optimizers", "schedules", "overrides", "seed", "evaluations")},
            "prior": self.prior.get("law"),
            "precision": self.run.get("precision", DEFAULT_PRECISION),
            "also": self.also,
            "fidelity": self.fidelity.get("mode", "full"),
            "min_steps": self.fidelity.get("min_steps"),
            "eta": self.fidelity.get("eta", 3),
            "budget_bound": self.fidelity.get("budget_bound", "own-schedule"),  # sh studies from before the option
        }


def create_or_continue(
    storage: Any, name: str, settings: StudySettings, given: set[str], spell: Callable[[str], str] = str
) -> tuple[Any, StudySettings]:
    """Create the study, or continue the existing one when its settings agree.

    Args:
        given: the settings the user chose (names in ``COMPARABLE``); only those are compared with
            an existing study, so ``tunekit search script.py`` continues whatever it started with.
        spell: how a setting is named in the message (the CLI passes its option spelling).

    Raises:
        BadInput: the study exists and a given option disagrees with what it was created with.
    """
    import optuna

    if name not in study_names(storage):
        try:
            study = optuna.create_study(
                storage=storage, study_name=name, directions=directions(settings.direction, settings.also)
            )
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another worker created it a moment ago: continue it below
        else:
            settings.save(study)
            return study, settings
    study = load_existing_study(storage, name)
    stored = _stored_settings(study)
    old, new = stored.comparable(), settings.comparable()
    for key in [k for k in COMPARABLE if (k in given or k == "script") and old[k] != new[k]]:
        raise BadInput(
            f"study '{name}' was created with {spell(key)} {_show(old[key])}, not {_show(new[key])}; "
            "run with the same setting to continue it, or choose a new --study name."
        )
    return study, stored


def existing_settings(url: str, name: str) -> StudySettings | None:
    """The stored settings of study ``name`` at ``url``, read without writing anything
    (``storage.peek_storage``); None when there is no such tunekit study."""
    import optuna

    storage = peek_storage(url)
    if storage is None:
        return None
    try:
        if name not in study_names(storage):
            return None
        return StudySettings.from_study(optuna.load_study(study_name=name, storage=storage))
    except BadInput:
        return None  # not tunekit's, or another version's: create_or_continue says so
    finally:
        storage.engine.dispose()


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


def best_trial(study: Any) -> Any | None:
    """The study's best complete trial, or None when no trial has completed."""
    return best_of(study.get_trials(deepcopy=False), is_minimized(study))


def ranked_trials(study: Any) -> list:
    """The study's complete trials, best first."""
    return ranked(study.get_trials(deepcopy=False), is_minimized(study))


def is_minimized(study: Any) -> bool:
    return study.directions[0].name == "MINIMIZE"  # the metric's direction, also with --also
