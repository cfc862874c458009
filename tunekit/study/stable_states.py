"""WSD-S (issue #9): finished WSD trials' stable-phase checkpoints, kept in the study's Optuna artifact store.

The store is Optuna's ``FileSystemArtifactStore`` in a folder next to the SQLite file
(``tunekit.db`` -> ``tunekit.db.artifacts/``); the trial records the artifact and the step it
was saved at (``records.STABLE_ATTR``). A study on a server storage keeps none: there is no
folder every worker is known to share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunekit.study.records import STABLE_ATTR
from tunekit.study.storage import sqlite_path


def artifact_folder(url: str) -> Path | None:
    """Where a study at ``url`` keeps its artifacts, or None when it keeps none (not a SQLite file)."""
    path = sqlite_path(url)
    return None if path is None else path.with_name(path.name + ".artifacts")


def keep_stable_state(url: str, trial: Any, checkpoint: Path, step: int) -> None:
    """Upload ``checkpoint`` (of ``step``) to the study's artifact store and record it on ``trial``."""
    import optuna

    folder = artifact_folder(url)
    if folder is None:
        return
    folder.mkdir(exist_ok=True)
    store = optuna.artifacts.FileSystemArtifactStore(str(folder))
    artifact = optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(checkpoint), study_or_trial=trial)
    trial.set_user_attr(STABLE_ATTR, {"artifact_id": artifact, "step": step})


def fetch_stable_state(url: str, trial: Any, into: Path) -> tuple[Path, int] | None:
    """The trial's stable-phase checkpoint, downloaded to ``into``, and its step; None when it has none."""
    import optuna

    kept, folder = trial.user_attrs.get(STABLE_ATTR), artifact_folder(url)
    if not kept or folder is None or not folder.is_dir():
        return None
    store = optuna.artifacts.FileSystemArtifactStore(str(folder))
    target = into / "stable.ckpt"
    optuna.artifacts.download_artifact(artifact_store=store, artifact_id=kept["artifact_id"], file_path=str(target))
    return target, kept["step"]


def stable_start(url: str, recipe: Any, max_steps: int, into: Path) -> tuple[Path, int, int] | None:
    """For ``tunekit train RECIPE --max-steps N``: the checkpoint, step and trial number to continue from.

    None unless ``recipe`` came from a trial of a study in ``url`` that kept its stable phase, and
    the longer run's own stable phase reaches past that step.
    """
    from tunekit.study.storage import load_existing_study, open_storage, study_names
    from tunekit.training.rung_plan import decay_start

    result, folder = recipe.result or {}, artifact_folder(url)
    if decay_start(recipe) is None or max_steps <= recipe.training.max_steps or "trial" not in result:
        return None
    if folder is None or not folder.is_dir():
        return None  # no study here kept a stable phase (and the storage is not created by looking)
    storage = open_storage(url)
    if result.get("study") not in study_names(storage):
        return None
    trials = load_existing_study(storage, result["study"]).get_trials(deepcopy=False)
    kept = [t for t in trials if t.number == result["trial"]]
    found = fetch_stable_state(url, kept[0], into) if kept else None
    if found is None or decay_start(recipe.with_training(max_steps=max_steps)) < found[1]:
        return None
    return found[0], found[1], result["trial"]
