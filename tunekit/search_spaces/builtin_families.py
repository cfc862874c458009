"""The built-in optimizer families, registered in small groups (timm style).

LR ratios are relative to the AdamW centre LR; each family's ``source`` names the paper and the
authors' code its ratio and defaults come from (the README's family table lists them; issue #10
re-checked them). Every family is backed by a maintained
implementation (torch.optim, pytorch_optimizer or the schedule_free authors' package); none is
written here.

Weight decay is decoupled (AdamW-style, ``p *= 1 - lr * wd``) wherever the implementation offers
it, so one ``weight_decay`` range means the same thing across the Adam-like families, and the
grouping rules give ndim < 2 parameters none. Families whose implementation also decays 1-D
parameters on its own (MARS's ``weight_decay_1d``) have that switched off in ``fixed``.
"""

from __future__ import annotations

from collections.abc import Callable

from tunekit.registry import Registry
from tunekit.search_spaces.families import Alias, LRRange, OptimizerFamily
from tunekit.search_spaces.params import Choice, FloatRange

# Shared by the Adam-like families: beta2 is searched over values, not a range, because what matters
# is the averaging horizon 1/(1-beta2), which a uniform range would sample badly.
_ADAM_BETA1 = FloatRange(0.8, 0.95)
_ADAM_BETA2 = Choice((0.95, 0.98, 0.99, 0.999))
_DECOUPLED_WD = FloatRange(1e-3, 0.3, log=True)
# pytorch_optimizer's switch between AdamW-style (decoupled) and L2 (coupled) weight decay.
_DECOUPLED = {"weight_decouple": True}


def _register_torch_families(register: Callable[[OptimizerFamily], OptimizerFamily]) -> None:
    register(
        OptimizerFamily(
            name="adamw",
            in_default_search=True,
            description="Adam with decoupled weight decay",
            implementation="torch.optim.AdamW",
            source="Loshchilov & Hutter 2019; LLM defaults betas (0.9, 0.95), wd 0.1 (DeepSeek LLM)",
            defaults={"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1},
            space={
                "beta1": FloatRange(0.8, 0.95),
                "beta2": _ADAM_BETA2,
                "eps": Choice((1e-10, 1e-8, 1e-6)),
                "weight_decay": _DECOUPLED_WD,
            },
        )
    )
    register(
        OptimizerFamily(
            name="sgd",
            in_default_search=True,
            description="SGD with Nesterov momentum",
            implementation="torch.optim.SGD",
            source="Sutskever et al. 2013 (Nesterov momentum); torch.optim.SGD",
            defaults={"lr": 1e-2, "momentum": 0.9, "weight_decay": 5e-4},
            # Plain SGD's step is not normalised per coordinate, so its LR sits above Adam's. 10x is
            # tunekit's own choice, neither a reference nor a measurement: classical tuned SGD runs at
            # 100x (lr 0.1 vs Adam's 1e-3, juntang-zhuang/Adabelief-Optimizer README), which the
            # 10x-either-side range still reaches.
            lr_params={"lr": LRRange(ratio=10.0)},
            space={"momentum": FloatRange(0.8, 0.99), "weight_decay": FloatRange(1e-5, 1e-2, log=True)},
            fixed={"nesterov": True},
            batch_rule="linear",
            decay_timescale=False,  # L2 decay on the gradient, not decoupled
        )
    )


def _register_sign_and_orthogonal_families(register: Callable[[OptimizerFamily], OptimizerFamily]) -> None:
    register(
        OptimizerFamily(
            name="lion",
            in_default_search=True,
            description="Lion: sign of an interpolated momentum; LR 3-10x below AdamW, decay 3-10x above",
            implementation="pytorch_optimizer.Lion",
            source=(
                "Chen et al. 2023 (google/automl lion README): LR 3-10x below AdamW's, betas (0.9, 0.99); "
                "wd 0.7 at 130M (Wen et al. 2025)"
            ),
            defaults={"lr": 2e-4, "betas": (0.9, 0.99), "weight_decay": 0.7},
            # "a suitable learning rate for Lion is typically 3-10x smaller than that for AdamW"
            # (google/automl lion/README.md): centre at 1/5; effective decay is lr * wd,
            # so the decay range is AdamW's shifted up by the same factor.
            lr_params={"lr": LRRange(ratio=0.2)},
            space={
                "beta1": FloatRange(0.85, 0.95),
                "beta2": Choice((0.98, 0.99)),
                "weight_decay": FloatRange(3e-3, 3.0, log=True),
            },
            fixed=_DECOUPLED,
        )
    )
    register(
        OptimizerFamily(
            name="muon",
            in_default_search=True,
            description=(
                "Muon (orthogonalised Nesterov momentum) on hidden matrices, AdamW on embeddings, head, "
                "biases and gains; Muon LR on its own scale, AdamW part at 0.4x AdamW's"
            ),
            implementation="pytorch_optimizer.Muon",
            source=(
                "Jordan et al. 2024 (KellerJordan/Muon): lr 0.02, momentum 0.95, Nesterov, 5 Newton-Schulz steps "
                "(3.4445, -4.7750, 2.0315), update scaled by sqrt(max(1, rows/cols)), aux AdamW lr 3e-4, "
                "betas (0.9, 0.95); Wen et al. 2025: Adam part at 0.4x the best AdamW LR"
            ),
            defaults={
                "lr": 0.02,
                "momentum": 0.95,
                "weight_decay": 0.01,
                "adamw_lr": 3e-4,
                "adamw_betas": (0.9, 0.95),
                "adamw_eps": 1e-10,
            },
            # Two LRs, each centred where it transfers: Muon's orthogonalised update has a
            # width-independent scale (0.02 in KellerJordan/Muon, 0.016 at 130M in Wen et al. 2025),
            # while the AdamW part trains the same kinds of tensors as AdamW and follows the prior.
            lr_params={"lr": LRRange(absolute=0.02), "adamw_lr": LRRange(ratio=0.4)},
            space={"momentum": FloatRange(0.85, 0.98), "weight_decay": _DECOUPLED_WD},
            grouping="muon_hidden",
            fixed={
                "nesterov": True,
                "ns_steps": 5,
                "ns_coeffs": (3.4445, -4.7750, 2.0315),
                "use_adjusted_lr": False,  # KellerJordan's sqrt(max(1, rows/cols)), torch's "original"
                **_DECOUPLED,
            },
        )
    )


def _register_schedule_free_families(register: Callable[[OptimizerFamily], OptimizerFamily]) -> None:
    register(
        OptimizerFamily(
            name="schedulefree_adamw",
            in_default_search=True,
            description="Schedule-free AdamW: iterate averaging instead of an LR schedule",
            implementation="schedulefree.AdamWScheduleFree",
            source="Defazio et al. 2024 (facebookresearch/schedule_free README): LR 1-10x scheduled AdamW's; code defaults",
            defaults={
                "lr": 2.5e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.0,
                "r": 0.0,
                "weight_lr_power": 2.0,
            },
            # "For AdamW, learning rates in the range 1x-10x larger than with schedule-based approaches
            # seem to work" (facebookresearch/schedule_free README): centre at 3x, near the geometric middle.
            lr_params={"lr": LRRange(ratio=3.0)},
            space={"beta1": FloatRange(0.85, 0.98), "beta2": _ADAM_BETA2, "weight_decay": _DECOUPLED_WD},
            schedule_free=True,
        )
    )
    register(
        OptimizerFamily(
            name="schedulefree_sgd",
            description="Schedule-free SGD: iterate averaging with momentum interpolation, no LR schedule",
            implementation="schedulefree.SGDScheduleFree",
            source="Defazio et al. 2024 (facebookresearch/schedule_free): defaults; LR 100x AdamW measured (shapes, charlm)",
            defaults={"lr": 1.0, "momentum": 0.9, "weight_decay": 0.0, "r": 0.0, "weight_lr_power": 2.0},
            # The z sequence takes plain SGD steps (no 1/(1-momentum) amplification), so its LR sits
            # 10-50x above a scheduled SGD's (facebookresearch/schedule_free README). 100x AdamW is our
            # measurement, not a reference: the best LR of a search was ~100x the best AdamW LR on the
            # shapes example (100 steps) and ~300x on charlm (60 steps). (With classical SGD at 100x
            # AdamW the README would imply 1000-5000x.)
            lr_params={"lr": LRRange(ratio=100.0)},
            space={"momentum": FloatRange(0.8, 0.98), "weight_decay": FloatRange(1e-5, 1e-2, log=True)},
            schedule_free=True,
            batch_rule="linear",
            decay_timescale=False,  # L2 decay on the gradient, not decoupled
        )
    )


def _register_adam_variants(register: Callable[[OptimizerFamily], OptimizerFamily]) -> None:
    register(
        OptimizerFamily(
            name="ademamix",
            description="AdEMAMix: Adam plus a slow gradient EMA (beta3), mixed in with weight alpha",
            implementation="pytorch_optimizer.AdEMAMix",
            source=(
                "Pagliardini et al. 2024 (apple/ml-ademamix): betas (0.9, 0.999, 0.9999), alpha 2-8, "
                "alpha and beta3 (in half-life space) warmed up over the whole run"
            ),
            defaults={
                "lr": 1e-3,
                "betas": (0.9, 0.999, 0.9999),
                "alpha": 5.0,
                "eps": 1e-8,
                "weight_decay": 0.1,
                "beta3_half_life_fraction": None,
            },
            # beta3 = 0.9999 has a half-life of 6,931 steps, longer than most trials (issue #10). The
            # search sets beta3 by its half-life as a fraction of the trial's steps instead: 0.027 is
            # apple/ml-ademamix's README setting (0.9999 over num_iterations = 256,000), 0.1 and 0.3
            # keep the EMA slower than beta1 on short trials, where 0.027 would be a few steps.
            space={
                "beta1": _ADAM_BETA1,
                "beta2": _ADAM_BETA2,
                "beta3_half_life_fraction": Choice((0.027, 0.1, 0.3)),
                "alpha": FloatRange(2.0, 8.0),
                "weight_decay": _DECOUPLED_WD,
            },
            fixed=_DECOUPLED,
            # T_alpha = T_beta3 = the run's length, as in the paper's experiments.
            budget_fractions={"t_alpha_beta3": 1.0},
            budget_half_lives={"beta3_half_life_fraction": "beta3"},
        )
    )
    register(
        OptimizerFamily(
            name="adopt",
            description="ADOPT: second moment without the current gradient; converges for any beta2",
            implementation="pytorch_optimizer.ADOPT",
            source="Taniguchi et al. 2024 (iShohei220/adopt): betas (0.9, 0.9999), eps 1e-6, clip step**0.25",
            defaults={"lr": 1e-3, "betas": (0.9, 0.9999), "eps": 1e-6, "weight_decay": 0.1},
            space={"beta1": _ADAM_BETA1, "beta2": Choice((0.99, 0.999, 0.9999)), "weight_decay": _DECOUPLED_WD},
            fixed=_DECOUPLED,
        )
    )
    register(
        OptimizerFamily(
            name="soap",
            description="SOAP: Adam in the eigenbasis of Shampoo's preconditioner (matrix preconditioner)",
            implementation="pytorch_optimizer.SOAP",
            source="Vyas et al. 2024 (nikhilvyas/SOAP): lr 3e-3, betas (0.95, 0.95), wd 0.01, precondition every 10",
            defaults={
                "lr": 3e-3,
                "betas": (0.95, 0.95),
                "eps": 1e-8,
                "weight_decay": 0.01,
                "precondition_frequency": 10,
            },
            space={
                "beta1": FloatRange(0.85, 0.98),
                "beta2": Choice((0.95, 0.98, 0.99)),
                "weight_decay": _DECOUPLED_WD,
            },
        )
    )
    register(
        OptimizerFamily(
            name="laprop",
            description="LaProp: momentum over the RMS-normalised gradient (Adam with the order swapped)",
            implementation="pytorch_optimizer.LaProp",
            source="Ziyin et al. 2020 (Z-T-WANG/LaProp-Optimizer): lr 4e-4, betas (0.9, 0.999), eps 1e-15",
            defaults={"lr": 4e-4, "betas": (0.9, 0.999), "eps": 1e-15, "weight_decay": 0.1},
            space={"beta1": _ADAM_BETA1, "beta2": _ADAM_BETA2, "weight_decay": _DECOUPLED_WD},
            fixed=_DECOUPLED,
        )
    )
    register(
        OptimizerFamily(
            name="adan",
            description="Adan: Nesterov-style momentum on gradients and gradient differences",
            implementation="pytorch_optimizer.Adan",
            source=(
                "Xie et al. 2022 (sail-sg/Adan README): LR 5-10x AdamW's, betas (0.98, 0.92, 0.99), "
                "wd 0.02 (proximal, the authors' no_prox=False)"
            ),
            defaults={"lr": 1e-3, "betas": (0.98, 0.92, 0.99), "eps": 1e-8, "weight_decay": 0.02},
            # "the learning rate used by Adan is 5-10 times larger than that in Adam/AdamW" (sail-sg/Adan
            # README): centred on 7x, the geometric middle of 5-10x (sqrt(50) = 7.07), so both ends are
            # 1.4x from the centre, well inside the 10x-either-side range.
            lr_params={"lr": LRRange(ratio=7.0)},
            space={
                "beta1": FloatRange(0.9, 0.99),
                "beta3": Choice((0.99, 0.999)),
                "weight_decay": _DECOUPLED_WD,
            },
        )
    )
    register(
        OptimizerFamily(
            name="mars",
            description="MARS-AdamW: variance-reduced (gradient-corrected) AdamW on matrices, AdamW on 1-D",
            implementation="pytorch_optimizer.MARS",
            source=(
                "Yuan et al. 2024 (AGI-Arena/MARS GPT-2 configs): LR 10x AdamW's (6e-3 vs 6e-4), 1-D part at "
                "0.5x MARS's LR, wd 1e-2, betas (0.95, 0.99), gamma 0.025"
            ),
            defaults={"lr": 6e-3, "betas": (0.95, 0.99), "gamma": 0.025, "eps": 1e-8, "weight_decay": 1e-2},
            # AGI-Arena/MARS config/train_gpt2_{small,medium,large}_mars.py: learning_rate 6e-3 / 3e-3 /
            # 2e-3 against AdamW's 6e-4 / 3e-4 / 2e-4 (10x), lr_1d 3e-3 / 1.5e-3 / 1e-3 (0.5x MARS's),
            # weight_decay 1e-2 against AdamW's 1e-1, so lr * wd is the same as AdamW's.
            lr_params={"lr": LRRange(ratio=10.0)},
            space={
                "beta1": FloatRange(0.9, 0.98),
                "beta2": Choice((0.95, 0.99, 0.999)),
                "gamma": FloatRange(0.005, 0.1, log=True),
                "weight_decay": _DECOUPLED_WD,
            },
            # Its 1-D AdamW would decay at weight_decay_1d (0.1 by default, as the authors' train_mars.py)
            # and run at a fixed lr_1d: no decay there (a deliberate deviation: every grouping rule
            # leaves ndim < 2 undecayed), and half the searched LR (pytorch_optimizer stores
            # lr_1d / lr as the group's lr_1d_factor, so the 1-D part follows the schedule).
            fixed={"mars_type": "adamw", "optimize_1d": False, "weight_decay_1d": 0.0, **_DECOUPLED},
            aliases={"lr_1d": Alias("lr", 0.5)},
        )
    )
    register(
        OptimizerFamily(
            name="adabelief",
            description="AdaBelief: Adam whose second moment tracks the gradient's deviation from its EMA",
            implementation="pytorch_optimizer.AdaBelief",
            source="Zhuang et al. 2020 (juntang-zhuang/Adabelief-Optimizer): betas (0.9, 0.999), eps 1e-16",
            defaults={"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-16, "weight_decay": 0.1},
            space={"beta1": _ADAM_BETA1, "beta2": _ADAM_BETA2, "weight_decay": _DECOUPLED_WD},
            fixed=_DECOUPLED,
        )
    )


def register_builtin_families(registry: Registry[OptimizerFamily]) -> None:
    """Add every built-in family to ``registry``, in the order ``tunekit optimizers`` lists them."""
    for group in (
        _register_torch_families,
        _register_sign_and_orthogonal_families,
        _register_schedule_free_families,
        _register_adam_variants,
    ):
        group(registry.add)
