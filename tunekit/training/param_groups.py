"""Parameter-grouping rules: which parameters an optimizer family may touch, and how.

A rule maps ``(model, hparams)`` to torch param groups; the rules are entries of the
``GROUPING_RULES`` registry. The family names its rule (``grouping``), so callers never
special-case a family. Which parameter is a hidden matrix (Muon's) and which is an embedding, head
or bias is decided in one place, :func:`split_hidden_matrices`. Every rule gives parameters with ndim < 2 (biases, norm gains)
no weight decay (karpathy/nanoGPT ``model.py`` ``configure_optimizers``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunekit.errors import BadInput
from tunekit.registry import Registry

# Module attribute naming the parameters that Muon must leave to its AdamW part, as name globs.
ADAM_PARAMS_ATTR = "tunekit_adam_params"


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


def muon_hidden(model: Any, hparams: dict) -> list[dict]:
    """Muon for the hidden weight matrices, AdamW for everything else (KellerJordan/Muon, README).

    Groups carry ``use_muon`` (pytorch_optimizer's ``Muon`` runs the ``False`` groups as AdamW):

    1. Muon, decayed: 2-D weights and convolution kernels (Muon flattens them to
       ``(out, in * k * k)``) that are not in group 2.
    2. AdamW, decayed: the input embedding and the output head, found by structure rather than by
       name (see :func:`embedding_and_head`), other tensors with ndim > 2 that are not conv kernels
       (e.g. a raw positional-embedding ``Parameter``), and anything the module names in its
       ``tunekit_adam_params`` attribute.
    3. AdamW, no decay: ndim < 2 (biases, norm gains).

    Override: a LightningModule (or any ``nn.Module``) may set ``tunekit_adam_params`` to a list of
    name globs matched against ``named_parameters`` names (tied aliases included), e.g.
    ``tunekit_adam_params = ["pos_emb", "*.router.weight"]``; those go to AdamW. A glob that matches
    nothing is an error, so a typo cannot silently leave a parameter with Muon.

    Raises:
        BadInput: a ``tunekit_adam_params`` glob matches no parameter.
    """
    muon, adam, no_decay = split_hidden_matrices(model)
    decay = hparams.get("weight_decay", 0.0)
    groups = [
        {"params": muon, "use_muon": True, "weight_decay": decay},
        {"params": adam, "use_muon": False, "weight_decay": decay},
        {"params": no_decay, "use_muon": False, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def split_hidden_matrices(model: Any) -> tuple[list, list, list]:
    """Trainable parameters as (hidden matrices, other tensors with ndim >= 2, ndim < 2).

    Hidden matrices are the 2-D weights and convolution kernels that are not the input embedding
    or the output head (:func:`embedding_and_head`) and not named in ``tunekit_adam_params``: what
    Muon orthogonalises. The one place this classification lives (issue #10 builds on it).

    Raises:
        BadInput: a ``tunekit_adam_params`` glob matches no parameter.
    """
    adam_ids = {id(p) for p in embedding_and_head(model)} | {id(p) for p in _override(model)}
    kernels = {id(m.weight) for m in model.modules() if _is_conv(m)}
    hidden, other, small = [], [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2:
            small.append(p)
        elif id(p) not in adam_ids and (p.ndim == 2 or id(p) in kernels):
            hidden.append(p)
        else:
            other.append(p)
    return hidden, other, small


def embedding_and_head(model: Any) -> list:
    """The input embeddings and the output head of ``model``, found by module type and weight tying.

    - Embeddings: the weights of every ``nn.Embedding`` / ``nn.EmbeddingBag``.
    - Head, tied: a ``nn.Linear`` whose weight *is* an embedding's weight. Found, it is the head
      and nothing else is added.
    - Head, untied: for each embedding, the last ``nn.Linear`` whose weight has that embedding's
      shape ``(vocab, d)`` (a head that could be tied), skipping square tables (``n == d``, e.g. a
      positional table as long as the model is wide), which a hidden ``d x d`` layer would match;
      and the model's last ``nn.Linear`` (a classifier head), in registration order. Taking both is
      deliberate: a head left to Muon is the error that hurts, a hidden layer given to AdamW only
      costs a little (an LM that registers its head before its blocks would otherwise lose its head
      to Muon). Biases have ndim 1 and go to the no-decay group anyway.

    Registration order is a heuristic: a model whose head is not a ``nn.Linear``, or that wants a
    different split, names parameters in ``tunekit_adam_params``.
    """
    from torch import nn

    modules = list(model.modules())
    embeddings = [m.weight for m in modules if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    embedding_ids = {id(w) for w in embeddings}
    if any(id(m.weight) in embedding_ids for m in linears):
        return embeddings
    heads = {}
    for shape in {tuple(w.shape) for w in embeddings if w.shape[0] != w.shape[1]}:
        tieable = [m for m in linears if tuple(m.weight.shape) == shape]
        heads.update({id(m): m for m in tieable[-1:]})
    heads.update({id(m): m for m in linears[-1:]})
    return embeddings + [m.weight for m in heads.values()]


def _override(model: Any) -> list:
    patterns = getattr(model, ADAM_PARAMS_ATTR, None) or ()
    if isinstance(patterns, str):
        patterns = (patterns,)
    named = list(model.named_parameters(remove_duplicate=False))
    chosen = []
    for pattern in patterns:
        hits = [p for name, p in named if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise BadInput(
                f"{ADAM_PARAMS_ATTR} pattern '{pattern}' matches no parameter; names are like: "
                f"{', '.join(name for name, _ in named[:8])}{', ...' if len(named) > 8 else ''}."
            )
        chosen += hits
    return chosen


def _is_conv(module: Any) -> bool:
    from torch import nn

    return isinstance(module, nn.modules.conv._ConvNd)


@dataclass(frozen=True)
class GroupingRule:
    """A registry entry: ``fn(model, hparams)`` returns torch param groups."""

    name: str
    description: str
    fn: Callable[[Any, dict], list[dict]]


def register_builtin_rules(registry: Registry[GroupingRule]) -> None:
    registry.add(GroupingRule("decay_matrices", "weight decay on ndim >= 2 tensors only", decay_matrices))
    registry.add(GroupingRule("muon_hidden", "Muon for hidden matrices, AdamW for the rest", muon_hidden))


GROUPING_RULES: Registry[GroupingRule] = Registry("parameter-grouping rule", register_builtin_rules)


def group_parameters(rule: str, model: Any, hparams: dict) -> list[dict]:
    """Apply the named rule.

    Raises:
        BadInput: unknown rule name, listing the valid ones.
    """
    return GROUPING_RULES.lookup(rule).fn(model, hparams)
