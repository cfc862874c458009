"""Recipes: the versioned YAML description of one training run.

A recipe names registry entries only (an optimizer family, a schedule), never import paths, and
is read with ``yaml.safe_load``: loading one cannot run code. Format (``../shared/design.md``)::

    tunekit_recipe: 1
    optimizer: {name: adamw, lr: 3.0e-3, betas: [0.9, 0.95], weight_decay: 0.1}
    schedule: {name: wsd, warmup_fraction: 0.05, decay_fraction: 0.2, decay_shape: 1-sqrt}
    training: {max_steps: 2000, batch_size: 64, gradient_clip_val: 1.0, seed: 0, evaluations: 4}
    prior: {...}     # optional: the scaling-law prediction the search was centred on
    result: {...}    # optional: metric, value, study, trial
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput

RECIPE_VERSION = 1

# name -> (accepted types, required)
_TRAINING_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "max_steps": ((int,), True),
    "batch_size": ((int, type(None)), False),
    "gradient_clip_val": ((int, float, type(None)), False),
    "seed": ((int,), False),
    "evaluations": ((int,), False),
    "accumulate_grad_batches": ((int,), False),
}
TRAINING_DEFAULTS = {
    "batch_size": None,
    "gradient_clip_val": None,
    "seed": 0,
    "evaluations": 4,
    "accumulate_grad_batches": 1,
}


@dataclass
class Recipe:
    """One run: optimizer family and its hyperparameters, schedule, training settings.

    ``optimizer`` and ``schedule`` are complete (defaults filled in) once validated, so a recipe
    written today trains the same way after a default changes.
    """

    optimizer: dict
    schedule: dict
    training: dict
    prior: dict | None = None
    result: dict | None = None

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "recipe") -> Recipe:
        """Validate and complete a recipe read from YAML or built by the search space.

        Raises:
            BadInput: unknown version, missing section or field, wrong type, unknown optimizer,
                schedule or hyperparameter. The message names the field and what is valid.
        """
        from tunekit.search_spaces.optimizers import get_family
        from tunekit.search_spaces.schedules import get_schedule, resolve_params

        if not isinstance(data, dict):
            raise BadInput(f"{where} must be a YAML mapping with tunekit_recipe, optimizer, schedule and training.")
        version = data.get("tunekit_recipe")
        if version != RECIPE_VERSION:
            raise BadInput(
                f"{where} has tunekit_recipe: {version!r}; this tunekit reads version {RECIPE_VERSION} "
                "(add 'tunekit_recipe: 1', or upgrade tunekit)."
            )
        known = {"tunekit_recipe", "optimizer", "schedule", "training", "prior", "result"}
        unknown = set(data) - known
        if unknown:
            raise BadInput(f"{where} has unknown section(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}.")
        sections = {}
        for name in ("optimizer", "schedule", "training"):
            section = data.get(name)
            if not isinstance(section, dict):
                raise BadInput(f"{where} is missing the '{name}' section (a mapping).")
            sections[name] = dict(section)
        for name in ("optimizer", "schedule"):
            if not isinstance(sections[name].get("name"), str):
                raise BadInput(f"{where}: '{name}' needs a 'name' (a registry entry such as adamw or cosine).")

        opt = sections["optimizer"]
        family = get_family(opt.pop("name"))
        optimizer = {"name": family.name, **family.resolve(opt)}

        sched = sections["schedule"]
        schedule = get_schedule(sched.pop("name"))
        if family.schedule_free != schedule.schedule_free:
            raise BadInput(
                f"{where}: optimizer '{family.name}' cannot use schedule '{schedule.name}'; "
                + (
                    "schedule-free optimizers take schedule 'none'."
                    if family.schedule_free
                    else "schedule 'none' is only for schedule-free optimizers."
                )
            )
        schedule_cfg = {"name": schedule.name, **resolve_params(schedule.name, sched)}

        training = _validate_training(where, sections["training"])
        for name in ("prior", "result"):
            if data.get(name) is not None and not isinstance(data[name], dict):
                raise BadInput(f"{where}: '{name}' must be a mapping.")
        return cls(optimizer, schedule_cfg, training, data.get("prior"), data.get("result"))

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "tunekit_recipe": RECIPE_VERSION,
            "optimizer": _plain(self.optimizer),
            "schedule": _plain(self.schedule),
            "training": _plain(self.training),
        }
        if self.prior:
            out["prior"] = _plain(self.prior)
        if self.result:
            out["result"] = _plain(self.result)
        return out

    def to_yaml(self, header: str | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)
        if header:
            text = "".join(f"# {line}\n" for line in header.splitlines()) + text
        return text

    def configure_optimizers(self, model: Any) -> dict:
        """Optimizer and per-step LR scheduler for ``model``, in Lightning's return format.

        Usable from a user's own ``configure_optimizers``:
        ``return load_recipe("recipe.yaml").configure_optimizers(self)``.
        """
        from tunekit.training.optimization import configure_optimizers

        return configure_optimizers(self, model)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file.

    Raises:
        BadInput: missing file, invalid YAML, or an invalid recipe.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise BadInput(f"recipe file '{path}' does not exist; export one with 'tunekit export --study NAME -o {path}'.")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise BadInput(f"recipe file '{path}' is not valid YAML{at}; fix the syntax.") from None
    return Recipe.from_dict(data, where=f"recipe '{path}'")


def _validate_training(where: str, section: dict) -> dict:
    unknown = set(section) - set(_TRAINING_FIELDS)
    if unknown:
        raise BadInput(
            f"{where}: training has unknown field(s) {sorted(unknown)}; valid: {', '.join(_TRAINING_FIELDS)}."
        )
    out = {}
    for key, (types, required) in _TRAINING_FIELDS.items():
        if key not in section:
            if required:
                raise BadInput(f"{where}: training.{key} is missing; give it as an integer.")
            out[key] = TRAINING_DEFAULTS[key]
            continue
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise BadInput(f"{where}: training.{key} must be {names}, got {value!r}.")
        out[key] = value
    for key in ("max_steps", "evaluations", "accumulate_grad_batches"):
        if out[key] < 1:
            raise BadInput(f"{where}: training.{key} must be at least 1, got {out[key]}.")
    if out["batch_size"] is not None and out["batch_size"] < 1:
        raise BadInput(f"{where}: training.batch_size must be at least 1, got {out['batch_size']}.")
    clip = out["gradient_clip_val"]
    if clip is not None and (clip < 0 or not math.isfinite(clip)):
        raise BadInput(f"{where}: training.gradient_clip_val must be a non-negative number or null, got {clip}.")
    return out


def _plain(value: Any) -> Any:
    """Python scalars and lists only, so safe_dump writes plain YAML (1.0e-05 floats read back as floats)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy / torch scalars
    return value
