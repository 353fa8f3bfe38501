"""The pose retriever (official class LocalMemory): a small memory that proposes each frame's pose token.

``inquire`` reads a pose token for a frame from its global image feature (mean encoder token); ``update``
writes the frame's global feature and final pose token into the memory. No positional encoding.
"""

from __future__ import annotations

import torch
from torch import nn

from vlm3r.model.cut3r.blocks import DecoderBlock


class PoseRetriever(nn.Module):
    def __init__(self, size: int, key_dim: int, value_dim: int, num_heads: int, mlp_ratio: float, depth: int = 2):
        super().__init__()
        self.value_dim = value_dim
        self.proj_q = nn.Linear(key_dim, value_dim)
        self.masked_token = nn.Parameter(torch.zeros(1, 1, value_dim))
        self.mem = nn.Parameter(torch.zeros(1, size, 2 * value_dim))
        self.write_blocks = nn.ModuleList([DecoderBlock(2 * value_dim, num_heads, mlp_ratio, None)
                                           for _ in range(depth)])
        self.read_blocks = nn.ModuleList([DecoderBlock(2 * value_dim, num_heads, mlp_ratio, None)
                                          for _ in range(depth)])

    def initial_memory(self, batch: int) -> torch.Tensor:
        return self.mem.expand(batch, -1, -1)

    def inquire(self, global_feature: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """Pose token [B, 1, D] for a frame with global feature [B, 1, key_dim]."""
        x = self.proj_q(global_feature)
        x = torch.cat([x, self.masked_token.expand(x.shape[0], -1, -1)], dim=-1)
        for block in self.read_blocks:
            x = block(x, mem)
        return x[..., -self.value_dim:]

    def update(self, mem: torch.Tensor, global_feature: torch.Tensor, pose_token: torch.Tensor) -> torch.Tensor:
        feature = torch.cat([self.proj_q(global_feature), pose_token], dim=-1)
        for block in self.write_blocks:
            mem = block(mem, feature)
        return mem
