"""Where a search's weight decay and batch size are centred (issue #14), beside the LR's prior.

Weight decay follows the AdamW timescale rule (Wang & Aitchison 2025, "How to set AdamW's weight
decay as you scale model and dataset size"; Bergsma et al. 2025, "Power Lines"): decoupled decay
makes the weights an exponential moving average over tau = 1 / (lr * wd) steps, and the best tau
is a roughly constant fraction of the run, so wd = 1 / (lr * TAU_FRACTION * steps). The fraction
is ours, measured at 200 steps on this repository's benchmark tasks (AdamW at its best LR, wd in
{0.01, 0.1, 0.4, 1.5}, 2 seeds): the best tau was 1.5-4 runs on tabular, the grating CNN and
shapes (wd 0.01-0.1 at LR 3e-2) and on charlm (0.1-0.4 at 1.3e-2), so TAU_FRACTION = 2: in runs
this short the decay should barely act. The papers' LLM runs are longer than their tau (unverified
for tiny budgets). The centre is clamped into the family's searched range.

Batch size: a law that predicts an optimal batch (Step Law, DeepSeek) centres the batch axis on
the searched choice nearest to it in log scale; otherwise the script's own default is the centre
(the measured prior probes at that batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TAU_FRACTION = 2.0  # tau = 1 / (lr * wd) in steps, as a multiple of the trial's steps


@dataclass(frozen=True)
class Centred:
    """A centred value and the sentence that says where it comes from."""

    value: Any
    source: str


def weight_decay_centre(lr: float, steps: int, param: Any, fraction: float = TAU_FRACTION) -> Centred:
    """The decoupled weight decay with tau = 1 / (lr * wd) = ``fraction`` x ``steps``, inside ``param``'s range."""
    tau = fraction * steps
    wd = 1.0 / (lr * tau)
    clamped = min(max(wd, param.low), param.high)
    where = "" if clamped == wd else f", clamped into the searched [{param.low:.3g}, {param.high:.3g}]"
    return Centred(
        float(f"{clamped:.4g}"),
        f"1 / (lr {lr:.3g} x tau {tau:.0f} steps = {fraction:g} x the run's {steps}){where} (AdamW timescale rule)",
    )


def batch_choices(default: int | None) -> list[int] | None:
    """Batch sizes to search when the DataModule takes one: half, same and double its default."""
    if default is None:
        return None
    return sorted({max(1, default // 2), default, default * 2})


def batch_centre(default: int | None, choices: list[int] | None, law_batch_samples: float | None) -> Centred:
    """The batch the search starts from: the choice nearest a law's optimal batch, else the default."""
    if default is None or not choices:
        return Centred(default, "the DataModule takes no batch_size: not searched")
    if not law_batch_samples or law_batch_samples <= 0:
        return Centred(default, "the script's default (no law predicts a batch for this run)")
    nearest = min(choices, key=lambda b: abs(math.log(b / law_batch_samples)))
    return Centred(nearest, f"the searched choice nearest the law's optimal batch of {law_batch_samples:.3g} samples")
