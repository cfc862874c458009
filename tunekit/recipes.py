"""Recipes: the versioned YAML description of one training run.

A recipe names registry entries only (an optimizer family, a schedule), never import paths, and
is read with ``yaml.safe_load``: loading one cannot run code. Format::

    tunekit_recipe: 1
    optimizer: {name: adamw, lr: 3.0e-3, betas: [0.9, 0.95], weight_decay: 0.1}
    schedule: {name: wsd, warmup_fraction: 0.05, decay_fraction: 0.2, decay_shape: 1-sqrt}
    training: {max_steps: 2000, batch_size: 64, gradient_clip_val: 1.0, seed: 0, evaluations: 4,
               devices: 2, strategy: ddp, precision: bf16-mixed,  # issue #11; absent: 1, auto, 32-true
               batch_size_per_device: 32, global_batch_size: 64}  # derived, written when not batch_size
    prior: {...}     # optional: the scaling-law prediction the search was centred on
    result: {...}    # optional: metric, value, study, trial
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.catalog import get_family, get_schedule
from tunekit.yaml_files import read_yaml

RECIPE_VERSION = 1
DEFAULT_PRECISION = "32-true"  # Lightning's default; recipes written before issue #11 trained with it
SECTIONS = ("tunekit_recipe", "optimizer", "schedule", "training", "prior", "result")


@dataclass(frozen=True)
class OptimizerSection:
    """The optimizer family and every one of its hyperparameters (defaults filled in)."""

    name: str
    hparams: Mapping[str, Any]

    def __post_init__(self) -> None:
        family = get_family(self.name)
        object.__setattr__(self, "name", family.name)
        object.__setattr__(self, "hparams", family.resolve(self.hparams))

    @property
    def lr(self) -> float:
        return self.hparams["lr"]

    def to_dict(self) -> dict:
        return {"name": self.name, **_plain(self.hparams)}


@dataclass(frozen=True)
class ScheduleSection:
    """The LR schedule and every one of its parameters (defaults filled in)."""

    name: str
    params: Mapping[str, Any]

    def __post_init__(self) -> None:
        schedule = get_schedule(self.name)
        object.__setattr__(self, "name", schedule.name)
        object.__setattr__(self, "params", schedule.resolve(self.params))

    def to_dict(self) -> dict:
        return {"name": self.name, **_plain(self.params)}


@dataclass(frozen=True)
class TrainingSection:
    """The budget and the loop settings. ``max_steps`` is the one budget: optimizer steps.

    Batch sizes (issue #11): ``batch_size`` is the DataModule's ``batch_size``, the samples of one
    forward/backward pass summed over all ``devices``; each device sees ``batch_size_per_device =
    batch_size / devices`` of them, and one optimizer step sees ``global_batch_size =
    batch_size_per_device x devices x accumulate_grad_batches``. So the same recipe on 1 or 8
    devices is the same experiment. ``devices``, ``strategy`` and ``precision`` are where the trial
    ran (Lightning's names), so ``tunekit train`` runs it the same way.
    """

    max_steps: int
    batch_size: int | None = None
    gradient_clip_val: float | None = None
    seed: int = 0
    evaluations: int = 4
    accumulate_grad_batches: int = 1
    # The module optimizes manually (issue #15): Lightning cannot clip its gradients, so
    # gradient_clip_val is null and not searched; written only when true.
    manual_optimization: bool = False
    devices: int = 1
    strategy: str = "auto"
    precision: str = DEFAULT_PRECISION
    # The sample budget the search gave every batch size (max_steps = samples / batch_size, issue
    # #10); None in recipes from before, and when the batch was not searched.
    samples: int | None = None

    def __post_init__(self) -> None:
        """Raises BadInput naming the field (``training.max_steps must be at least 1, got 0.``)."""
        for f in fields(self):
            value = getattr(self, f.name)
            types = _TRAINING_TYPES[f.name]
            if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise BadInput(f"training.{f.name} must be {names}, got {value!r}.")
        for key in ("max_steps", "evaluations", "accumulate_grad_batches", "devices"):
            if getattr(self, key) < 1:
                raise BadInput(f"training.{key} must be at least 1, got {getattr(self, key)}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise BadInput(f"training.batch_size must be at least 1, got {self.batch_size}.")
        if self.batch_size is not None and self.batch_size % self.devices:
            raise BadInput(
                f"training.batch_size {self.batch_size} does not split evenly over {self.devices} devices; "
                f"use a multiple of {self.devices}."
            )
        clip = self.gradient_clip_val
        if clip is not None and (clip < 0 or not math.isfinite(clip)):
            raise BadInput(f"training.gradient_clip_val must be a non-negative number or null, got {clip}.")
        if self.manual_optimization and clip:
            raise BadInput(
                "training.gradient_clip_val must be null with manual_optimization: true; Lightning clips "
                "gradients only in automatic optimization (clip in your training_step instead)."
            )

    @property
    def validation_interval(self) -> int:
        """Training batches between validations: ``evaluations`` evenly spaced points of the budget."""
        return max(1, self.max_steps // self.evaluations) * self.accumulate_grad_batches

    @property
    def batch_size_per_device(self) -> int | None:
        return None if self.batch_size is None else self.batch_size // self.devices

    @property
    def global_batch_size(self) -> int | None:
        """Samples per optimizer step over all devices and accumulated batches."""
        per = self.batch_size_per_device
        return None if per is None else per * self.devices * self.accumulate_grad_batches

    def to_dict(self) -> dict:
        """All fields; those of issues #10, #11 and #15 only where they are not the defaults, so a recipe of
        one device, automatic optimization and no sample budget reads as every recipe written before it (and old studies
        export unchanged)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.manual_optimization:
            del out["manual_optimization"]  # recipes of automatic modules read as they always did (issue #15)
        for name, default in DEVICE_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        if self.samples is None:
            del out["samples"]  # set only when the batch was searched at equal samples (issue #10)
        if self.global_batch_size != self.batch_size:
            out.update({name: getattr(self, name) for name in DERIVED_TRAINING})
        return out


DEVICE_DEFAULTS = {"devices": 1, "strategy": "auto", "precision": DEFAULT_PRECISION}
DERIVED_TRAINING = ("batch_size_per_device", "global_batch_size")  # written, checked on reading, never set

_TRAINING_TYPES: dict[str, tuple[type, ...]] = {
    "max_steps": (int,),
    "batch_size": (int, type(None)),
    "gradient_clip_val": (int, float, type(None)),
    "seed": (int,),
    "evaluations": (int,),
    "accumulate_grad_batches": (int,),
    "manual_optimization": (bool,),
    "devices": (int,),
    "strategy": (str,),
    "precision": (str,),
    "samples": (int, type(None)),
}


@dataclass(frozen=True)
class Recipe:
    """One run: optimizer family and its hyperparameters, schedule, training settings.

    Frozen and validated once, at construction (issue #13): ``optimizer`` and ``schedule`` are
    complete (defaults filled in), so a recipe written today trains the same way after a default
    changes. Change one with ``dataclasses.replace`` (``with_training(max_steps=...)``).

    Raises:
        BadInput: a schedule-free optimizer without schedule ``none``, or the reverse.
    """

    optimizer: OptimizerSection
    schedule: ScheduleSection
    training: TrainingSection
    prior: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        family, schedule = get_family(self.optimizer.name), get_schedule(self.schedule.name)
        if family.schedule_free != schedule.schedule_free:
            raise BadInput(
                f"optimizer '{family.name}' cannot use schedule '{schedule.name}'; "
                + (
                    "schedule-free optimizers take schedule 'none'."
                    if family.schedule_free
                    else "schedule 'none' is only for schedule-free optimizers."
                )
            )

    @property
    def schedule_free(self) -> bool:
        return get_family(self.optimizer.name).schedule_free

    def with_training(self, **changes: Any) -> Recipe:
        """This recipe with training fields replaced (validated again)."""
        return replace(self, training=replace(self.training, **changes))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "recipe") -> Recipe:
        """Validate and complete a recipe read from YAML or built by the search space.

        Raises:
            BadInput: unknown version, missing section or field, wrong type, unknown optimizer,
                schedule or hyperparameter. The message names the field and what is valid.
        """
        if not isinstance(data, dict):
            raise BadInput(f"{where} must be a YAML mapping with tunekit_recipe, optimizer, schedule and training.")
        version = data.get("tunekit_recipe")
        if version != RECIPE_VERSION:
            raise BadInput(
                f"{where} has tunekit_recipe: {version!r}; this tunekit reads version {RECIPE_VERSION} "
                f"(add 'tunekit_recipe: {RECIPE_VERSION}', or upgrade tunekit)."
            )
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise BadInput(f"{where} has unknown section(s) {sorted(unknown)}; valid: {', '.join(sorted(SECTIONS))}.")
        sections = {}
        for name in ("optimizer", "schedule", "training"):
            section = data.get(name)
            if not isinstance(section, dict):
                raise BadInput(f"{where} is missing the '{name}' section (a mapping).")
            sections[name] = dict(section)
        for name in ("optimizer", "schedule"):
            if not isinstance(sections[name].get("name"), str):
                raise BadInput(f"{where}: '{name}' needs a 'name' (a registry entry such as adamw or cosine).")
        opt, sched = sections["optimizer"], sections["schedule"]
        optimizer = OptimizerSection(opt.pop("name"), opt)
        schedule = ScheduleSection(sched.pop("name"), sched)
        training = _training(where, sections["training"])
        for name in ("prior", "result"):
            if data.get(name) is not None and not isinstance(data[name], dict):
                raise BadInput(f"{where}: '{name}' must be a mapping.")
        try:
            return cls(optimizer, schedule, training, data.get("prior"), data.get("result"))
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "tunekit_recipe": RECIPE_VERSION,
            "optimizer": self.optimizer.to_dict(),
            "schedule": self.schedule.to_dict(),
            "training": _plain(self.training.to_dict()),
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


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file.

    Raises:
        BadInput: missing file, invalid YAML, or an invalid recipe.
    """
    data = read_yaml(
        path, "recipe file", f"export one with 'tunekit export --study NAME -o {path}'", syntax_hint="fix the syntax"
    )
    return Recipe.from_dict(data, where=f"recipe '{path}'")


def _training(where: str, section: dict) -> TrainingSection:
    known = [f.name for f in fields(TrainingSection)]
    unknown = set(section) - set(known) - set(DERIVED_TRAINING)
    if unknown:
        raise BadInput(f"{where}: training has unknown field(s) {sorted(unknown)}; valid: {', '.join(known)}.")
    if "max_steps" not in section:
        raise BadInput(f"{where}: training.max_steps is missing; give it as an integer.")
    derived = {name: section.pop(name) for name in DERIVED_TRAINING if name in section}
    try:
        training = TrainingSection(**section)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    for name, value in derived.items():
        if value != getattr(training, name):
            raise BadInput(
                f"{where}: training.{name} is {value}, but batch_size, devices and accumulate_grad_batches give "
                f"{getattr(training, name)}; fix or delete training.{name}."
            )
    return training


def _plain(value: Any) -> Any:
    """Python scalars and lists only, so safe_dump writes plain YAML (1.0e-05 floats read back as floats)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy / torch scalars
    return value
