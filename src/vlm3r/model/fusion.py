"""The fusion block: SigLIP tokens attend to the same frame's CUT3R tokens (docs/design.md, model §3).

out = dropout(x + out_norm(out_proj(MHA(q_proj(LN x), k_proj(LN s), v_proj(LN s))))), with PyTorch's
MultiheadAttention applying its own packed input and output projections on top, exactly as the released model.
Names and shapes match ``model.fusion_block.*`` of the released checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

LINEAR_INIT_STD = 0.02


class CrossAttentionFusion(nn.Module):
    def __init__(self, d_clip: int, d_spatial: int, num_heads: int, dropout: float = 0.1):
        super().__init__()
        self.clip_norm = nn.LayerNorm(d_clip)
        self.spatial_encoder_norm = nn.LayerNorm(d_spatial)
        self.clip_query_proj = nn.Linear(d_clip, d_clip)
        self.spatial_encoder_key_proj = nn.Linear(d_spatial, d_clip)
        self.spatial_encoder_value_proj = nn.Linear(d_spatial, d_clip)
        self.cross_attention = nn.MultiheadAttention(d_clip, num_heads, batch_first=True)
        self.out_norm = nn.LayerNorm(d_clip)
        self.out_proj = nn.Linear(d_clip, d_clip)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A new block's initialisation (docs/design.md, model §3.6): Linear weights normal(0, 0.02) with zero bias
        (Qwen2's rule, which the reference applies), LayerNorm (1, 0), PyTorch's default for the attention's
        packed projections. Released weights replace all of it."""
        for module in self.modules():
            if isinstance(module, nn.Linear):  # the attention's out_proj too, after its own reset below
                nn.init.normal_(module.weight, std=LINEAR_INIT_STD)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
            elif isinstance(module, nn.MultiheadAttention):
                module._reset_parameters()  # visited before its out_proj child

    def forward(self, visual: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        """visual [F, N, d_clip] attends to spatial [F, M, d_spatial] frame by frame."""
        spatial = self.spatial_encoder_norm(spatial)
        query = self.clip_query_proj(self.clip_norm(visual))
        attended, _ = self.cross_attention(query, self.spatial_encoder_key_proj(spatial),
                                           self.spatial_encoder_value_proj(spatial), need_weights=False)
        return self.dropout(visual + self.out_norm(self.out_proj(attended)))


def mlp2x_gelu(d_in: int, d_out: int) -> nn.Sequential:
    """The projector: Linear -> GELU (erf) -> Linear; keys 0.* and 2.*."""
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))
