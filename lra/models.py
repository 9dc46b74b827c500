"""The LRA models: one pre-LayerNorm encoder with attention from the zoo, three heads.

    from lra.models import ModelConfig, build_model
    model = build_model(lra.info("listops"), ModelConfig(), "lotformer", {"r": 4})
    logits = model(tokens)                  # tokens (B, N) ints -> (B, classes)
    logits = pair_model(tokens, tokens2)    # retrieval: two towers, shared weights
    logits = token_model(tokens)            # recall: (B, N) -> (B, N, classes), a label per token

The setting of the published PyTorch LRA harness (Nystromformer / Skyformer, used by the
LOTFormer reference code): learned token and position embeddings, `layers` blocks of
x + Dropout(Attn(LN(x))), x + Dropout(FFN(LN(x))), a final LayerNorm, mean pooling over
real tokens (or the [CLS] token), and an MLP classifier. Retrieval encodes both documents
with the same encoder and classifies [u, v, u*v, u-v], as LRA does. A task with a label per
token (`TaskInfo.outputs == "tokens"`) gets the same MLP on every token's final state. The
head is the task's: `HEADS[(outputs, pair)]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

import attention_zoo as zoo
from lra.registry import TaskInfo

POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class ModelConfig:
    """The encoder's size, a profile's [model]: the `paper` profile's values are the defaults,
    and each field's limits (metadata) are what runners.lra.config checks a value against."""

    layers: int = field(default=2, metadata={"lowest": 1})
    width: int = field(default=64, metadata={"lowest": 1, "help": "a multiple of model.heads"})
    heads: int = field(default=2, metadata={"lowest": 1})
    ffn: int = field(default=128, metadata={"lowest": 1})
    dropout: float = field(default=0.1, metadata={"lowest": 0.0, "below": 1.0})
    # mean over real tokens | cls (a [CLS] token is prepended)
    pooling: str = field(default="mean", metadata={"choices": POOLINGS})


class AttentionBlock(nn.Module):
    """Multi-head projections around one zoo mechanism."""

    def __init__(self, width: int, heads: int, method: str, options: dict) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.attention = zoo.create(method, heads=heads, head_dim=self.head_dim, **options)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        B, N, _ = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = self.attention(qkv[0], qkv[1], qkv[2], padding_mask=mask)  # (B, H, N, hd)
        return self.out(out.transpose(1, 2).reshape(B, N, -1))  # (B, N, width)


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, cfg: ModelConfig, method: str, options: dict) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width)
        self.attn = AttentionBlock(cfg.width, cfg.heads, method, options)
        self.norm2 = nn.LayerNorm(cfg.width)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.width, cfg.ffn),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ffn, cfg.width),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.ffn(self.norm2(x)))


class FactoredEmbedding(nn.Module):
    """Ids read as mixed-radix digits, one table per digit, summed: (B, N) -> (B, N, width).
    Ids from prod(factors) on (the [CLS] tokens) have a table of their own."""

    def __init__(self, factors: tuple[int, ...], width: int, extra: int = 0) -> None:
        super().__init__()
        self.factors = factors
        self.digits = nn.ModuleList(nn.Embedding(f, width) for f in factors)
        self.extra = nn.Embedding(extra, width) if extra else None
        self.size = math.prod(factors)

    def forward(self, ids: Tensor) -> Tensor:
        rest, out = ids.clamp_max(self.size - 1), 0
        for factor, table in zip(reversed(self.factors), reversed(self.digits), strict=True):
            rest, digit = rest.div(factor, rounding_mode="floor"), rest % factor
            out = out + table(digit)
        if self.extra is not None:
            beyond = ids >= self.size
            extra = self.extra((ids - self.size).clamp(0, self.extra.num_embeddings - 1))
            out = torch.where(beyond[..., None], extra, out)
        return out


class Encoder(nn.Module):
    """Token ids (B, N) -> one pooled vector per sequence (B, width); `states` gives every
    token's final state (B, N, width)."""

    def __init__(
        self, task: TaskInfo, length: int, cfg: ModelConfig, method: str, options: dict
    ) -> None:
        super().__init__()
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"model.pooling must be one of {list(POOLINGS)}, got {cfg.pooling!r}")
        if cfg.width % cfg.heads:
            raise ValueError(f"model.width ({cfg.width}) must be a multiple of model.heads")
        # the mechanism's own [CLS] split decides how many; pooling=cls alone asks for one
        self.cls = options.get("cls_tokens", 0) or (1 if cfg.pooling == "cls" else 0)
        self.padding_id = task.padding_id  # None: every id is real (pixels), no mask
        extra = 1 if self.cls else 0
        if task.factors is None:
            self.tokens = nn.Embedding(task.vocab_size + extra, cfg.width)
        else:
            self.tokens = FactoredEmbedding(task.factors, cfg.width, extra)
        self.positions = (
            nn.Parameter(torch.randn(length + self.cls, cfg.width) * 0.02)
            if task.positions
            else None
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, method, options) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.width)
        self.cls_id = task.vocab_size

    def states(self, ids: Tensor) -> tuple[Tensor, Tensor | None]:
        """Every token's final state (B, cls + N, width), [CLS] tokens first, and the mask of
        real tokens (None: all real)."""
        ids = ids.long()
        mask = None if self.padding_id is None else ids != self.padding_id  # (B, N)
        if self.cls:
            ids = torch.cat([ids.new_full((len(ids), self.cls), self.cls_id), ids], 1)
            if mask is not None:
                mask = torch.cat([mask.new_ones(len(ids), self.cls), mask], 1)
        if mask is not None and bool(mask.all()):
            mask = None  # no padding in this batch: the mechanisms' unmasked path
        x = self.tokens(ids)  # (B, N, width)
        if self.positions is not None:
            x = x + self.positions[: ids.shape[1]]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x), mask

    def forward(self, ids: Tensor) -> Tensor:
        x, mask = self.states(ids)
        if self.cls:
            return x[:, 0]
        if mask is None:
            return x.mean(1)
        weights = mask.to(x.dtype)[..., None]  # (B, N, 1)
        return (x * weights).sum(1) / weights.sum(1).clamp_min(1)


def _mlp(inputs: int, hidden: int, classes: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class Classifier(nn.Module):
    """One input: encoder + MLP head."""

    def __init__(self, task: TaskInfo, length: int, cfg: ModelConfig, method: str, options: dict):
        super().__init__()
        self.encoder = Encoder(task, length, cfg, method, options)
        self.head = _mlp(cfg.width, cfg.ffn, task.classes)

    def forward(self, ids: Tensor, ids2: Tensor | None = None) -> Tensor:
        return self.head(self.encoder(ids))


class PairClassifier(nn.Module):
    """Two inputs (retrieval): one encoder for both, MLP on [u, v, u*v, u-v]."""

    def __init__(self, task: TaskInfo, length: int, cfg: ModelConfig, method: str, options: dict):
        super().__init__()
        self.encoder = Encoder(task, length, cfg, method, options)
        self.head = _mlp(4 * cfg.width, cfg.ffn, task.classes)

    def forward(self, ids: Tensor, ids2: Tensor | None = None) -> Tensor:
        if ids2 is None:
            raise ValueError("a pair task needs both documents: model(ids, ids2)")
        u, v = self.encoder(torch.cat([ids, ids2])).chunk(2)  # both towers in one batch
        return self.head(torch.cat([u, v, u * v, u - v], -1))


class TokenClassifier(nn.Module):
    """A label per token: encoder + MLP head on every token's state -> (B, N, classes)."""

    def __init__(self, task: TaskInfo, length: int, cfg: ModelConfig, method: str, options: dict):
        super().__init__()
        self.encoder = Encoder(task, length, cfg, method, options)
        self.head = _mlp(cfg.width, cfg.ffn, task.classes)

    def forward(self, ids: Tensor, ids2: Tensor | None = None) -> Tensor:
        x, _ = self.encoder.states(ids)
        return self.head(x[:, self.encoder.cls :])  # (B, N, classes): [CLS] tokens dropped


# the head of each kind of task: (TaskInfo.outputs, TaskInfo.pair) -> model
HEADS: dict[tuple[str, bool], type[nn.Module]] = {
    ("sequence", False): Classifier,
    ("sequence", True): PairClassifier,
    ("tokens", False): TokenClassifier,
}


def build_model(
    task: TaskInfo, cfg: ModelConfig, method: str, options: dict, length: int | None = None
) -> nn.Module:
    """The model of `task` with attention `method`; `length` defaults to the task's."""
    cls = HEADS[(task.outputs, task.pair)]
    return cls(task, length or task.length, cfg, method, dict(options))
