"""The published laws, written exactly as their papers give them (each function cites its source).

Pure functions of numbers: no torch, no model. Units: N non-embedding parameters, D training tokens,
C FLOPs, batch sizes in tokens. Each function cites its source; ``tests/test_priors.py`` checks them
against the published settings and against the formulas written out again independently.
"""

from __future__ import annotations

import math

from tunekit.search_spaces.families import BATCH_RULES

# --- Step Law (Li, Zheng, Hu et al. 2025, "Predictable Scale: Part I -- Optimal Hyperparameter Scaling
# Law in Large Language Model Pretraining", arXiv 2503.04715; the authors' fits: step-law/steplaw
# data/1004_fitted_lr_bs_scaling_model_parameters.csv, bootstrap mean 1.797 N^-0.7129 D^0.3075 and
# 0.5807 D^0.5709). Fitted for AdamW LLM pretraining (final LR 1e-5); the optimum is a broad plateau.
# The paper's form is implemented; the current step-law.github.io calculator (static/js/tool.js,
# `Math.log(0.58) + 0.571 * Math.log(trainingTokens)`) agrees with it.
STEPLAW_LR_COEF, STEPLAW_LR_N_EXP, STEPLAW_LR_D_EXP = 1.79, -0.713, 0.307
STEPLAW_BATCH_COEF, STEPLAW_BATCH_D_EXP = 0.58, 0.571
# The calculator's batch form of March 2025 (step-law.github.io tool.js from 08b9617, 2025-03-07,
# until be5a9d5, 2025-03-11, replaced it with the paper's): ln B = 2.187 - 0.1636 ln N + 0.592 ln D.
# Shown next to the paper's by `tunekit predict` when the two differ by more than
# STEPLAW_MARCH2025_SHOW_RATIO (issue #10), because users may have read it off the site then.
STEPLAW_MARCH2025_LOG_COEF, STEPLAW_MARCH2025_N_EXP, STEPLAW_MARCH2025_D_EXP = 2.187, -0.1636, 0.592
STEPLAW_MARCH2025_SHOW_RATIO = 1.5

# --- DeepSeek LLM (Bi et al. 2024, section 3) ---
DEEPSEEK_LR_COEF, DEEPSEEK_LR_C_EXP = 0.3118, -0.1250
DEEPSEEK_BATCH_COEF, DEEPSEEK_BATCH_C_EXP = 0.2920, 0.3271


def steplaw_lr(n_params: float, tokens: float) -> float:
    """Step Law's optimal peak LR: eta* = 1.79 N^-0.713 D^0.307."""
    return STEPLAW_LR_COEF * n_params**STEPLAW_LR_N_EXP * tokens**STEPLAW_LR_D_EXP


def steplaw_batch_tokens(tokens: float) -> float:
    """Step Law's optimal batch size in tokens: B* = 0.58 D^0.571 (independent of N)."""
    return STEPLAW_BATCH_COEF * tokens**STEPLAW_BATCH_D_EXP


def steplaw_batch_tokens_march2025(n_params: float, tokens: float) -> float:
    """The Step Law calculator's March-2025 batch form, B = 8.91 N^-0.1636 D^0.592 tokens (withdrawn)."""
    log_b = STEPLAW_MARCH2025_LOG_COEF + STEPLAW_MARCH2025_N_EXP * math.log(n_params)
    return math.exp(log_b + STEPLAW_MARCH2025_D_EXP * math.log(tokens))


def deepseek_flops_per_token(n_layer: int, d_model: int, seq_len: float) -> float:
    """DeepSeek's non-embedding FLOPs per token: M = 72 n_layer d_model^2 + 12 n_layer d_model seq_len.

    The first term is 6 x the 12 n_layer d_model^2 weights of a standard transformer (forward and
    backward), the second the attention over the context; the vocabulary projection is left out.
    """
    return 72 * n_layer * d_model**2 + 12 * n_layer * d_model * seq_len


def six_n_flops_per_token(n_params: float) -> float:
    """The 6N approximation of M (Kaplan et al. 2020): weights only, attention over the context left out."""
    return 6 * n_params


def deepseek_lr(compute: float) -> float:
    """DeepSeek's optimal peak LR: eta* = 0.3118 C^-0.1250, with C = M D."""
    return DEEPSEEK_LR_COEF * compute**DEEPSEEK_LR_C_EXP


def deepseek_batch_tokens(compute: float) -> float:
    """DeepSeek's optimal batch size in tokens: B* = 0.2920 C^0.3271."""
    return DEEPSEEK_BATCH_COEF * compute**DEEPSEEK_BATCH_C_EXP


# --- Batch-size transfer -------------------------------------------------------------------------

# rule name -> exponent of the batch ratio that multiplies the LR (Goyal et al. 2017; Malladi et al. 2022)
TRANSFER_RULES = BATCH_RULES


def transfer_lr(lr: float, batch_from: float, batch_to: float, rule: str) -> float:
    """The LR at ``batch_to`` given the optimum ``lr`` at ``batch_from`` (any unit, the same for both).

    Args:
        rule: ``linear`` (SGD) or ``sqrt`` (Adam-like optimizers).
    """
    return lr * (batch_to / batch_from) ** TRANSFER_RULES[rule]


def transfer_beta2(beta2: float, batch_from: float, batch_to: float) -> float:
    """Keep beta2's half-life fixed in tokens (Marek et al. 2025): beta2_new = beta2^(B_new / B_old)."""
    return beta2 ** (batch_to / batch_from)


def half_life_tokens(beta2: float, batch_tokens: float) -> float:
    """Tokens over which beta2's moving average halves: ln(0.5) / ln(beta2) steps of ``batch_tokens``."""
    return math.log(0.5) / math.log(beta2) * batch_tokens
