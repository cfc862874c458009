"""The search space of a study, built from the optimizer and schedule registries.

Parameter names (Optuna's), all conditional on the family or schedule that owns them::

    optimizer                   categorical over the allowed families
    <family>.<hparam>           e.g. adamw.lr, adamw.beta2, sgd.momentum
    schedule                    categorical over the allowed schedules; absent for schedule-free
                                families, which always use ``none`` (no wasted invalid pairs)
    <schedule>.<param>          e.g. wsd.decay_fraction
    warmup_fraction             shared by every schedule (inside the optimizer for schedule-free)
    batch_size                  when the DataModule takes one
    gradient_clip_val           shared; absent for modules with manual optimization (issue #15)

Learning-rate ranges are centred on the prior's AdamW LR times each family's ratio. A space file
(YAML, ``{low, high, log}`` or ``{choices}`` per name) replaces any parameter's range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.recipes import OptimizerSection, Recipe, ScheduleSection, TrainingSection
from tunekit.search_spaces.catalog import get_family, get_schedule, names_of
from tunekit.search_spaces.centring import Centred, weight_decay_centre
from tunekit.search_spaces.params import Choice, FloatRange, Param, param_from_yaml
from tunekit.search_spaces.schedules import WARMUP_SPACE
from tunekit.yaml_files import read_yaml

GRADIENT_CLIP = Choice((0.0, 1.0))


@dataclass
class SpaceConfig:
    """Everything that defines a study's space; stored in the study so ``resume`` rebuilds it."""

    optimizers: list[str]
    schedules: list[str]
    centre_lr: float
    max_steps: int
    span_scale: float = 1.0
    batch_sizes: list[int] | None = None
    overrides: dict = field(default_factory=dict)
    seed: int = 0
    evaluations: int = 4
    accumulate_grad_batches: int = 1
    manual_optimization: bool = False  # the module optimizes manually: no gradient clipping (issue #15)
    # The batch max_steps is counted at; with it, a trial at batch B runs max_steps * default / B
    # steps, so every batch size sees the same samples (issue #10). None (studies from before): equal steps.
    default_batch_size: int | None = None
    budget_samples: int | None = None  # max_steps * default_batch_size, recorded for the reader
    # Issue #14: the predicted point's batch (None: the default) and its weight decay from the AdamW
    # timescale rule, tau as this multiple of max_steps (None, studies from before: family defaults).
    centre_batch_size: int | None = None
    decay_tau_fraction: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SpaceConfig:
        return cls(**d)


def parse_names(text: str | None, kind: str) -> list[str] | None:
    """``"a,b"`` to ``["a", "b"]``, each checked against its registry (unknown names list the valid ones)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BadInput(f"--{kind} is empty; give a comma-separated list such as adamw,sgd.")
    registry = names_of(kind)
    for name in names:
        registry.lookup(name)
    return names


def load_space_file(path: str | Path) -> dict:
    """Read a space file: a mapping of parameter name to ``{low, high, log}`` or ``{choices}``.

    Raises:
        BadInput: missing file, invalid YAML, or a malformed parameter.
    """
    data = read_yaml(
        path,
        "space file",
        "pass a YAML file of name: {low, high, log} entries",
        syntax_hint="fix the syntax",
        at_line=False,
    )
    if not isinstance(data, dict):
        raise BadInput(
            f"space file '{path}' must be a mapping of parameter names to ranges, e.g. adamw.lr: {{low: 1.0e-4, high: 1.0e-2, log: true}}."
        )
    for name, spec in data.items():
        param_from_yaml(str(name), spec)
    return {str(k): v for k, v in data.items()}


class SearchSpace:
    """Samples recipes from an Optuna trial and names the study's first (predicted) point."""

    def __init__(self, config: SpaceConfig):
        self.config = config
        allowed = set(config.schedules)
        self.schedules = [get_schedule(n) for n in config.schedules if not get_schedule(n).schedule_free]
        # Schedule-free families take only 'none', and only they take it: pairs that make no sense
        # are left out of the space instead of being sampled and wasted.
        self.families = [
            f
            for f in (get_family(n) for n in config.optimizers)
            if (f.schedule_free and "none" in allowed) or (not f.schedule_free and self.schedules)
        ]
        if not self.families:
            raise BadInput(
                "no optimizer in --optimizers can use a schedule in --schedules: schedule-free optimizers "
                "need 'none', the others need one of wsd, cosine, linear, ...; widen one of the two lists."
            )
        self.params = self._build_params()
        unknown = set(config.overrides) - set(self.params)
        if unknown:
            raise BadInput(
                f"space overrides name unknown parameter(s) {sorted(unknown)}; valid: {', '.join(self.params)}."
            )
        for name, spec in config.overrides.items():
            self.params[name] = param_from_yaml(name, spec)

    def _build_params(self) -> dict[str, Param]:
        c = self.config
        params: dict[str, Param] = {"optimizer": Choice(tuple(f.name for f in self.families))}
        for fam in self.families:
            for hp, lr_range in fam.lr_params.items():
                params[f"{fam.name}.{hp}"] = lr_range.range(c.centre_lr, c.span_scale)
            for hp, spec in fam.space.items():
                params[f"{fam.name}.{hp}"] = spec
        if self.schedules:
            params["schedule"] = Choice(tuple(s.name for s in self.schedules))
            for sched in self.schedules:
                for name, spec in sched.space.items():
                    params[f"{sched.name}.{name}"] = spec
        params["warmup_fraction"] = WARMUP_SPACE
        if c.batch_sizes:
            params["batch_size"] = Choice(tuple(c.batch_sizes))
        if not c.manual_optimization:  # Lightning clips only in automatic optimization
            params["gradient_clip_val"] = GRADIENT_CLIP
        return params

    def _suggest(self, trial: Any, name: str) -> Any:
        return self.params[name].suggest(trial, name)

    def sample(self, trial: Any) -> Recipe:
        """Draw one recipe. Only the chosen family's and schedule's parameters are suggested."""
        family = get_family(self._suggest(trial, "optimizer"))
        opt = {hp: self._suggest(trial, f"{family.name}.{hp}") for hp in (*family.lr_params, *family.space)}
        if family.schedule_free:
            schedule = get_schedule("none")
        else:
            schedule = get_schedule(self._suggest(trial, "schedule"))
        sched = {name: self._suggest(trial, f"{schedule.name}.{name}") for name in schedule.space}
        sched["warmup_fraction"] = self._suggest(trial, "warmup_fraction")
        batch = self._suggest(trial, "batch_size") if "batch_size" in self.params else None
        steps, samples = self.config.max_steps, None
        default = self.config.default_batch_size
        if batch is not None and default:
            # Equal samples across batch sizes (issue #10): steps scale as 1/batch, the schedule follows
            # the trial's own steps, and the sampled LR and beta2 (chosen at the default batch) move
            # by the family's transfer rule.
            samples = self.config.max_steps * default
            steps = max(1, round(samples / batch))
            opt = family.at_batch(opt, batch / default)
        training = TrainingSection(
            max_steps=steps,
            samples=samples,
            batch_size=batch,
            gradient_clip_val=self._suggest(trial, "gradient_clip_val") if "gradient_clip_val" in self.params else None,
            seed=self.config.seed,
            evaluations=self.config.evaluations,
            accumulate_grad_batches=self.config.accumulate_grad_batches,
            manual_optimization=self.config.manual_optimization,
        )
        return Recipe(OptimizerSection(family.name, opt), ScheduleSection(schedule.name, sched), training)

    def predicted_point(self, default_batch_size: int | None, family_name: str | None = None) -> dict:
        """Optuna params for the prior's prediction: a family (default: the first) at its centre LR and defaults.

        Values outside a (user-narrowed) range are left out, so Optuna samples them instead.
        """
        family = get_family(family_name) if family_name else self.families[0]
        point: dict[str, Any] = {"optimizer": family.name}
        for hp, lr_range in family.lr_params.items():
            point[f"{family.name}.{hp}"] = lr_range.centre(self.config.centre_lr)
        resolved = family.resolve({})
        for hp in family.space:
            value = resolved[hp] if hp in resolved else resolved["betas"][int(hp[-1]) - 1]
            point[f"{family.name}.{hp}"] = value
        decay = self.weight_decay_centre(family.name)
        if decay is not None:
            point[f"{family.name}.weight_decay"] = decay.value
        if not family.schedule_free:
            preferred = [s for s in self.schedules if s.name == "wsd"] or self.schedules
            schedule = preferred[0]
            point["schedule"] = schedule.name
            for name in schedule.space:
                point[f"{schedule.name}.{name}"] = schedule.defaults[name]
        else:
            schedule = get_schedule("none")
        point["warmup_fraction"] = schedule.defaults["warmup_fraction"]
        if "batch_size" in self.params and default_batch_size is not None:
            point["batch_size"] = self.config.centre_batch_size or default_batch_size
        point["gradient_clip_val"] = 1.0
        return {k: v for k, v in point.items() if k in self.params and self.params[k].contains(v)}

    def weight_decay_centre(self, family_name: str) -> Centred | None:
        """The family's predicted weight decay by the timescale rule (None: it keeps its default)."""
        family, c = get_family(family_name), self.config
        param = self.params.get(f"{family.name}.weight_decay")
        if not (c.decay_tau_fraction and family.decay_timescale and isinstance(param, FloatRange)):
            return None
        lr = family.lr_params["lr"].centre(c.centre_lr)
        return weight_decay_centre(lr, c.max_steps, param, c.decay_tau_fraction)

    def first_recipe(self, default_batch_size: int | None) -> Recipe:
        """The recipe of the study's first trial (the predicted point): what the pre-study check runs.

        A parameter the point leaves out (a narrowed range that excludes the prediction) takes its
        range's low end or first choice; ``gradient_clip_val`` takes its largest choice, so the check
        runs with clipping on when the space can turn it on.
        """
        point = self.predicted_point(default_batch_size)
        clip = self.params.get("gradient_clip_val")
        if isinstance(clip, Choice):
            point["gradient_clip_val"] = max(clip.choices)
        return self.sample(_FixedPoint(point))


class _FixedPoint:
    """The three ``suggest_*`` calls of an Optuna trial, answering from a dict of values."""

    def __init__(self, values: dict):
        self.values = values

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return self.values.get(name, low)

    suggest_int = suggest_float

    def suggest_categorical(self, name: str, choices: list) -> Any:
        return self.values.get(name, choices[0])
