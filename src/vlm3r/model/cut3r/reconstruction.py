"""A video reconstructed by CUT3R on its own: the most confident points of every sampled frame, in the first
camera's frame and coloured by their pixels, and each frame's camera-to-world pose.

Units: CUT3R's released checkpoint (``cut3r_512_dpt_4_64``) was trained with ``norm_mode='?avg_dis'``, which leaves
the points of its metric datasets (ScanNet, ARKitScenes, ...) unscaled, so it predicts metres; nothing here
calibrates them, and VLM-3R's square 432x432 frames are a shape CUT3R was not trained on (docs/cut3r.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vlm3r.errors import InputError
from vlm3r.model.cut3r.geometry import pose_to_matrix
from vlm3r.model.cut3r.model import Cut3r
from vlm3r.model.video import cut3r_pixels, siglip_pixels
from vlm3r.utils.video import read_video_frames

UNITS = "metres, as CUT3R's metric-scale training gives them, not calibrated"
UNIT_SYMBOL = "m"


@dataclass(frozen=True)
class Reconstruction:
    points: np.ndarray  # [N, 3] float32, in the first camera's frame (metres: UNITS)
    colors: np.ndarray  # [N, 3] uint8, the colour of each point's pixel
    camera_to_world: np.ndarray  # [F, 4, 4] float32, one per sampled frame (OpenCV axes, translation in metres)
    frame_indices: np.ndarray  # [F] the video frames sampled
    non_finite: int  # points left out because their coordinates or confidence were not finite

    @property
    def path_length(self) -> float:
        """Length of the camera path, summed over consecutive frames (metres: UNITS)."""
        return float(np.linalg.norm(np.diff(self.camera_to_world[:, :3, 3], axis=0), axis=1).sum())

    def cameras(self) -> dict:
        """The camera path as JSON-ready data (the ``<out>.cameras.json`` of ``vlm3r cut3r reconstruct``): the
        units, each sampled frame's index, camera centre and camera-to-world matrix."""
        return {"units": UNITS, "frame_indices": self.frame_indices.tolist(),
                "positions": self.camera_to_world[:, :3, 3].tolist(),
                "camera_to_world": self.camera_to_world.tolist()}


def most_confident(confidence: np.ndarray, finite: np.ndarray, keep: float) -> np.ndarray:
    """Indices of the ``keep`` share of points with the highest confidence (ties in input order), finite ones
    only, in ascending order (frame by frame, row-major pixels within a frame)."""
    order = np.argsort(-np.where(finite, confidence, -np.inf), kind="stable")
    chosen = order[: max(1, int(round(keep * len(confidence))))]
    return np.sort(chosen[finite[chosen]])


def reconstruct_video(model: Cut3r, video: Path | str, num_frames: int, keep: float,
                      progress: Callable[[int, int], None] | None = None) -> Reconstruction:
    """Sample ``num_frames`` frames of ``video`` as VLM-3R does, run CUT3R with its heads on them and keep the
    ``keep`` share (0-1] of the points, most confident first. ``progress(done, total)`` is called with 0 once
    the frames are read (before the encoder runs on all of them), then after each frame."""
    if not 0 < keep <= 1:
        raise InputError(f"keep: must be in (0, 1], got {keep}")
    rgb, indices, _ = read_video_frames(video, num_frames)
    total = len(indices)
    if progress is not None:
        progress(0, total)
    param = model.pose_token
    pixels = cut3r_pixels(siglip_pixels(rgb)).to(device=param.device, dtype=param.dtype)
    with torch.inference_mode():
        _, _, heads = model.reconstruct(pixels, None if progress is None else lambda done: progress(done, total))
    points = torch.cat([h.pts3d_in_other_view[0].reshape(-1, 3) for h in heads]).float().cpu().numpy()
    confidence = torch.cat([h.conf[0].reshape(-1) for h in heads]).float().cpu().numpy()
    colors = ((pixels.float().cpu().permute(0, 2, 3, 1).reshape(-1, 3).numpy() + 1) * 127.5).round()
    finite = np.isfinite(points).all(axis=1) & np.isfinite(confidence)
    chosen = most_confident(confidence, finite, keep)
    poses = pose_to_matrix(torch.cat([h.camera_pose for h in heads]).float()).cpu().numpy()
    return Reconstruction(points[chosen], colors[chosen].astype(np.uint8), poses, indices, int((~finite).sum()))
