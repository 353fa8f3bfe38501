"""A video reconstructed by CUT3R on its own: the most confident points of every sampled frame, in the first
camera's frame and coloured by their pixels, and each frame's camera-to-world pose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vlm3r.errors import InputError
from vlm3r.model.cut3r.geometry import pose_to_matrix
from vlm3r.model.cut3r.model import Cut3r
from vlm3r.model.video import cut3r_pixels, siglip_pixels
from vlm3r.utils.video import read_video_frames


@dataclass(frozen=True)
class Reconstruction:
    points: np.ndarray  # [N, 3] float32, in the first camera's frame (CUT3R's model units)
    colors: np.ndarray  # [N, 3] uint8, the colour of each point's pixel
    camera_to_world: np.ndarray  # [F, 4, 4] float32, one per sampled frame
    frame_indices: np.ndarray  # [F] the video frames sampled
    non_finite: int  # points left out because their coordinates or confidence were not finite

    @property
    def path_length(self) -> float:
        """Length of the camera path, summed over consecutive frames (model units)."""
        return float(np.linalg.norm(np.diff(self.camera_to_world[:, :3, 3], axis=0), axis=1).sum())

    def cameras(self) -> dict:
        """The camera path as JSON-ready data (the ``<out>.cameras.json`` of ``vlm3r cut3r reconstruct``)."""
        return {"frame_indices": self.frame_indices.tolist(), "camera_to_world": self.camera_to_world.tolist()}


def most_confident(confidence: np.ndarray, finite: np.ndarray, keep: float) -> np.ndarray:
    """Indices of the ``keep`` share of points, most confident first (ties in input order), finite ones only."""
    order = np.argsort(-np.where(finite, confidence, -np.inf), kind="stable")
    chosen = order[: max(1, int(round(keep * len(confidence))))]
    return chosen[finite[chosen]]


def reconstruct_video(model: Cut3r, video: Path | str, num_frames: int, keep: float) -> Reconstruction:
    """Sample ``num_frames`` frames of ``video`` as VLM-3R does, run CUT3R with its heads on them and keep the
    ``keep`` share (0-1] of the points, most confident first."""
    if not 0 < keep <= 1:
        raise InputError(f"keep: must be in (0, 1], got {keep}")
    rgb, indices, _ = read_video_frames(video, num_frames)
    param = model.pose_token
    pixels = cut3r_pixels(siglip_pixels(rgb)).to(device=param.device, dtype=param.dtype)
    with torch.inference_mode():
        _, _, heads = model.reconstruct(pixels)
    points = torch.cat([h.pts3d_in_other_view[0].reshape(-1, 3) for h in heads]).float().cpu().numpy()
    confidence = torch.cat([h.conf[0].reshape(-1) for h in heads]).float().cpu().numpy()
    colors = ((pixels.float().cpu().permute(0, 2, 3, 1).reshape(-1, 3).numpy() + 1) * 127.5).round()
    finite = np.isfinite(points).all(axis=1) & np.isfinite(confidence)
    chosen = most_confident(confidence, finite, keep)
    poses = pose_to_matrix(torch.cat([h.camera_pose for h in heads]).float()).cpu().numpy()
    return Reconstruction(points[chosen], colors[chosen].astype(np.uint8), poses, indices, int((~finite).sum()))
