"""Family LR ratios and defaults against the authors' reference configurations (issue #10, defect 2).

The reference numbers are written out here from the authors' repositories, not read from tunekit.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tunekit.search_spaces.catalog import get_family
from tunekit.training.optimization import instantiate

# AGI-Arena/MARS README "Hyperparameters for GPT-2 models" and config/train_gpt2_{small,medium,large}_*.py:
# (AdamW learning_rate, MARS learning_rate, MARS lr_1d); weight decay AdamW 1e-1, MARS 1e-2.
MARS_GPT2 = {"small": (6e-4, 6e-3, 3e-3), "medium": (3e-4, 3e-3, 1.5e-3), "large": (2e-4, 2e-3, 1e-3)}
MARS_WD, ADAMW_WD = 1e-2, 1e-1
# sail-sg/Adan README: "the learning rate used by Adan is 5-10 times larger than that in Adam/AdamW";
# weight decay default 0.02.
ADAN_RATIO_LOW, ADAN_RATIO_HIGH, ADAN_WD = 5.0, 10.0, 0.02


def test_mars_is_centred_at_ten_times_adamw_with_its_1d_part_at_half() -> None:
    """AGI-Arena/MARS GPT-2 configs: MARS 10x AdamW's LR, lr_1d 0.5x MARS's, wd 1e-2."""
    ratios = {size: mars / adamw for size, (adamw, mars, _) in MARS_GPT2.items()}
    one_d = {size: lr_1d / mars for size, (_, mars, lr_1d) in MARS_GPT2.items()}
    family = get_family("mars")
    for size in MARS_GPT2:
        assert family.lr_ratio == pytest.approx(ratios[size])
    hp = family.resolve({})
    assert hp["weight_decay"] == MARS_WD
    # lr * wd equal to AdamW's at the reference point: 6e-3 * 1e-2 == 6e-4 * 1e-1.
    assert hp["lr"] * hp["weight_decay"] == pytest.approx(MARS_GPT2["small"][0] * ADAMW_WD)
    # The 1-D AdamW part: pytorch_optimizer stores lr_1d / lr as lr_1d_factor.
    weight, bias = nn.Parameter(torch.zeros(3, 3)), nn.Parameter(torch.zeros(3))
    opt = instantiate(family, [{"params": [weight, bias]}], {**hp, "lr": 4e-3})
    group = opt.param_groups[0]
    for size in MARS_GPT2:
        assert group["lr_1d_factor"] == pytest.approx(one_d[size])
    assert group["lr_1d"] == pytest.approx(2e-3)


def test_adan_is_centred_inside_its_readme_range() -> None:
    """sail-sg/Adan README: LR 5-10x AdamW's; centred at the geometric middle, wd 0.02."""
    family = get_family("adan")
    middle = math.sqrt(ADAN_RATIO_LOW * ADAN_RATIO_HIGH)
    assert ADAN_RATIO_LOW <= family.lr_ratio <= ADAN_RATIO_HIGH
    assert family.lr_ratio == pytest.approx(middle, rel=0.02)
    assert family.resolve({})["weight_decay"] == ADAN_WD


def test_ademamix_beta3_half_life_is_a_fraction_of_the_trials_budget() -> None:
    """Issue #10, defect 7. apple/ml-ademamix README: betas (0.9, 0.999, 0.9999) with
    beta3_warmup = alpha_warmup = num_iterations = 256_000, i.e. beta3's half-life ln 0.5 / ln 0.9999
    = 6,931 steps is 2.7% of the run; tunekit searches that fraction of the trial's own budget."""
    readme_fraction = math.log(0.5) / math.log(0.9999) / 256_000
    family = get_family("ademamix")
    choices = family.space["beta3_half_life_fraction"].choices
    assert any(c == pytest.approx(readme_fraction, rel=0.02) for c in choices)
    p = nn.Parameter(torch.zeros(2))
    for steps, fraction in ((400, 0.1), (2000, 0.3), (256_000, readme_fraction)):
        hp = family.resolve({"beta3_half_life_fraction": fraction})
        beta3 = instantiate(family, [{"params": [p]}], hp, max_steps=steps).param_groups[0]["betas"][2]
        assert math.log(0.5) / math.log(beta3) == pytest.approx(fraction * steps)
        if steps == 256_000:
            assert beta3 == pytest.approx(0.9999, abs=1e-7)
    # Never faster than beta1: 2.7% of 100 steps would be a 2.7-step half-life.
    hp = family.resolve({"beta3_half_life_fraction": readme_fraction})
    assert instantiate(family, [{"params": [p]}], hp, max_steps=100).param_groups[0]["betas"][2] == hp["betas"][0]
    # A recipe from before issue #10 (no fraction) keeps its beta3.
    old = instantiate(family, [{"params": [p]}], family.resolve({}), max_steps=100)
    assert old.param_groups[0]["betas"][2] == 0.9999
