"""Parameter-grouping rules: which parameters an optimizer family may touch, and how.

A rule maps ``(model, hparams)`` to torch param groups. The family names its rule (``grouping``), so
callers never special-case a family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunekit.errors import BadInput

GroupingRule = Callable[[Any, dict], list]


def decay_matrices(model: Any, hparams: dict) -> list[dict]:
    """Weight decay on tensors with ndim >= 2 only; biases and norm gains get none.

    Follows nanoGPT's ``configure_optimizers`` (params with dim >= 2 decay). Tied weights appear once
    because ``named_parameters`` removes duplicates.
    """
    trainable = [p for _, p in model.named_parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": hparams.get("weight_decay", 0.0)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


RULES: dict[str, GroupingRule] = {"decay_matrices": decay_matrices}


def group_parameters(rule: str, model: Any, hparams: dict) -> list[dict]:
    """Apply the named rule.

    Raises:
        BadInput: unknown rule name, listing the valid ones.
    """
    try:
        fn = RULES[rule]
    except KeyError:
        raise BadInput(f"unknown parameter-grouping rule '{rule}'; choose from: {', '.join(RULES)}.") from None
    return fn(model, hparams)
