"""Turning CUT3R's head outputs into cameras and point clouds."""

from __future__ import annotations

import torch


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] from unit quaternions [..., 4] ordered (w, x, y, z)."""
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def pose_to_matrix(camera_pose: torch.Tensor) -> torch.Tensor:
    """4x4 camera-to-world matrices from CUT3R's [t(3), q(4)] pose encoding."""
    out = torch.zeros(*camera_pose.shape[:-1], 4, 4, dtype=camera_pose.dtype, device=camera_pose.device)
    out[..., :3, :3] = quaternion_to_matrix(camera_pose[..., 3:7])
    out[..., :3, 3] = camera_pose[..., :3]
    out[..., 3, 3] = 1
    return out
