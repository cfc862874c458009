"""``search --from-study EARLIER``: a study at a larger budget continues EARLIER's kept stable phases.

WSD-S across studies (issue #9). A WSD run's state at the start of its cooldown is the state of
any longer WSD run of the same recipe at that step, apart from its warmup (Hägele et al. 2024), and
the best WSD trials of a study keep that state (``stable_states``). So a later study of the same
script at a larger ``--max-steps`` queues those trials' parameters first; each such trial restores
its checkpoint, re-plans the schedule for the new budget and trains only from that step
(``training.stable_resume``), saving the steps the earlier study already trained. The trial
records what it continues (``records.CONTINUES_ATTR``) and only the steps it trained.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.study.records import CONTINUES_ATTR, ORIGIN_ATTR, STABLE_ATTR, Origin, origin_of, ranked
from tunekit.study.stable_states import has_state
from tunekit.study.storage import peek_storage, study_names
from tunekit.training.script import ScriptSpec


@dataclass(frozen=True)
class Continuation:
    """One kept trial of the earlier study, as the new study queues it."""

    params: dict  # the trial's Optuna parameters
    record: dict  # CONTINUES_ATTR: {"study", "trial", "artifact_id", "step"}

    @property
    def origin(self) -> Origin:
        r = self.record
        return Origin("continuation", r["trial"], f"study {r['study']}, from step {r['step']}")


def continuations(
    url: str, earlier: str | None, name: str, script: ScriptSpec, space: Any, devices: int = 1
) -> tuple[list[Continuation], list[str]]:
    """The kept trials of study ``earlier`` that study ``name`` (of ``script`` and the ``SpaceConfig``
    ``space``, trials on ``devices``) can continue, best first, and a warning for each kept trial
    outside that space; nothing for no ``earlier``. Reads the storage without writing to it.

    Raises:
        BadInput: ``earlier`` is ``name``, is not in ``url``, trained another model or data, has a
            budget that is not smaller, or kept no state this study can continue; ``devices`` > 1.
    """
    import optuna

    from tunekit.search_spaces.space import SearchSpace
    from tunekit.study.settings import StudySettings

    if earlier is None:
        return [], []
    if devices > 1:
        raise BadInput("--from-study continues its checkpoints on one device; run it with --devices 1.")
    if earlier == name:
        raise BadInput(f"--from-study names the study being run ('{name}'); give the earlier study's name.")
    storage = peek_storage(url)
    if storage is None or earlier not in study_names(storage):
        raise BadInput(f"no study '{earlier}' in {url} to continue; check --from-study and --storage.")
    try:
        study = optuna.load_study(study_name=earlier, storage=storage)
        before = StudySettings.from_study(study)
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    finally:
        storage.engine.dispose()
    if not _same_model(before.script, script):
        raise BadInput(
            f"study '{earlier}' trained {_label(before.script)}, not {_label(script)}; its checkpoints fit only its "
            "own model and data, so --from-study needs a study of the same script and arguments."
        )
    max_steps, params = space.max_steps, SearchSpace(space).params
    if before.space.max_steps >= max_steps:
        raise BadInput(
            f"study '{earlier}' trained {before.space.max_steps} steps per trial; --from-study continues it only at a "
            f"larger budget, so give --max-steps above {before.space.max_steps}."
        )
    kept = [t for t in ranked(trials, before.minimize) if has_state(url, t)]
    found, warnings = [], []
    for t in kept:
        outside = [f"{k} {v!r}" for k, v in t.params.items() if k not in params or not params[k].contains(v)]
        if outside:
            warnings.append(
                f"trial {t.number} of study '{earlier}' is outside this search space ({', '.join(outside)}); "
                "it is not continued."
            )
            continue
        found.append(Continuation(dict(t.params), {"study": earlier, "trial": t.number, **t.user_attrs[STABLE_ATTR]}))
    if not found:
        why = "its kept trials lie outside this search space" if kept else "no completed WSD trial of it kept one"
        raise BadInput(
            f"study '{earlier}' has no stable-phase state to continue ({why}); run without --from-study, or name "
            "a study on this SQLite storage whose WSD trials completed."
        )
    return found, warnings


def continued_start(url: str, trial: Any, recipe: Any, into: Path | None) -> tuple[Path, int] | None:
    """The checkpoint (downloaded to ``into``) and step that ``trial``, of ``recipe``, continues from.

    None for a trial ``--from-study`` did not queue; also None, and said in the trial's origin
    (``show``), when its state cannot be used: removed since (``KEEP_BEST``), no ``into`` (a
    multi-device trial), or a decay that would start before the state's step.
    """
    from tunekit.study.stable_states import download_state
    from tunekit.training.rung_plan import decay_start

    continues = trial.user_attrs.get(CONTINUES_ATTR)
    if not continues:
        return None
    start = download_state(url, continues, into) if into is not None else None
    if start is not None:
        if (decay_start(recipe) or 0) >= start[1]:
            return start
        start[0].unlink()  # its decay would start before the state was saved
    origin = origin_of(trial) or Origin("continuation", continues["trial"], f"study {continues['study']}")
    why = f"{origin.why}; its state could not be used here, so it trained from step 0"
    trial.set_user_attr(ORIGIN_ATTR, replace(origin, why=why).to_dict())
    return None


def enqueue_continuations(study: Any, found: list[Continuation]) -> None:
    """Queue ``found`` in ``study`` (first, before any prediction), each once."""
    queued = {
        (r["study"], r["trial"]) for t in study.get_trials(deepcopy=False) if (r := t.user_attrs.get(CONTINUES_ATTR))
    }
    for c in found:
        if (c.record["study"], c.record["trial"]) not in queued:
            study.enqueue_trial(c.params, user_attrs={ORIGIN_ATTR: c.origin.to_dict(), CONTINUES_ATTR: c.record})


def _same_model(a: ScriptSpec, b: ScriptSpec) -> bool:
    def key(s: ScriptSpec) -> tuple:
        return Path(s.path).resolve(), s.model, s.data, s.model_args, s.data_args

    return key(a) == key(b)


def _label(spec: ScriptSpec) -> str:
    args = {**spec.model_args, **spec.data_args}
    return spec.path + (f" with {args}" if args else "")
