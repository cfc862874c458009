"""The built-in optimizer families, registered in small groups (timm style).

LR ratios are relative to the AdamW centre LR; sources for each default are in
``../shared/literature.md`` (section "Optimizer families").
"""

from __future__ import annotations

from tunekit.search_spaces.optimizers import LRRange, OptimizerFamily, register
from tunekit.search_spaces.params import Choice, FloatRange

# Shared by the Adam-like families: beta2 is searched over values, not a range, because what matters
# is the averaging horizon 1/(1-beta2), which a uniform range would sample badly.
_ADAM_BETA2 = Choice((0.95, 0.98, 0.99, 0.999))
_DECOUPLED_WD = FloatRange(1e-3, 0.3, log=True)


def _register_torch_families() -> None:
    register(
        OptimizerFamily(
            name="adamw",
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
            description="SGD with Nesterov momentum",
            implementation="torch.optim.SGD",
            source="Sutskever et al. 2013 (Nesterov momentum); torch.optim.SGD",
            defaults={"lr": 1e-2, "momentum": 0.9, "weight_decay": 5e-4},
            # Plain SGD's step is not normalised per coordinate, so its LR sits about 10x above Adam's.
            lr_params={"lr": LRRange(ratio=10.0)},
            space={"momentum": FloatRange(0.8, 0.99), "weight_decay": FloatRange(1e-5, 1e-2, log=True)},
            fixed={"nesterov": True},
        )
    )


def _register_schedule_free_families() -> None:
    register(
        OptimizerFamily(
            name="schedulefree_adamw",
            description="Schedule-free AdamW: iterate averaging instead of an LR schedule",
            implementation="schedulefree.AdamWScheduleFree",
            source="Defazio et al. 2024; facebookresearch/schedule_free defaults",
            defaults={
                "lr": 2.5e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.0,
                "r": 0.0,
                "weight_lr_power": 2.0,
            },
            # "Its LR can be 1-10x a scheduled AdamW's" (literature.md): centre at 3x.
            lr_params={"lr": LRRange(ratio=3.0)},
            space={"beta1": FloatRange(0.85, 0.98), "beta2": _ADAM_BETA2, "weight_decay": _DECOUPLED_WD},
            schedule_free=True,
        )
    )


_register_torch_families()
_register_schedule_free_families()
