"""Character-level language model: a small decoder-only transformer.

This is a bundled tunekit example. It trains a GPT-style character model (token and learned
positional embeddings, pre-LayerNorm blocks with causal self-attention and a GELU MLP, and an
output head tied to the token embedding) to predict the next character of English prose.

Tune it with::

    tunekit search examples/charlm.py --trials 6 --max-steps 200

Model size can be changed with ``--model-arg``, e.g. ``--model-arg d_model=128``.

Data: the text of Python's own documentation topics that ship with the standard library
(``pydoc_data.topics.topics``), joined in sorted-key order. Nothing is downloaded. Characters
outside printable ASCII (plus newline and tab) map to a single unknown id, so the vocabulary is
fixed at ``VOCAB_SIZE`` whatever the Python version. The first 90% of the text is for training,
the last 10% for validation. Training samples are random windows drawn once with a fixed seed;
validation uses a fixed set of windows, so every trial sees exactly the same data.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# Printable ASCII plus newline and tab; anything else becomes UNK_ID.
CHARS = "\n\t" + "".join(chr(i) for i in range(32, 127))
UNK_ID = len(CHARS)
VOCAB_SIZE = len(CHARS) + 1
_CHAR_TO_ID = {c: i for i, c in enumerate(CHARS)}

DATA_SEED = 1234  # fixed: the data never depends on the global (trial) seed


def load_corpus() -> str:
    """The English prose of the stdlib's pydoc topics, joined in sorted-key order."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


# Id of every code point below 128; DEL (127) is outside the vocabulary, so clamping every larger
# code point to 127 maps it to UNK_ID as well.
_ASCII_TO_ID = torch.tensor([_CHAR_TO_ID.get(chr(i), UNK_ID) for i in range(128)], dtype=torch.long)


def encode(text: str) -> torch.Tensor:
    """Map text to a 1-D ``torch.long`` tensor of ids in ``[0, VOCAB_SIZE)``.

    One table lookup over the code points: a Python loop over the characters took about 50 ms of
    every trial's ``setup`` (issue #11).
    """
    if not text:
        return torch.zeros(0, dtype=torch.long)  # torch.frombuffer refuses an empty buffer
    codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)
    return _ASCII_TO_ID[codes.clamp(max=127).long()]


def decode(ids: torch.Tensor) -> str:
    """Inverse of :func:`encode` (the unknown id prints as ``?``)."""
    return "".join(CHARS[i] if i < UNK_ID else "?" for i in ids.tolist())


def _windows(data: torch.Tensor, n: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random windows of ``length`` ids from ``data``, shape ``(n, length)``."""
    starts = torch.randint(0, len(data) - length + 1, (n,), generator=gen)
    return data[starts[:, None] + torch.arange(length)]


class CharDataModule(pl.LightningDataModule):
    """Random character windows: ``x`` is ``seq_len`` ids, ``y`` the same shifted by one.

    Both are ``torch.long`` of shape ``(batch_size, seq_len)``. ``seq_len`` must not exceed the
    model's ``seq_len`` (its positional-embedding length).
    """

    def __init__(
        self,
        batch_size: int = 32,
        seq_len: int = 64,
        n_train_windows: int = 8192,
        n_val_windows: int = 64,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.n_train_windows = n_train_windows
        self.n_val_windows = n_val_windows
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        data = encode(load_corpus())
        split = int(0.9 * len(data))
        gen = torch.Generator().manual_seed(DATA_SEED)
        train = _windows(data[:split], self.n_train_windows, self.seq_len + 1, gen)
        val = _windows(data[split:], self.n_val_windows, self.seq_len + 1, gen)
        self.train_set = TensorDataset(train[:, :-1], train[:, 1:])
        self.val_set = TensorDataset(val[:, :-1], val[:, 1:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=0)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, c // self.n_heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, heads, T, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.resid_drop(self.proj(out.transpose(1, 2).reshape(b, t, c)))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.GELU(),
            nn.Linear(4 * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(pl.LightningModule):
    """Decoder-only transformer over characters, output head tied to the token embedding."""

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        seq_len: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.seq_len = seq_len
        self.tok_emb = nn.Embedding(VOCAB_SIZE, d_model)
        self.pos_emb = nn.Embedding(seq_len, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB_SIZE, bias=False)
        self.apply(self._init_weights)
        # Residual output projections start smaller so the residual stream stays O(1) in depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layers))
        # Embeddings start at std 1/sqrt(d_model), so the tied head's initial logits are O(1).
        # (GPT-2's 0.02 is tuned for d_model=768; at this width it makes the tied embeddings
        # collapse towards the unigram direction at learning rates above ~1e-3.)
        for emb in (self.tok_emb, self.pos_emb):
            nn.init.normal_(emb.weight, mean=0.0, std=d_model**-0.5)
        self.head.weight = self.tok_emb.weight  # weight tying

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(B, T, VOCAB_SIZE)`` for ids of shape ``(B, T)``."""
        t = idx.shape[1]
        if t > self.seq_len:
            raise ValueError(f"sequence length {t} exceeds the model's seq_len {self.seq_len}")
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), prog_bar=False)

    def configure_optimizers(self):
        # Untuned baseline: tunekit replaces this during search.
        return torch.optim.Adam(self.parameters(), lr=1e-3)
