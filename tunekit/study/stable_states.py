"""WSD-S (issue #9): finished WSD trials' stable-phase checkpoints, kept in the study's Optuna artifact store.

The store is Optuna's ``FileSystemArtifactStore`` in a folder next to the SQLite file
(``tunekit.db`` -> ``tunekit.db.artifacts/``); the trial records the artifact and the step it
was saved at (``records.STABLE_ATTR``). A study on a server storage keeps none: there is no
folder every worker is known to share.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tunekit.study.records import STABLE_ATTR
from tunekit.study.storage import sqlite_path


def artifact_folder(url: str) -> Path | None:
    """Where a study at ``url`` keeps its artifacts, or None when it keeps none (not a SQLite file)."""
    path = sqlite_path(url)
    return None if path is None else path.with_name(path.name + ".artifacts")


# A checkpoint is the size of the model and its optimizer state: keep those of the best few WSD
# trials only, so a long study of a large model does not fill the disk (the best is what
# `tunekit export` + `tunekit train --max-steps` continue).
KEEP_BEST = 3


def keep_stable_state(url: str, study: Any, trial: Any, checkpoint: Path, step: int, value: float) -> None:
    """Upload ``checkpoint`` (of ``step``) for ``trial``, about to complete with ``value``, if it is
    among the ``KEEP_BEST`` best kept so far; remove the checkpoint it pushes out of them."""
    import optuna

    folder = artifact_folder(url)
    if folder is None:
        return
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1.0  # the metric
    kept = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    kept = sorted((sign * t.values[0], t.number, t.user_attrs[STABLE_ATTR]["artifact_id"]) for t in kept if _kept(t))
    if len(kept) >= KEEP_BEST and sign * value >= kept[KEEP_BEST - 1][0]:
        return
    folder.mkdir(exist_ok=True)
    store = optuna.artifacts.FileSystemArtifactStore(str(folder))
    artifact = optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(checkpoint), study_or_trial=trial)
    trial.set_user_attr(STABLE_ATTR, {"artifact_id": artifact, "step": step})
    for _, _, pushed_out in kept[KEEP_BEST - 1 :]:
        # Its trial's record stays, and download_state then finds no file. Trials pushed out
        # before (or by another worker) have none to remove.
        with contextlib.suppress(optuna.artifacts.exceptions.ArtifactNotFound):
            store.remove(pushed_out)


def _kept(trial: Any) -> bool:
    return bool(trial.user_attrs.get(STABLE_ATTR)) and trial.values is not None


def has_state(url: str, trial: Any) -> bool:
    """Whether ``trial``'s stable-phase checkpoint is still on disk (``KEEP_BEST`` removes the others')."""
    kept, folder = trial.user_attrs.get(STABLE_ATTR), artifact_folder(url)
    return bool(kept) and folder is not None and (folder / kept["artifact_id"]).is_file()


def download_state(url: str, kept: dict | None, into: Path) -> tuple[Path, int] | None:
    """The checkpoint ``kept`` (a ``STABLE_ATTR`` record) names, downloaded to ``into``, and its
    step; None when there is none, or its file was removed (``KEEP_BEST``)."""
    import optuna

    folder = artifact_folder(url)
    if not kept or folder is None or not folder.is_dir():
        return None
    store = optuna.artifacts.FileSystemArtifactStore(str(folder))
    target = into / f"stable-{kept['artifact_id']}.ckpt"
    target.unlink(missing_ok=True)  # Optuna refuses to download over a file
    try:
        optuna.artifacts.download_artifact(artifact_store=store, artifact_id=kept["artifact_id"], file_path=str(target))
    except optuna.artifacts.exceptions.ArtifactNotFound:
        return None  # removed when better trials took its place (KEEP_BEST)
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
    found = download_state(url, kept[0].user_attrs.get(STABLE_ATTR), into) if kept else None
    if found is None or decay_start(recipe.with_training(max_steps=max_steps)) < found[1]:
        return None
    return found[0], found[1], result["trial"]
