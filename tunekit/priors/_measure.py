"""Measure a run the way the LLM laws define their inputs: N, D and the compute C.

- N, the non-embedding parameter count: every trainable parameter except the embedding tables and
  the output head, tied or untied, as ``tunekit.training.param_groups.classify_parameters`` finds
  them (the same rule Muon's grouping uses; issue #10). Kaplan et al. 2020 (arXiv 2001.08361,
  §1.3, §2.1) leave "all vocabulary and positional embeddings" out of N, DeepSeek's M leaves out
  "the vocabulary computation" (Bi et al. 2024, arXiv 2401.02954, §3.2), and Step Law's fitted N is
  n_layer (4h^2 + 3h d_ff) with no vocabulary term (step-law/steplaw data). Biases and norm gains
  count. Frozen parameters do not.
- D, training tokens: steps x batch x tokens per sample. Tokens per sample come from the first
  training batch when its input is an integer tensor of shape (batch, length, ...) (a padded batch
  with an ``attention_mask`` counts its real tokens), or from ``--tokens-per-sample``. Otherwise the
  task is not a sequence task: D counts samples and the LLM laws are outside their fitted domain.
- C = M D for DeepSeek's law, with M = 72 n_layer d_model^2 + 12 n_layer d_model seq_len when the
  model's depth and width can be read from it (see ``transformer_shape``), else M = 6N.

Imports torch; only the commands that measure import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunekit.errors import BadInput
from tunekit.priors._laws import deepseek_flops_per_token, six_n_flops_per_token

# Keys under which a dict batch usually carries its token ids, in order of preference.
_INPUT_KEYS = ("input_ids", "tokens", "idx", "x", "input", "inputs")
# Hyperparameter names that give depth and width when the structure does not.
_DEPTH_KEYS = ("n_layer", "n_layers", "num_layers", "num_hidden_layers", "depth")
_WIDTH_KEYS = ("d_model", "n_embd", "hidden_size", "embed_dim", "dim", "width")


@dataclass(frozen=True)
class ParamCount:
    """Parameters that count as N and those that do not, by name."""

    n_params: int
    total: int
    embeddings: tuple[tuple[str, int], ...] = ()
    tied: tuple[str, ...] = ()
    frozen: int = 0
    heads: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        parts = [f"every trainable parameter ({self.total:,} in all)"]
        if self.embeddings:
            names = ", ".join(f"{n} ({c:,})" for n, c in self.embeddings)
            parts.append(f"except the embedding tables {names}")
        if self.tied:
            parts.append(f"and the output head tied to them ({', '.join(self.tied)})")
        if self.heads:
            names = ", ".join(f"{n} ({c:,})" for n, c in self.heads)
            parts.append(f"and the untied output head {names}")
        text = (
            " ".join(parts) + "; the head is never in N, tied or not (Kaplan et al. 2020); biases and norm gains count"
        )
        if self.frozen:
            text += f"; {self.frozen:,} frozen parameters do not"
        return text


@dataclass(frozen=True)
class Shape:
    """Depth and width of a transformer, and where each came from; None when not derivable."""

    n_layer: int | None = None
    d_model: int | None = None
    source: str = ""


@dataclass(frozen=True)
class Measurement:
    """What the laws take as input, for one model, batch size and step budget."""

    params: ParamCount
    steps: int
    batch_size: int | None
    tokens_per_sample: float | None
    tokens_source: str
    shape: Shape = field(default_factory=Shape)

    @property
    def n_params(self) -> int:
        return self.params.n_params

    @property
    def sequence(self) -> bool:
        """True when D is in tokens (the LLM laws' domain), False when it counts samples."""
        return self.tokens_per_sample is not None

    @property
    def samples(self) -> float:
        return float(self.steps * (self.batch_size or 1))

    @property
    def tokens(self) -> float:
        """D: training tokens, or samples for a non-sequence task."""
        return self.samples * (self.tokens_per_sample or 1.0)

    @property
    def batch_tokens(self) -> float:
        """Tokens (or samples) per optimizer step."""
        return (self.batch_size or 1) * (self.tokens_per_sample or 1.0)

    @property
    def flops_per_token(self) -> float:
        """M: DeepSeek's formula when depth and width are known and the task is a sequence task, else 6N."""
        s = self.shape
        if self.sequence and s.n_layer and s.d_model:
            return deepseek_flops_per_token(s.n_layer, s.d_model, self.tokens_per_sample)
        return six_n_flops_per_token(self.n_params)

    @property
    def flops_source(self) -> str:
        s = self.shape
        if self.sequence and s.n_layer and s.d_model:
            return (
                f"M = 72·n_layer·d_model² + 12·n_layer·d_model·seq_len with n_layer={s.n_layer}, "
                f"d_model={s.d_model} ({s.source}), seq_len={_num(self.tokens_per_sample)}"
            )
        why = "not a sequence task" if not self.sequence else (s.source or "no attention layers found")
        return f"M ≈ 6N ({why})"

    @property
    def compute(self) -> float:
        """C = M D in FLOPs."""
        return self.flops_per_token * self.tokens

    def record(self) -> dict:
        """The measured inputs as stored in a study's and a recipe's ``prior`` section."""
        out: dict[str, Any] = {"n_params": int(self.n_params)}
        if self.sequence:
            out["tokens"] = float(self.tokens)
            out["tokens_per_sample"] = float(self.tokens_per_sample)
        else:
            out["samples"] = float(self.samples)
        return out


def count_parameters(model: Any) -> ParamCount:
    """N as the LLM laws define it (see the module docstring), with what was left out by name."""
    from tunekit.training.param_groups import EMBEDDING, HEAD, classify_parameters

    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    roles = classify_parameters(model, use_override=False)
    total = sum(r.param.numel() for r in roles)
    embeddings = tuple((r.name, r.param.numel()) for r in roles if r.role == EMBEDDING)
    heads = tuple((r.name, r.param.numel()) for r in roles if r.role == HEAD)
    tied = _tied_names(model)
    counted = total - sum(c for _, c in embeddings + heads)
    return ParamCount(counted, total, embeddings, tied, frozen, heads)


def _tied_names(model: Any) -> tuple[str, ...]:
    """Names under which a layer other than the embedding holds an embedding's weight (a tied head)."""
    from torch import nn

    kinds = (nn.Embedding, nn.EmbeddingBag)
    tables = {id(m.weight) for m in model.modules() if isinstance(m, kinds)}
    return tuple(
        _join(mod_name, n)
        for mod_name, module in model.named_modules()
        if not isinstance(module, kinds)
        for n, p in module.named_parameters(recurse=False)
        if id(p) in tables
    )


def transformer_shape(model: Any) -> Shape:
    """n_layer and d_model for DeepSeek's M, read from the module.

    n_layer is the number of outermost attention modules (a class whose name contains
    "Attention", e.g. ``nn.MultiheadAttention`` or a script's ``CausalSelfAttention``; a decoder
    layer with cross-attention counts twice). d_model is the attention's ``embed_dim``, else the
    input width of its first ``nn.Linear``. Either falls back to the module's hyperparameters
    (``n_layer``/``n_layers``/``num_layers``..., ``d_model``/``n_embd``/``hidden_size``...).
    """
    from torch import nn

    attention = [(n, m) for n, m in model.named_modules() if "attention" in type(m).__name__.lower()]
    outermost = [(n, m) for n, m in attention if not any(n.startswith(o + ".") for o, _ in attention if o != n)]
    n_layer = len(outermost) or None
    d_model = None
    sources = []
    if n_layer:
        sources.append(f"{n_layer} {type(outermost[0][1]).__name__} modules")
        first = outermost[0][1]
        if isinstance(getattr(first, "embed_dim", None), int):
            d_model = first.embed_dim
            sources.append("embed_dim of the attention")
        else:
            linear = next((m for m in first.modules() if isinstance(m, nn.Linear)), None)
            if linear is not None:
                d_model = linear.in_features
                sources.append("input width of the attention")
    hparams = _hparams(model)
    if n_layer is None and (v := _first_int(hparams, _DEPTH_KEYS)) is not None:
        n_layer, key = v
        sources.append(f"hparams.{key}")
    if d_model is None and (v := _first_int(hparams, _WIDTH_KEYS)) is not None:
        d_model, key = v
        sources.append(f"hparams.{key}")
    if not (n_layer and d_model):
        return Shape(None, None, "depth and width not derivable: no attention modules or n_layer/d_model hparams")
    return Shape(n_layer, d_model, "; ".join(sources))


def tokens_per_sample_of(batch: Any) -> tuple[float | None, str]:
    """Tokens per sample of a training batch whose input is integer ids, else None, with the reason."""
    import torch

    x, mask = _input_tensor(batch)
    if x is None:
        return None, "the first batch holds no tensor"
    shape = "x".join(map(str, x.shape))
    if x.dtype in (torch.bool,) or x.is_floating_point() or x.is_complex():
        return None, f"the first batch's input is {str(x.dtype).replace('torch.', '')} ({shape}), not token ids"
    if x.ndim < 2:
        return None, f"the first batch's input is integer but one-dimensional ({shape}), not a sequence"
    if mask is not None and tuple(mask.shape) == tuple(x.shape[: mask.ndim]):
        per = float(mask.reshape(mask.shape[0], -1).sum(dim=1).float().mean())
        return per, f"attention_mask of the first batch ({shape} ids)"
    return float(x[0].numel()), f"first batch: integer ids of shape {shape}"


def first_batch(script: Any, model: Any, batch_size: int | None) -> Any:
    """The first training batch, drawn the way Lightning would (prepare_data, setup, train_dataloader)."""
    _, data = script.probe(batch_size)
    if data is not None:
        data.prepare_data()
        data.setup("fit")
        loader = data.train_dataloader()
    else:
        loader = model.train_dataloader()
    return next(iter(loader))


def measure(
    script: Any, max_steps: int, batch_size: int | None = None, tokens_per_sample: float | None = None
) -> Measurement:
    """Measure N, D and the transformer shape of ``script``'s model for a run of ``max_steps`` steps.

    Builds the model and draws one training batch; trains nothing.

    Args:
        batch_size: samples per step; None reads it from the first batch.
        tokens_per_sample: overrides what the first batch says (and makes the task a sequence task).

    Raises:
        BadInput: the model cannot be built, or no batch can be drawn when one is needed.
    """
    model, _ = script.probe(batch_size)
    params = count_parameters(model)
    shape = transformer_shape(model)
    batch = None
    if tokens_per_sample is None or batch_size is None:
        try:
            batch = first_batch(script, model, batch_size)
        except BadInput:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's data code
            raise BadInput(
                f"drawing a training batch to measure tokens per sample failed: {type(exc).__name__}: {exc}; "
                "fix the data code, or pass --tokens-per-sample and a DataModule batch_size."
            ) from None
    if batch_size is None:
        batch_size = _batch_len(batch)
    if tokens_per_sample is not None:
        per, source = float(tokens_per_sample), "--tokens-per-sample"
    else:
        per, source = tokens_per_sample_of(batch)
    return Measurement(params, max_steps, batch_size, per, source, shape)


def _input_tensor(batch: Any) -> tuple[Any, Any]:
    """The model input of a batch (a tensor, the first of a tuple, or a dict's ids) and its mask."""
    import torch

    if torch.is_tensor(batch):
        return batch, None
    if isinstance(batch, Mapping):
        mask = batch.get("attention_mask")
        mask = mask if torch.is_tensor(mask) else None
        for key in _INPUT_KEYS:
            if torch.is_tensor(batch.get(key)):
                return batch[key], mask
        for value in batch.values():
            x, _ = _input_tensor(value)
            if x is not None:
                return x, mask
        return None, None
    if isinstance(batch, (list, tuple)) and batch:
        return _input_tensor(batch[0])
    return None, None


def _batch_len(batch: Any) -> int | None:
    x, _ = _input_tensor(batch)
    return int(x.shape[0]) if x is not None and x.ndim >= 1 else None


def _hparams(model: Any) -> Mapping:
    hp = getattr(model, "hparams", None)
    return hp if isinstance(hp, Mapping) else {}


def _first_int(mapping: Mapping, keys: tuple[str, ...]) -> tuple[int, str] | None:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, key
    return None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _num(x: float | None) -> str:
    return "-" if x is None else (str(int(x)) if float(x).is_integer() else f"{x:.4g}")
