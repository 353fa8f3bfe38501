"""A scene as a 3D view draws it (issue #27, `vlm3r app`; the first part): its points cut to a budget that stays
fluid in a browser, every object's oriented box as 12 labelled edges, the camera path and each sampled frame's view
frustum, all as plain arrays in world metres (z up), so that any 3D front end (a GLB for gradio's Model3D, viser,
three.js) draws the same geometry, and tests check it without a browser. The geometry itself is
``vlm3r.geometry``'s (``box_corners``, ``frustum_points``)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlm3r.datasets.pointcloud import read_point_cloud
from vlm3r.errors import InputError
from vlm3r.geometry.boxes import BOX_EDGES
from vlm3r.geometry.camera import FRUSTUM_EDGES, frustum_points
from vlm3r.scene import read_frame_metadata, read_scene_metadata
from vlm3r.scene.schema import SceneFrames, SceneMeta
from vlm3r.viz.scene_view import SceneViewError, find_scene

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


def scene_view(scene_dir: Path | str, budget: int = POINT_BUDGET) -> ScenePayload:
    """The view of a processed dataset's scene, ``DATASET_ROOT/SCENE`` (as ``vlm3r scenes show`` names it): its
    metadata's boxes, its point cloud cut to ``budget`` and its sampled frames; a missing part is an error naming
    the file."""
    layout, scene = find_scene(scene_dir)
    meta = read_scene_metadata(layout.scene_metadata_path).scenes[scene]
    frames = read_frame_metadata(layout.frame_metadata_path).get(scene)
    if frames is None:
        raise SceneViewError(f"{layout.frame_metadata_path}: no frames of scene {scene!r} in this frame metadata")
    cloud = read_point_cloud(layout.point_cloud_path(scene))
    return scene_payload(meta, cloud.xyz, cloud.rgb, frames, budget)


# ---------------------------------------------------------------------- GLB (binary glTF 2.0)
GLB_MAGIC, GLB_VERSION = 0x46546C67, 2  # "glTF"
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942  # "JSON", "BIN\0"
POINTS_MODE, LINES_MODE = 0, 1  # glTF primitive modes
FLOAT, UNSIGNED_BYTE = 5126, 5121  # glTF component types
ARRAY_BUFFER = 34962  # a buffer view's target: vertex attributes
Z_UP_TO_Y_UP = [-0.7071067811865476, 0.0, 0.0, 0.7071067811865476]  # a quarter turn about x: glTF is y-up
# Line colours (RGB, 0-255) by what they draw.
LINE_COLORS = {"boxes": (230, 60, 50), "frustums": (40, 110, 230), "camera_path": (40, 170, 70)}


def _lines(payload: ScenePayload) -> dict[str, np.ndarray]:
    """Line segments [n, 2, 3] by what they draw (empty kinds left out)."""
    path = payload.camera_path
    found = {"boxes": np.concatenate([edges for _, edges in payload.boxes]) if payload.boxes else None,
             "frustums": payload.frustums.reshape(-1, 2, 3) if len(payload.frustums) else None,
             "camera_path": np.stack([path[:-1], path[1:]], axis=1) if len(path) > 1 else None}
    return {kind: lines for kind, lines in found.items() if lines is not None}


def glb_bytes(payload: ScenePayload) -> bytes:
    """The payload as one binary glTF: a point primitive (positions, colours) and a line primitive per kind of
    line (box edges, frustums, the camera path), each vertex coloured; world z up turned to glTF's y up by the
    scene node's rotation, so that any glTF viewer (gradio's Model3D) shows the room upright. Checked once with the
    Khronos glTF validator (npm gltf-validator): no errors, no warnings."""
    blobs, views, accessors, primitives = [], [], [], []

    def add(array: np.ndarray, component: int, normalized: bool = False) -> int:
        data = np.ascontiguousarray(array).tobytes()
        offset = sum(len(b) for b in blobs)
        blobs.append(data + b"\0" * (-len(data) % 4))  # every view starts 4-byte aligned
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data), "target": ARRAY_BUFFER})
        accessor = {"bufferView": len(views) - 1, "componentType": component, "count": len(array),
                    "type": f"VEC{array.shape[1]}"}
        if normalized:
            accessor["normalized"] = True
        if component == FLOAT:  # POSITION accessors must state their bounds
            accessor["min"], accessor["max"] = array.min(axis=0).tolist(), array.max(axis=0).tolist()
        accessors.append(accessor)
        return len(accessors) - 1

    def primitive(positions: np.ndarray, colors: np.ndarray, mode: int) -> None:
        # colours as RGBA bytes: each vertex's attribute must fill whole 4-byte words (RGB bytes would not)
        rgba = np.concatenate([colors.astype(np.uint8), np.full((len(colors), 1), 255, np.uint8)], axis=1)
        primitives.append({"attributes": {"POSITION": add(positions.astype(np.float32), FLOAT),
                                          "COLOR_0": add(rgba, UNSIGNED_BYTE, True)},
                           "mode": mode})

    if len(payload.points):
        primitive(payload.points, payload.colors, POINTS_MODE)
    for kind, lines in _lines(payload).items():
        vertices = lines.reshape(-1, 3)
        primitive(vertices, np.tile(np.array(LINE_COLORS[kind], np.uint8), (len(vertices), 1)), LINES_MODE)
    if not primitives:
        raise InputError(f"scene {payload.scene_name}: nothing to draw (no points, boxes or frames)")
    binary = b"".join(blobs)
    gltf = {"asset": {"version": "2.0", "generator": "vlm3r"}, "scene": 0, "scenes": [{"nodes": [0]}],
            "nodes": [{"mesh": 0, "rotation": Z_UP_TO_Y_UP, "name": payload.scene_name}],
            "meshes": [{"primitives": primitives}], "buffers": [{"byteLength": len(binary)}],
            "bufferViews": views, "accessors": accessors}
    text = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), CHUNK_JSON) + text + struct.pack("<II", len(binary), CHUNK_BIN) + binary
    return struct.pack("<III", GLB_MAGIC, GLB_VERSION, 12 + len(chunks)) + chunks
