"""A scene as a 3D view draws it (issue #27, `vlm3r app`; the first part): its points cut to a budget that stays
fluid in a browser, every object's oriented box as 12 labelled edges, the camera path and each sampled frame's view
frustum, all as plain arrays in world metres (z up), so that any 3D front end (a GLB for gradio's Model3D, viser,
three.js) draws the same geometry, and tests check it without a browser. The geometry itself is
``vlm3r.geometry``'s (``box_corners``, ``frustum_points``)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vlm3r.datasets.pointcloud import read_point_cloud
from vlm3r.errors import InputError
from vlm3r.geometry.boxes import BOX_EDGES, box_corners
from vlm3r.geometry.camera import FRUSTUM_EDGES, frustum_points
from vlm3r.geometry.room import gravity_aligned_box
from vlm3r.scene import read_frame_metadata, read_scene_metadata
from vlm3r.scene.schema import SceneFrames, SceneMeta
from vlm3r.viz.scene_view import SceneViewError, find_scene

POINT_BUDGET = 200_000  # points sent to a browser view: a ScanNet scan (about 300k) is cut to this
FRUSTUM_DEPTH_M = 0.25  # metres: where a frame's frustum is cut, small beside a room
ARROW_HEAD_M = 0.15  # metres: the length of an arrow's two head strokes
ARROW_HEAD_ANGLE_DEG = 25.0  # degrees between an arrow's shaft and each head stroke
MARKER_M = 0.12  # metres: the half-length of the three strokes of a point marker (a 3D cross)
MIN_ROOM_POINTS = 3  # points needed to draw a room outline (its footprint needs a triangle)


@dataclass
class ScenePayload:
    """What a 3D view of one scene draws: ``points`` [N, 3] float32 with ``colors`` [N, 3] uint8 (at most the
    budget), ``boxes``: (label, edges [12, 2, 3]) per object, ``camera_path`` [F, 3] (the sampled frames' centres
    in order), ``frustums`` [F, 8, 2, 3] (each frame's view frustum as 8 edges), ``room``: the room's outline
    (the points' gravity-aligned box, [12, 2, 3]) and ``highlights``: line segments [n, 2, 3] by kind of
    ``HIGHLIGHT_KINDS`` (a question's evidence, ``with_evidence``), with ``notes`` saying what they show."""

    scene_name: str
    points: np.ndarray
    colors: np.ndarray
    boxes: list[tuple[str, np.ndarray]] = field(default_factory=list)
    camera_path: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    frustums: np.ndarray = field(default_factory=lambda: np.zeros((0, 8, 2, 3)))
    room: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 3)))
    highlights: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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


def room_outline(points: np.ndarray) -> np.ndarray:
    """The room as the 12 edges of its points' gravity-aligned box (vertical sides, least-area footprint; the box
    ``geometry.room`` centres a room with); no edges for fewer than ``MIN_ROOM_POINTS`` finite points."""
    points = np.asarray(points, dtype=np.float64)
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) < MIN_ROOM_POINTS:
        return np.zeros((0, 2, 3))
    return box_edges(box_corners(*gravity_aligned_box(points)))


def arrow_lines(start, end, head: float = ARROW_HEAD_M) -> np.ndarray:
    """An arrow from ``start`` to ``end`` as 3 segments [3, 2, 3]: the shaft, then two head strokes of length
    ``head`` at ``ARROW_HEAD_ANGLE_DEG`` to it, in the vertical plane through the shaft (in the x-z plane for a
    vertical arrow), so that an arrow across a room reads from above and from the side."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    shaft = end - start
    length = np.linalg.norm(shaft)
    if length == 0:
        raise InputError(f"an arrow needs two different points, got {start.tolist()} twice")
    back = -shaft / length
    side = np.cross(back, [0.0, 0.0, 1.0])
    side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-9 else np.array([0.0, 1.0, 0.0])
    normal = np.cross(side, back)  # in the vertical plane through the shaft, across it
    angle = np.radians(ARROW_HEAD_ANGLE_DEG)
    strokes = [end + head * (np.cos(angle) * back + sign * np.sin(angle) * normal) for sign in (1.0, -1.0)]
    return np.array([[start, end], [end, strokes[0]], [end, strokes[1]]])


def marker_lines(point, size: float = MARKER_M) -> np.ndarray:
    """A point as a 3D cross [3, 2, 3]: a stroke of ``2 * size`` along each world axis, centred on it."""
    point = np.asarray(point, dtype=np.float64)
    offsets = size * np.eye(3)
    return np.stack([np.stack([point - d, point + d]) for d in offsets])


def scene_payload(scene: SceneMeta, points: np.ndarray, colors: np.ndarray, frames: SceneFrames | None = None,
                  budget: int = POINT_BUDGET) -> ScenePayload:
    """One scene's view: its points cut to ``budget``, its room outline, its objects' boxes labelled by category,
    and, with ``frames``, the camera path and frustums.

    Args:
        scene: the scene's metadata (boxes).
        points, colors: its point cloud [N, 3] and colours [N, 3] (uint8).
        frames: its sampled frames' metadata (poses, intrinsics, image size), if any.
        budget: the most points sent.
    """
    kept, kept_colors = downsample(points, colors, budget)
    boxes = [(category, box_edges(box.corners)) for category, instances in scene.objects.items() for box in instances]
    payload = ScenePayload(scene.scene_name, kept.astype(np.float32), kept_colors.astype(np.uint8), boxes,
                           room=room_outline(points))
    if frames is not None:
        payload.camera_path = np.array([f.camera_center for f in frames.frames]).reshape(-1, 3)
        payload.frustums = frustum_edges(frames)
    return payload


def with_evidence(payload: ScenePayload, scene: SceneMeta, frames: SceneFrames | None, evidence: dict,
                  where: str = "evidence") -> ScenePayload:
    """The scene's view with a question's evidence (a record's ``evidence`` field, ``vlm3r.qa.evidence``) drawn
    over it: the boxes it is about, its frames' frustums, its measured segments, its arrows (with heads), its
    route and its points (as crosses); ``notes`` say in words what each shows. A box or frame the scene does not
    have is an error naming ``where`` and the field."""
    highlights: dict[str, list[np.ndarray]] = {kind: [] for kind in HIGHLIGHT_KINDS}
    notes = []
    for k, (category, index) in enumerate(evidence.get("objects", [])):
        boxes = scene.objects.get(category, [])
        if not 0 <= index < len(boxes):
            raise InputError(f"{where}: objects[{k}] is {category!r} #{index}, but scene {scene.scene_name} has "
                             f"{len(boxes)} {category!r} box(es)")
        highlights["evidence_boxes"].append(box_edges(boxes[index].corners))
        notes.append(f"object: {category}" + (f" #{index}" if len(boxes) > 1 else ""))
    by_id = {str(f.frame_id): f for f in frames.frames} if frames is not None else {}
    for k, frame_id in enumerate(evidence.get("frames", [])):
        if str(frame_id) not in by_id:
            raise InputError(f"{where}: frames[{k}] is frame {frame_id!r}, which scene {scene.scene_name}'s frame "
                             f"metadata does not have")
        frame = by_id[str(frame_id)]
        highlights["evidence_frustums"].append(frustum_points(
            frame.camera_to_world, frames.intrinsics.matrix, frames.image_width, frames.image_height,
            2 * FRUSTUM_DEPTH_M)[FRUSTUM_EDGES])
        notes.append(f"frame {frame_id}")
    for kind, noun in (("segments", "length"), ("arrows", "direction")):
        for item in evidence.get(kind, []):
            lines = [item["from"], item["to"]] if kind == "segments" else arrow_lines(item["from"], item["to"])
            highlights[kind].append(np.asarray(lines, dtype=np.float64).reshape(-1, 2, 3))
            notes.append(f"{noun}: {item['label']}" if item.get("label") else noun)
    if evidence.get("path"):
        highlights["path"].append(polyline(evidence["path"]))
        notes.append(f"route: {len(evidence['path'])} points")
    for item in evidence.get("points", []):
        highlights["markers"].append(marker_lines(item["at"]))
        notes.append(f"point: {item['label']}" if item.get("label") else "point")
    drawn = {kind: np.concatenate(parts).reshape(-1, 2, 3) for kind, parts in highlights.items() if parts}
    return replace(payload, highlights=drawn, notes=notes)


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
# Line colours (RGB, 0-255) by what they draw: the scene's own lines, then a question's evidence (HIGHLIGHT_KINDS),
# bright against the scene's, whose boxes turn grey while evidence is shown.
LINE_COLORS = {"room": (150, 150, 150), "boxes": (230, 60, 50), "frustums": (40, 110, 230),
               "camera_path": (40, 170, 70), "evidence_boxes": (255, 120, 0), "evidence_frustums": (150, 0, 200),
               "segments": (0, 0, 0), "arrows": (0, 150, 200), "path": (230, 0, 120), "markers": (110, 60, 0)}
DIMMED_BOX_COLOR = (185, 185, 185)  # the boxes a question is not about, while its evidence is shown
HIGHLIGHT_KINDS = ("evidence_boxes", "evidence_frustums", "segments", "arrows", "path", "markers")
# metres: a glTF line is one pixel wide in every viewer, so the GLB draws each evidence line again at these offsets
# (along each world axis), which reads as one bold line at a room's scale
BOLD_OFFSET_M = 0.006
BOLD_OFFSETS = np.vstack([np.zeros(3), BOLD_OFFSET_M * np.eye(3), -BOLD_OFFSET_M * np.eye(3)])


def polyline(points: np.ndarray) -> np.ndarray:
    """Consecutive points joined: [n - 1, 2, 3] segments (none for fewer than two points)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.stack([points[:-1], points[1:]], axis=1) if len(points) > 1 else np.zeros((0, 2, 3))


def _lines(payload: ScenePayload) -> dict[str, np.ndarray]:
    """Line segments [n, 2, 3] by what they draw (empty kinds left out), evidence last so that it is drawn over
    the scene."""
    found = {"room": payload.room,
             "boxes": np.concatenate([edges for _, edges in payload.boxes]) if payload.boxes else None,
             "frustums": payload.frustums.reshape(-1, 2, 3),
             "camera_path": polyline(payload.camera_path), **payload.highlights}
    return {kind: lines for kind, lines in found.items() if lines is not None and len(lines)}


def line_color(payload: ScenePayload, kind: str) -> tuple[int, int, int]:
    """The colour of a kind of line: the scene's boxes are greyed while a question's evidence is shown."""
    return DIMMED_BOX_COLOR if kind == "boxes" and payload.highlights else LINE_COLORS[kind]


def linear_bytes(srgb: np.ndarray) -> np.ndarray:
    """sRGB colours (0-255, as images and point clouds hold them) as linear ones (0-255), which glTF's COLOR_0
    is: a viewer encodes them back to sRGB on screen, so that they show as given (stored as they are, they show
    washed out). The sRGB transfer function of IEC 61966-2-1."""
    c = np.asarray(srgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.round(255.0 * linear).astype(np.uint8)


def glb_bytes(payload: ScenePayload) -> bytes:
    """The payload as one binary glTF: a point primitive (positions, colours) and a line primitive per kind of
    line (box edges, frustums, the camera path), each vertex coloured; world z up turned to glTF's y up by the
    scene node's rotation, so that any glTF viewer (gradio's Model3D) shows the room upright; colours stored linear
    (``linear_bytes``), as glTF defines them. Checked once with the
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
        rgba = np.concatenate([linear_bytes(colors), np.full((len(colors), 1), 255, np.uint8)], axis=1)
        primitives.append({"attributes": {"POSITION": add(positions.astype(np.float32), FLOAT),
                                          "COLOR_0": add(rgba, UNSIGNED_BYTE, True)},
                           "mode": mode})

    if len(payload.points):
        primitive(payload.points, payload.colors, POINTS_MODE)
    for kind, lines in _lines(payload).items():
        if kind in HIGHLIGHT_KINDS:
            lines = (lines[None] + BOLD_OFFSETS[:, None, None, :]).reshape(-1, 2, 3)
        vertices = lines.reshape(-1, 3)
        primitive(vertices, np.tile(np.array(line_color(payload, kind), np.uint8), (len(vertices), 1)), LINES_MODE)
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
