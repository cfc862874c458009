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
    2. AdamW, decayed: embeddings (``nn.Embedding`` and raw positional tables), the output head,
       the first layer on the raw input (a CNN's first conv, a ViT's patch embedding), found by
       structure rather than by name (:func:`classify_parameters`), and anything the module names
       in its ``tunekit_adam_params`` attribute.
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


# Roles of a trainable parameter, as `classify_parameters` gives them. Muon takes "hidden" only;
# N (tunekit.priors._measure) leaves "embedding" and "head" out.
HIDDEN, EMBEDDING, HEAD, INPUT, SMALL, NAMED = "hidden", "embedding", "head", "input layer", "norm/bias", "override"


@dataclass(frozen=True)
class ParamRole:
    """One trainable parameter's role and the reason for it (``tunekit optimizers --explain``)."""

    name: str
    param: Any
    role: str
    why: str


def classify_parameters(model: Any, use_override: bool = True) -> list[ParamRole]:
    """Every trainable parameter of ``model`` with its role, in ``named_parameters`` order (issue #10).

    The one rule, used by Muon's grouping and by the N of the scaling laws:

    - ``norm/bias``: ndim < 2 (biases, norm gains).
    - ``embedding``: ``nn.Embedding``/``nn.EmbeddingBag`` weights, and any raw ``nn.Parameter`` with
      ndim >= 2 held by a module that is not a ``torch.nn`` layer (a GPT's ``pos_emb``, a ViT's
      positional table or class token): a table the input indexes or is added to, not a matrix the
      activations are multiplied by. (``nn.MultiheadAttention``'s raw ``in_proj_weight`` is a
      ``torch.nn`` layer's matrix and stays hidden.)
    - ``head``: the output head (:func:`embedding_and_head`: tied to an embedding, shape-matched to
      one, or the last ``nn.Linear``).
    - ``input layer``: when the model has no ``nn.Embedding``, the first convolution or ``nn.Linear``
      in registration order is the layer that consumes the raw input: a CNN's first conv
      (KellerJordan/Muon README: Muon takes "all the convolutional filters except the first one"),
      a ViT's patch embedding (conv or linear), a linear on raw features. Registration order is
      the heuristic (modules are almost always registered in the order ``forward`` uses them; a
      forward trace would need a real batch, which grouping does not have); with an
      ``nn.Embedding`` the embedding is the input layer and every later Linear is hidden.
    - ``override``: named in the module's ``tunekit_adam_params`` globs (only with ``use_override``:
      the globs move parameters out of Muon, they do not change what N counts).
    - ``hidden``: every other 2-D weight or convolution kernel: what Muon orthogonalises.

    Raises:
        BadInput: a ``tunekit_adam_params`` glob matches no parameter.
    """
    from torch import nn

    modules = list(model.modules())
    heads = {id(p) for p in embedding_and_head(model)}
    tables = {id(m.weight) for m in modules if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
    heads -= tables
    kernels = {id(m.weight) for m in modules if _is_conv(m)}
    raw = {
        id(p)
        for m in modules
        for p in m.parameters(recurse=False)
        if (p.ndim >= 2 and not type(m).__module__.startswith("torch.nn")) or (p.ndim > 2 and id(p) not in kernels)
    }
    first = None if tables else next((m for m in modules if isinstance(m, nn.Linear) or _is_conv(m)), None)
    inputs = {id(first.weight)} - heads if first is not None else set()
    named = {id(p) for p in _override(model)} if use_override else set()
    out = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2:
            role, why = SMALL, "ndim < 2: AdamW without weight decay"
        elif id(p) in named:
            role, why = NAMED, f"named in {ADAM_PARAMS_ATTR}"
        elif id(p) in tables:
            role, why = EMBEDDING, "nn.Embedding weight"
        elif id(p) in raw:
            role, why = EMBEDDING, "raw nn.Parameter table (positional embedding, class token)"
        elif id(p) in heads:
            role, why = HEAD, "output head (tied, shape of an embedding, or the last nn.Linear)"
        elif id(p) in inputs:
            role, why = INPUT, f"first layer on the raw input ({type(first).__name__}, no nn.Embedding)"
        else:
            role, why = HIDDEN, "hidden matrix" + (" (conv kernel, flattened)" if p.ndim > 2 else "")
        out.append(ParamRole(name, p, role, why))
    return out


def split_hidden_matrices(model: Any) -> tuple[list, list, list]:
    """Trainable parameters as (hidden matrices, other tensors with ndim >= 2, ndim < 2).

    Hidden matrices are what Muon orthogonalises; the roles are :func:`classify_parameters`'s, the
    one place this classification lives.

    Raises:
        BadInput: a ``tunekit_adam_params`` glob matches no parameter.
    """
    hidden, other, small = [], [], []
    for r in classify_parameters(model):
        (hidden if r.role == HIDDEN else small if r.role == SMALL else other).append(r.param)
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
