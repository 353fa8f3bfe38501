"""A scene as a 3D view draws it (issue #27, `vlm3r app`; the first part): its points cut to a budget that stays
fluid in a browser, every object's oriented box as 12 labelled edges, the camera path and each sampled frame's view
frustum, all as plain arrays in world metres (z up), so that any 3D front end (a GLB for gradio's Model3D, viser,
three.js) draws the same geometry, and tests check it without a browser. The geometry itself is
``vlm3r.geometry``'s (``box_corners``, ``frustum_points``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vlm3r.errors import InputError
from vlm3r.geometry.boxes import BOX_EDGES
from vlm3r.geometry.camera import FRUSTUM_EDGES, frustum_points
from vlm3r.scene.schema import SceneFrames, SceneMeta

POINT_BUDGET = 200_000  # points sent to a browser view: a ScanNet scan (about 300k) is cut to this
FRUSTUM_DEPTH_M = 0.25  # metres: where a frame's frustum is cut, small beside a room


@dataclass
class ScenePayload:
    """What a 3D view of one scene draws: ``points`` [N, 3] float32 with ``colors`` [N, 3] uint8 (at most the
    budget), ``boxes``: (label, edges [12, 2, 3]) per object, ``camera_path`` [F, 3] (the sampled frames' centres
    in order) and ``frustums`` [F, 8, 2, 3] (each frame's view frustum as 8 edges)."""

    scene_name: str
    points: np.ndarray
    colors: np.ndarray
    boxes: list[tuple[str, np.ndarray]] = field(default_factory=list)
    camera_path: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    frustums: np.ndarray = field(default_factory=lambda: np.zeros((0, 8, 2, 3)))


def downsample(points: np.ndarray, colors: np.ndarray, budget: int = POINT_BUDGET,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most ``budget`` of the points (and their colours): all of them when they fit, else a uniform random
    subset drawn with ``seed`` (the same scene always gives the same view), in the points' own order."""
    if budget < 1:
        raise InputError(f"budget: at least 1 point, got {budget}")
    points, colors = np.asarray(points), np.asarray(colors)
    if len(points) != len(colors):
        raise InputError(f"colors: one per point ({len(points)}), got {len(colors)}")
    if len(points) <= budget:
        return points, colors
    keep = np.sort(np.random.default_rng(seed).choice(len(points), budget, replace=False))
    return points[keep], colors[keep]


def box_edges(corners: np.ndarray) -> np.ndarray:
    """A box's 12 edges [12, 2, 3] from its 8 corners (``box_corners``' order)."""
    return np.asarray(corners)[BOX_EDGES]


def frustum_edges(frames: SceneFrames, depth: float = FRUSTUM_DEPTH_M) -> np.ndarray:
    """Every frame's view frustum as 8 edges: [F, 8, 2, 3]."""
    k = frames.intrinsics.matrix
    return np.stack([frustum_points(f.camera_to_world, k, frames.image_width, frames.image_height, depth)[FRUSTUM_EDGES]
                     for f in frames.frames]) if frames.frames else np.zeros((0, 8, 2, 3))


def scene_payload(scene: SceneMeta, points: np.ndarray, colors: np.ndarray, frames: SceneFrames | None = None,
                  budget: int = POINT_BUDGET) -> ScenePayload:
    """One scene's view: its points cut to ``budget``, its objects' boxes labelled by category, and, with
    ``frames``, the camera path and frustums.

    Args:
        scene: the scene's metadata (boxes).
        points, colors: its point cloud [N, 3] and colours [N, 3] (uint8).
        frames: its sampled frames' metadata (poses, intrinsics, image size), if any.
        budget: the most points sent.
    """
    kept, kept_colors = downsample(points, colors, budget)
    boxes = [(category, box_edges(box.corners)) for category, instances in scene.objects.items() for box in instances]
    payload = ScenePayload(scene.scene_name, kept.astype(np.float32), kept_colors.astype(np.uint8), boxes)
    if frames is not None:
        payload.camera_path = np.array([f.camera_center for f in frames.frames]).reshape(-1, 3)
        payload.frustums = frustum_edges(frames)
    return payload
