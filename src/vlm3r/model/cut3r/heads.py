"""CUT3R's output heads (docs/design.md, cut3r §4.8): three DPT decoders, the pose head and ``final_transform``.

VLM-3R never uses them (its tokens come before the heads); ``Cut3r.reconstruct`` does, to turn a video into a
camera path and a point cloud. Module names match the official state dict (``act_postprocess``,
``scratch.layer{k}_rn``, ``scratch.refinenet{k}``, ``head``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlm3r.model.cut3r.blocks import ConditionModulationBlock, Mlp
from vlm3r.model.cut3r.config import Cut3rConfig


@dataclass
class HeadOutputs:
    """Per-frame reconstruction (batch first)."""

    pts3d_in_self_view: torch.Tensor  # [B, H, W, 3] in the frame's camera
    conf_self: torch.Tensor  # [B, H, W]
    pts3d_in_other_view: torch.Tensor  # [B, H, W, 3] in the first frame's camera (the world)
    conf: torch.Tensor  # [B, H, W]
    rgb: torch.Tensor | None  # [B, H, W, 3] in [-1, 1]
    camera_pose: torch.Tensor  # [B, 7]: translation, then quaternion (w, x, y, z); camera-to-world


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """out = x0 + RCU1(x1); RCU2; upsample x2 (bilinear, align_corners=True); 1x1 conv."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class _Scratch(nn.Module):
    def __init__(self, layer_dims: tuple[int, ...], features: int):
        super().__init__()
        for k, dim in enumerate(layer_dims, start=1):
            setattr(self, f"layer{k}_rn", nn.Conv2d(dim, features, 3, padding=1, bias=False))
        for k in range(1, 5):
            setattr(self, f"refinenet{k}", FusionBlock(features))


class DPT(nn.Module):
    """Dense prediction from four token maps (encoder output and three decoder layers) to per-pixel channels."""

    def __init__(self, token_dims: tuple[int, ...], layer_dims: tuple[int, ...], features: int, last_dim: int,
                 out_channels: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        resample = [nn.ConvTranspose2d(layer_dims[0], layer_dims[0], 4, stride=4),
                    nn.ConvTranspose2d(layer_dims[1], layer_dims[1], 2, stride=2),
                    None,
                    nn.Conv2d(layer_dims[3], layer_dims[3], 3, stride=2, padding=1)]
        self.act_postprocess = nn.ModuleList([
            nn.Sequential(nn.Conv2d(token_dims[k], layer_dims[k], 1), *([resample[k]] if resample[k] else []))
            for k in range(4)])
        self.scratch = _Scratch(layer_dims, features)
        self.head = nn.Sequential(
            nn.Conv2d(features, last_dim, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(last_dim, last_dim, 3, padding=1), nn.ReLU(), nn.Conv2d(last_dim, out_channels, 1))

    def forward(self, tokens: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        h, w = image_size[0] // self.patch_size, image_size[1] // self.patch_size
        maps = [t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w) for t in tokens]
        s = self.scratch
        maps = [rn(post(m)) for m, post, rn in zip(maps, self.act_postprocess,
                                                   (s.layer1_rn, s.layer2_rn, s.layer3_rn, s.layer4_rn))]
        path = s.refinenet4(maps[3])[:, :, :maps[2].shape[2], :maps[2].shape[3]]
        path = s.refinenet3(path, maps[2])
        path = s.refinenet2(path, maps[1])
        path = s.refinenet1(path, maps[0])
        return self.head(path)


class PoseHead(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.mlp = Mlp(dim, dim * 4, out_features=7)

    def forward(self, pose_token: torch.Tensor) -> torch.Tensor:
        return self.mlp(pose_token)


def scale_by_expm1(xyz: torch.Tensor) -> torch.Tensor:
    """xyz / |xyz| * expm1(|xyz|): the heads' 'exp' mode for points and translations."""
    norm = xyz.norm(dim=-1, keepdim=True)
    return xyz / norm.clamp(min=1e-8) * torch.expm1(norm)


def postprocess_pose(raw: torch.Tensor) -> torch.Tensor:
    translation = scale_by_expm1(raw[..., :3])
    quaternion = raw[..., 3:7]
    quaternion = quaternion / quaternion.norm(dim=-1, keepdim=True)
    quaternion = torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)
    return torch.cat([translation, quaternion], dim=-1)


class DownstreamHead(nn.Module):
    def __init__(self, config: Cut3rConfig):
        super().__init__()
        c = config
        token_dims = (c.enc_embed_dim, c.dec_embed_dim, c.dec_embed_dim, c.dec_embed_dim)
        dpt = dict(token_dims=token_dims, layer_dims=c.dpt_layer_dims, features=c.dpt_feature_dim,
                   last_dim=c.dpt_last_dim, patch_size=c.patch_size)
        self.dpt_self = DPT(out_channels=4, **dpt)
        self.final_transform = nn.ModuleList([
            ConditionModulationBlock(c.dec_embed_dim, c.dec_num_heads, c.mlp_ratio, c.rope_base) for _ in range(2)])
        self.dpt_cross = DPT(out_channels=4, **dpt)
        self.dpt_rgb = DPT(out_channels=3, **dpt) if c.rgb_head else None
        self.pose_head = PoseHead(c.dec_embed_dim)
        self.hooks = c.hooks

    def forward(self, layers: list[torch.Tensor], patch_pos: torch.Tensor, image_size: tuple[int, int]
                ) -> HeadOutputs:
        """``layers``: dec[0] (encoder tokens) and every decoder layer (pose token first)."""
        last = layers[self.hooks[3]]
        pose_token, patches = last[:, 0], last[:, 1:]
        tokens = [layers[self.hooks[0]], layers[self.hooks[1]][:, 1:], layers[self.hooks[2]][:, 1:], patches]
        cross = patches
        for block in self.final_transform:
            cross = block(cross, pose_token, patch_pos)
        self_out = self.dpt_self(tokens, image_size).permute(0, 2, 3, 1)
        cross_out = self.dpt_cross(tokens[:3] + [cross], image_size).permute(0, 2, 3, 1)
        rgb = None
        if self.dpt_rgb is not None:
            rgb_raw = self.dpt_rgb(tokens, image_size).permute(0, 2, 3, 1)
            rgb = (torch.sigmoid(rgb_raw) * (1 - 2e-6) + 1e-6) * 2 - 1
        return HeadOutputs(
            pts3d_in_self_view=scale_by_expm1(self_out[..., :3]), conf_self=1 + self_out[..., 3].exp(),
            pts3d_in_other_view=scale_by_expm1(cross_out[..., :3]), conf=1 + cross_out[..., 3].exp(),
            rgb=rgb, camera_pose=postprocess_pose(self.pose_head(pose_token)))
