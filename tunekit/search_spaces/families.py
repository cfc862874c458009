"""What an optimizer family is: a frozen description, validated at construction.

A family is a frozen description (timm's ``_optim_factory`` style): the implementation it uses,
every hyperparameter it accepts with its default and source, which ones are searched, how its
learning rate relates to the centre LR that the scaling-law prior supplies, its parameter-grouping
rule, and what it needs from the training loop. The built-in families are in
``builtin_families.py``, the registry in ``catalog.py``; the optimizer itself is built by
``tunekit.training.optimization``. Nothing here imports torch: ``tunekit optimizers`` stays instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.params import FloatRange, Param

BETA_KEYS = ("beta1", "beta2", "beta3")
# Batch-size transfer rules: the exponent of the batch ratio kappa = B_new / B_old that multiplies the LR.
BATCH_RULES = {
    # Goyal et al. 2017, "Accurate, Large Minibatch SGD" (arXiv 1706.02677): LR proportional to batch.
    "linear": 1.0,
    # Malladi, Lyu, Panigrahi, Arora 2022, "On the SDEs and Scaling Rules for Adaptive Gradient
    # Algorithms" (arXiv 2205.10287): LR x sqrt(kappa) for Adam-like optimizers.
    "sqrt": 0.5,
}
LR_SPAN = 10.0  # an LR range spans centre / LR_SPAN to centre * LR_SPAN (the prior may widen it)


@dataclass(frozen=True)
class LRRange:
    """How one learning-rate hyperparameter is searched.

    The centre is ``centre_lr * ratio``, where ``centre_lr`` is the AdamW learning rate the prior
    predicts for this model and budget, or ``absolute`` when the family lives on its own scale
    (Muon's orthogonalised update). The range is ``[centre / span, centre * span]`` on a log scale;
    the space builder may widen ``span`` (``--prior none``).
    """

    ratio: float = 1.0
    span: float = LR_SPAN
    absolute: float | None = None

    def centre(self, centre_lr: float) -> float:
        return self.absolute if self.absolute is not None else centre_lr * self.ratio

    def range(self, centre_lr: float, span_scale: float = 1.0) -> FloatRange:
        c, s = self.centre(centre_lr), self.span * span_scale
        return FloatRange(c / s, c * s, log=True)


@dataclass(frozen=True)
class Alias:
    """A keyword argument set to ``factor`` times one of the family's hyperparameters.

    MARS's 1-D AdamW part runs at half the searched LR (AGI-Arena/MARS GPT-2 configs: ``lr_1d``
    3e-3 with ``learning_rate`` 6e-3): ``Alias("lr", 0.5)``.
    """

    source: str
    factor: float = 1.0


@dataclass(frozen=True)
class OptimizerFamily:
    """One optimizer family.

    Attributes:
        name: registry key, used in recipes and on the command line.
        description: one line for ``tunekit optimizers``.
        implementation: dotted path of the optimizer class, imported only when built.
        source: where the defaults come from (paper or reference code).
        defaults: every hyperparameter the family accepts, with its default. A recipe may set
            only these; anything else is rejected.
        lr_params: the learning-rate hyperparameters and how each is centred (see ``LRRange``).
        space: the other searched hyperparameters. ``beta1``/``beta2``/``beta3`` are folded into
            the ``betas`` tuple.
        grouping: name of the parameter-grouping rule (``tunekit.training.param_groups.GROUPING_RULES``).
        schedule_free: the optimizer owns warmup and averaging: the schedule is ``none``, its
            ``warmup_steps`` is set at build time from the schedule's ``warmup_fraction`` (so it
            scales with the budget like every other warmup), and it must be switched with
            ``.train()``/``.eval()`` wherever the model is.
        fixed: keyword arguments always passed to the class and not exposed (e.g. nesterov).
        in_default_search: searched when ``--optimizers`` is not given. The default set is small so
            that a budget of a few dozen trials tunes each family instead of touching each once.
        aliases: keyword arguments derived from one of the family's hyperparameters (``Alias``;
            MARS's 1-D AdamW part runs at half the searched LR: ``{"lr_1d": Alias("lr", 0.5)}``).
        budget_fractions: keyword arguments set from the trial's step budget, as a fraction of
            ``max_steps`` (AdEMAMix warms alpha and beta3 up over the whole run:
            ``{"t_alpha_beta3": 1.0}``). A family with any needs ``max_steps`` when built.
        batch_rule: how the LR moves with the batch size (``BATCH_RULES``): ``sqrt`` for Adam-like
            families, ``linear`` for SGD-like ones.
        budget_half_lives: hyperparameters that set a beta from the trial's step budget, mapped to
            that beta: ``{"beta3_half_life_fraction": "beta3"}`` makes beta3's half-life
            ``ln 0.5 / ln beta3`` that fraction of ``max_steps`` (issue #10). The fraction's default
            is None, which keeps the beta as written (recipes from before issue #10). A beta set this
            way is never below beta1 (the slow momentum EMA is never faster than the fast one).
        decay_timescale: the weight decay is decoupled (``p *= 1 - lr * wd``), so its predicted
            point follows the timescale rule tau = 1 / (lr * wd) (``centring.py``, issue #14);
            False for L2 decay added to the gradient (SGD), which keeps its default.
    """

    name: str
    description: str
    implementation: str
    source: str
    defaults: Mapping[str, Any]
    lr_params: Mapping[str, LRRange] = field(default_factory=lambda: {"lr": LRRange()})
    space: Mapping[str, Param] = field(default_factory=dict)
    grouping: str = "decay_matrices"
    schedule_free: bool = False
    fixed: Mapping[str, Any] = field(default_factory=dict)
    in_default_search: bool = False
    aliases: Mapping[str, Alias] = field(default_factory=dict)
    budget_fractions: Mapping[str, float] = field(default_factory=dict)
    budget_half_lives: Mapping[str, str] = field(default_factory=dict)
    batch_rule: str = "sqrt"
    decay_timescale: bool = True

    def __post_init__(self) -> None:
        accepted = set(self.defaults) | set(BETA_KEYS if "betas" in self.defaults else ())
        unknown = (set(self.space) | set(self.lr_params)) - accepted
        if unknown:
            raise ValueError(f"family {self.name}: searched {sorted(unknown)} not in its defaults")
        if {a.source for a in self.aliases.values()} - set(self.defaults):
            raise ValueError(f"family {self.name}: aliases name hyperparameters not in its defaults")
        derived = [*self.fixed, *self.aliases, *self.budget_fractions]
        if len(set(derived)) < len(derived) or set(derived) & set(self.defaults):
            raise ValueError(f"family {self.name}: fixed, aliases and budget_fractions must not overlap the defaults")

    @property
    def lr_ratio(self) -> float | None:
        """The main LR relative to AdamW's, or None when it is on its own scale."""
        main = self.lr_params.get("lr", LRRange())
        return None if main.absolute is not None else main.ratio

    def at_batch(self, values: Mapping[str, Any], kappa: float) -> dict:
        """Searched ``values`` chosen at the default batch, moved to a batch ``kappa`` times as large.

        Each LR on the AdamW scale is multiplied by ``kappa ** BATCH_RULES[batch_rule]`` (an LR on
        its own scale, Muon's, is left alone), and ``beta2`` keeps its half-life in samples:
        ``beta2 ** kappa`` (Marek, Lotfi, Somasundaram, Wilson, Goldblum 2025, "Small Batch Size
        Training for Language Models", arXiv 2507.07101, §2: hold the half-life fixed in tokens).
        """
        out = dict(values)
        factor = kappa ** BATCH_RULES[self.batch_rule]
        for hp, lr_range in self.lr_params.items():
            if hp in out and lr_range.absolute is None:
                out[hp] = out[hp] * factor
        if "beta2" in out:
            out["beta2"] = out["beta2"] ** kappa
        return out

    @property
    def needs_budget(self) -> bool:
        """The optimizer takes arguments derived from the trial's ``max_steps``."""
        return bool(self.budget_fractions or self.budget_half_lives)

    def resolve(self, values: Mapping[str, Any]) -> dict:
        """Full hyperparameters: defaults overridden by ``values`` (betas folded).

        Raises:
            BadInput: a key the family does not accept; the message lists the valid ones.
        """
        hparams = {k: list(v) if isinstance(v, tuple) else v for k, v in self.defaults.items()}
        for key, value in values.items():
            if key in BETA_KEYS and "betas" in hparams:
                index = BETA_KEYS.index(key)
                if index >= len(hparams["betas"]):
                    raise BadInput(
                        f"optimizer '{self.name}' has {len(hparams['betas'])} betas; '{key}' does not exist."
                    )
                _check_type(self.name, key, value, hparams["betas"][index])
                hparams["betas"][index] = value
            elif key in hparams:
                _check_type(self.name, key, value, hparams[key])
                hparams[key] = list(value) if isinstance(value, tuple) else value
            else:
                raise BadInput(
                    f"optimizer '{self.name}' has no hyperparameter '{key}'; valid: {', '.join(sorted(hparams))}."
                )
        return hparams


def _check_type(family: str, key: str, value: Any, default: Any) -> None:
    """A value must have its default's kind: a number for a number, a list of the same length, ..."""
    if isinstance(default, bool) or isinstance(default, str):
        ok = type(value) is type(default)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            ok = value.is_integer()
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple)) and len(value) == len(default)
        if ok:
            for v, d in zip(value, default, strict=True):
                _check_type(family, key, v, d)
    else:
        ok = True
    if not ok:
        raise BadInput(f"optimizer '{family}': {key} must be like its default {default!r}, got {value!r}.")
