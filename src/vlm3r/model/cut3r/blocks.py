"""Transformer blocks of CUT3R (pre-norm, exact-GELU MLPs, biased projections, LayerNorm eps 1e-6).

Attribute names follow the official state dict (``qkv``, ``proj``, ``projq``/``projk``/``projv``, ``norm1``..,
``norm_y``, ``mlp.fc1``/``fc2``), so checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlm3r.model.cut3r.rope import rope_2d

LN_EPS = 1e-6


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out_features or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def _rotate(t: torch.Tensor, pos: torch.Tensor | None, base: float | None, fp16_round: bool) -> torch.Tensor:
    if base is None or pos is None:
        return t
    if fp16_round:  # croco's encoder attention rounds q and k to float16 around RoPE (docs/design.md, cut3r §4.2)
        return rope_2d(t.half(), pos, base).half().to(t.dtype)
    return rope_2d(t, pos, base)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, rope_base: float | None, fp16_qk: bool = False):
        super().__init__()
        self.num_heads, self.rope_base, self.fp16_qk = num_heads, rope_base, fp16_qk
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q = _rotate(q, pos, self.rope_base, self.fp16_qk)
        k = _rotate(k, pos, self.rope_base, self.fp16_qk)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, rope_base: float | None):
        super().__init__()
        self.num_heads, self.rope_base = num_heads, rope_base
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, xpos, ypos) -> torch.Tensor:
        b, n, c = x.shape
        m = y.shape[1]
        heads = self.num_heads

        def split(t, length):
            return t.reshape(b, length, heads, c // heads).transpose(1, 2)

        q = _rotate(split(self.projq(x), n), xpos, self.rope_base, False)
        k = _rotate(split(self.projk(y), m), ypos, self.rope_base, False)
        out = F.scaled_dot_product_attention(q, k, split(self.projv(y), m))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class EncoderBlock(nn.Module):
    """x += Attn(LN(x)); x += MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, rope_base: float | None, fp16_qk: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = SelfAttention(dim, num_heads, rope_base, fp16_qk)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), pos)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """x += SelfAttn(LN1 x); x += CrossAttn(LN2 x, LN_y y); x += MLP(LN3 x)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, rope_base: float | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = SelfAttention(dim, num_heads, rope_base)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.cross_attn = CrossAttention(dim, num_heads, rope_base)
        self.norm3 = nn.LayerNorm(dim, eps=LN_EPS)
        self.norm_y = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, y, xpos=None, ypos=None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), xpos)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(y), xpos, ypos)
        return x + self.mlp(self.norm3(x))


class ModulatedLayerNorm(nn.Module):
    """LN(x) * (1 + scale) + shift, with [shift, scale] = Linear(SiLU(c))."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 2))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        shift, scale = self.mlp(condition).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class ConditionModulationBlock(nn.Module):
    """x += Attn(ModLN1(x, c)); x += MLP(ModLN2(x, c))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, rope_base: float | None):
        super().__init__()
        self.norm1 = ModulatedLayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, rope_base)
        self.norm2 = ModulatedLayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, condition: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x, condition), pos)
        return x + self.mlp(self.norm2(x, condition))
