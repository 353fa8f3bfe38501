"""2D rotary position embedding as CUT3R's CUDA kernel computes it (docs/design.md, cut3r §4.3).

The first half of each head's channels is rotated by the token's y position, the second half by its x
position; within a half, channel i pairs with channel i + D/4 and turns by pos * base^(-i / (D/4)). Angles,
sin/cos and the rotation are float32; the result is cast back to the input's dtype. Positions may be
negative (the pose token sits at (-1, -1)), which the official pure-PyTorch fallback cannot handle.
"""

from __future__ import annotations

import torch


def rope_2d(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate ``x`` [B, heads, N, D] by ``positions`` [B, N, 2] (y, x)."""
    dim = x.shape[-1]
    quarter = dim // 4
    exponent = torch.arange(quarter, device=x.device, dtype=torch.float32) / quarter
    inv_freq = 1.0 / torch.pow(torch.tensor(base, dtype=torch.float32, device=x.device), exponent)
    out_dtype = x.dtype
    x = x.float()
    halves = []
    for axis, half in enumerate(x.split(dim // 2, dim=-1)):
        angle = positions[..., axis].to(torch.float32)[:, None, :, None] * inv_freq  # [B, 1, N, Q]
        cos, sin = torch.cos(angle), torch.sin(angle)
        u, v = half[..., :quarter], half[..., quarter:]
        halves += [u * cos - v * sin, v * cos + u * sin]
    return torch.cat(halves, dim=-1).to(out_dtype)
