"""Readers and writers for scene and frame metadata JSON, with validation that names file, scene and field.

Scene metadata comes in three variants (docs/design.md, data §2), all read into the same ``SceneMeta``:

- ``reference``: the ScanNet-style files the reference writes and vlm3r writes: per scene ``object_bboxes``,
  boxes with ``min``/``max`` and an optional ``instance_id``;
- ``arkitscenes``: the reference's ARKitScenes files: boxes with ``min_corner``/``max_corner``;
- ``vsibench``: the released VSI-Bench ``meta_info`` files: per scene ``object_bbox``, no instance ids.

Unknown keys are kept and written back, so a read/write round trip loses nothing (the writer always adds
``scene_name``). Non-finite numbers, wrong sizes, non-orthonormal axes and missing fields raise ``MetadataError``.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlm3r.errors import Vlm3rError
from vlm3r.geometry import rotation_problem
from vlm3r.scene.schema import CameraIntrinsics, FrameMeta, InstanceBox2D, OrientedBox, SceneFrames, SceneMeta
from vlm3r.utils.fileio import atomic_write_text


class MetadataError(Vlm3rError):
    """Malformed metadata; the message names the file, the scene and the field."""

    def __init__(self, path: Path | str, problem: str, scene: str | None = None, field: str | None = None):
        self.path, self.scene, self.field, self.problem = Path(path), scene, field, problem
        where = [str(path)]
        if scene is not None:
            where.append(f"scene {scene!r}")
        if field is not None:
            where.append(f"field {field}")
        super().__init__(": ".join(where) + f": {problem}")


class SceneMetadataFormat(str, enum.Enum):
    REFERENCE = "reference"
    ARKITSCENES = "arkitscenes"
    VSIBENCH = "vsibench"


@dataclass
class SceneMetadata:
    """A scene metadata file's content: scenes by name, and the variant it was read in."""

    scenes: dict[str, SceneMeta]
    format: SceneMetadataFormat = SceneMetadataFormat.REFERENCE

    def write(self, path: Path | str, format: SceneMetadataFormat | str | None = None) -> None:
        write_scene_metadata(path, self.scenes.values(), format or self.format)


_SCENE_KEYS = ("video_path", "dataset", "room_size", "room_center", "object_counts", "object_bboxes", "object_bbox",
               "scene_name", "split")
_BOX_KEYS = ("centroid", "axesLengths", "normalizedAxes", "min", "max", "min_corner", "max_corner", "instance_id")
_FRAME_SCENE_KEYS = ("camera_intrinsics", "img_width", "img_height", "frames", "split", "scene_name")
_FRAME_KEYS = ("frame_id", "file_path_color", "file_path_depth", "file_path_mask", "camera_pose_camera_to_world",
               "bboxes_2d")


class _Context:
    """Where a value came from, for error messages."""

    def __init__(self, path: Path, scene: str | None = None):
        self.path, self.scene = path, scene

    def error(self, field: str | None, problem: str) -> MetadataError:
        return MetadataError(self.path, problem, self.scene, field)

    def require(self, mapping: Any, key: str, field_prefix: str = "") -> Any:
        if not isinstance(mapping, dict):
            raise self.error(field_prefix or None, f"expected an object, got {type(mapping).__name__}")
        if key not in mapping:
            raise self.error(field_prefix + key, "missing")
        return mapping[key]

    def number(self, value: Any, field: str, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise self.error(field, f"non-finite value {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(field, f"must be >= {minimum}, got {value!r}")
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r}")
        return value

    def vector(self, value: Any, size: int, field: str, minimum: float | None = None) -> np.ndarray:
        if not isinstance(value, (list, tuple)):
            raise self.error(field, f"expected a list of {size} numbers, got {type(value).__name__}")
        if len(value) != size:
            raise self.error(field, f"expected {size} numbers, got {len(value)}")
        return np.array([self.number(v, f"{field}[{i}]", minimum) for i, v in enumerate(value)], dtype=np.float64)

    def matrix(self, value: Any, rows: int, cols: int, field: str) -> np.ndarray:
        if not isinstance(value, (list, tuple)) or len(value) != rows:
            raise self.error(field, f"expected a {rows}x{cols} matrix (list of {rows} rows)")
        return np.stack([self.vector(row, cols, f"{field}[{i}]") for i, row in enumerate(value)])

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, got {value!r}")
        return value

    def optional_strings(self, mapping: dict, keys: tuple[str, ...]) -> dict[str, str | None]:
        """Each of ``keys`` that may be absent or null, as text."""
        return {key: self.optional_string(mapping, key) for key in keys}

    def optional_string(self, mapping: dict, key: str) -> str | None:
        value = mapping.get(key)
        return None if value is None else self.string(value, key)


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise MetadataError(path, "no such file")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise MetadataError(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise MetadataError(path, f"not UTF-8 text ({exc.reason})") from exc


def _top_level(path: Path, data: Any) -> dict[str, dict]:
    if not isinstance(data, dict):
        raise MetadataError(path, f"expected an object mapping scene names to scenes, got {type(data).__name__}")
    for scene_name, scene in data.items():
        if not isinstance(scene, dict):
            raise MetadataError(path, f"expected an object, got {type(scene).__name__}", scene_name)
    return data


# ----------------------------------------------------------------------------------------------- scene metadata


def read_scene_metadata(path: Path | str) -> SceneMetadata:
    """Read a scene metadata file of any supported variant."""
    path = Path(path)
    raw = _top_level(path, _load_json(path))
    scenes: dict[str, SceneMeta] = {}
    formats: set[SceneMetadataFormat] = set()
    for scene_name, scene_raw in raw.items():
        scene, scene_format = _parse_scene(_Context(path, scene_name), scene_name, scene_raw)
        scenes[scene_name] = scene
        formats.add(scene_format)
    if len(formats) > 1:
        raise MetadataError(path, f"mixes metadata variants {sorted(f.value for f in formats)}")
    return SceneMetadata(scenes, formats.pop() if formats else SceneMetadataFormat.REFERENCE)


def _parse_scene(ctx: _Context, scene_name: str, raw: dict) -> tuple[SceneMeta, SceneMetadataFormat]:
    if "object_bboxes" in raw and "object_bbox" in raw:
        raise ctx.error("object_bboxes", "both 'object_bboxes' and 'object_bbox' present")
    boxes_key = "object_bbox" if "object_bbox" in raw else "object_bboxes"
    boxes_raw = ctx.require(raw, boxes_key)
    if not isinstance(boxes_raw, dict):
        raise ctx.error(boxes_key, "expected an object mapping categories to lists of boxes")
    counts_raw = ctx.require(raw, "object_counts")
    if not isinstance(counts_raw, dict):
        raise ctx.error("object_counts", "expected an object mapping categories to counts")
    counts = {c: ctx.integer(n, f"object_counts[{c!r}]") for c, n in counts_raw.items()}
    for category, count in counts.items():
        if count < 0:
            raise ctx.error(f"object_counts[{category!r}]", f"negative count {count}")
    objects: dict[str, list[OrientedBox]] = {}
    box_formats = set()
    for category, box_list in boxes_raw.items():
        if not isinstance(box_list, list):
            raise ctx.error(f"{boxes_key}[{category!r}]", "expected a list of boxes")
        parsed = []
        for i, box_raw in enumerate(box_list):
            box, uses_corner_keys = _parse_box(ctx, f"{boxes_key}[{category!r}][{i}]", box_raw)
            parsed.append(box)
            box_formats.add(uses_corner_keys)
        objects[category] = parsed
    if boxes_key == "object_bbox":
        scene_format = SceneMetadataFormat.VSIBENCH
    elif True in box_formats:
        scene_format = SceneMetadataFormat.ARKITSCENES
    else:
        scene_format = SceneMetadataFormat.REFERENCE
    if "scene_name" in raw and raw["scene_name"] != scene_name:
        raise ctx.error("scene_name", f"{raw['scene_name']!r} differs from the scene's key {scene_name!r}")
    room_size = float(ctx.number(ctx.require(raw, "room_size"), "room_size", minimum=0))
    room_center = ctx.vector(ctx.require(raw, "room_center"), 3, "room_center")
    scene = SceneMeta(scene_name, room_size, room_center, counts, objects,
                      **ctx.optional_strings(raw, ("video_path", "dataset", "split")),
                      extra={k: v for k, v in raw.items() if k not in _SCENE_KEYS})
    return scene, scene_format


def _parse_box(ctx: _Context, field: str, raw: Any) -> tuple[OrientedBox, bool]:
    if not isinstance(raw, dict):
        raise ctx.error(field, f"expected a box object, got {type(raw).__name__}")
    centroid = ctx.vector(ctx.require(raw, "centroid", field + "."), 3, field + ".centroid")
    lengths = ctx.vector(ctx.require(raw, "axesLengths", field + "."), 3, field + ".axesLengths", minimum=0)
    axes = ctx.vector(ctx.require(raw, "normalizedAxes", field + "."), 9, field + ".normalizedAxes").reshape(3, 3)
    problem = rotation_problem(axes, proper=False)
    if problem:
        raise ctx.error(field + ".normalizedAxes", f"rows are {problem}")
    uses_corner_keys = "min_corner" in raw or "max_corner" in raw
    lo_key, hi_key = ("min_corner", "max_corner") if uses_corner_keys else ("min", "max")
    derived = OrientedBox.from_geometry(centroid, lengths, axes)
    aabb_min = ctx.vector(raw[lo_key], 3, f"{field}.{lo_key}") if lo_key in raw else derived.aabb_min
    aabb_max = ctx.vector(raw[hi_key], 3, f"{field}.{hi_key}") if hi_key in raw else derived.aabb_max
    if np.any(aabb_min > aabb_max):
        raise ctx.error(f"{field}.{lo_key}", f"{lo_key} exceeds {hi_key} on some axis")
    instance_id = raw.get("instance_id")
    if instance_id is not None:
        instance_id = ctx.integer(instance_id, field + ".instance_id")
    box = OrientedBox(centroid, lengths, axes, aabb_min, aabb_max, instance_id,
                      extra={k: v for k, v in raw.items() if k not in _BOX_KEYS})
    return box, uses_corner_keys


def scene_to_dict(scene: SceneMeta, format: SceneMetadataFormat | str = SceneMetadataFormat.REFERENCE) -> dict:
    """The JSON object of one scene in the given variant (key order as the reference writes it)."""
    format = SceneMetadataFormat(format)
    out: dict[str, Any] = {}
    if scene.video_path is not None:
        out["video_path"] = scene.video_path
    if scene.dataset is not None:
        out["dataset"] = scene.dataset
    out["room_size"] = float(scene.room_size)
    out["room_center"] = _floats(scene.room_center)
    out["object_counts"] = dict(scene.object_counts)
    boxes_key = "object_bbox" if format is SceneMetadataFormat.VSIBENCH else "object_bboxes"
    out[boxes_key] = {category: [_box_to_dict(box, format) for box in boxes]
                      for category, boxes in scene.objects.items()}
    out["scene_name"] = scene.scene_name
    if scene.split is not None:
        out["split"] = scene.split
    out.update(scene.extra)
    return out


def _box_to_dict(box: OrientedBox, format: SceneMetadataFormat) -> dict:
    lo_key, hi_key = ("min_corner", "max_corner") if format is SceneMetadataFormat.ARKITSCENES else ("min", "max")
    out = {
        "centroid": _floats(box.centroid),
        "axesLengths": _floats(box.axes_lengths),
        "normalizedAxes": _floats(box.normalized_axes.reshape(9)),
        lo_key: _floats(box.aabb_min),
        hi_key: _floats(box.aabb_max),
    }
    if box.instance_id is not None and format is not SceneMetadataFormat.VSIBENCH:
        out["instance_id"] = int(box.instance_id)
    out.update(box.extra)
    return out


def write_scene_metadata(path: Path | str, scenes, format: SceneMetadataFormat | str = SceneMetadataFormat.REFERENCE
                         ) -> None:
    """Write scenes (an iterable of ``SceneMeta``) atomically as one metadata file."""
    data = {scene.scene_name: scene_to_dict(scene, format) for scene in scenes}
    atomic_write_text(Path(path), json.dumps(data, indent=4, allow_nan=False))


# ----------------------------------------------------------------------------------------------- frame metadata


def read_frame_metadata(path: Path | str) -> dict[str, SceneFrames]:
    """Read a frame metadata file: scene name -> sampled frames with poses and 2D instance boxes."""
    path = Path(path)
    raw = _top_level(path, _load_json(path))
    return {name: _parse_scene_frames(_Context(path, name), name, scene_raw) for name, scene_raw in raw.items()}


def _parse_scene_frames(ctx: _Context, scene_name: str, raw: dict) -> SceneFrames:
    intr_raw = ctx.require(raw, "camera_intrinsics")
    intrinsics = CameraIntrinsics(**{
        k: float(ctx.number(ctx.require(intr_raw, k, "camera_intrinsics."), f"camera_intrinsics.{k}"))
        for k in ("fx", "fy", "cx", "cy")
    })
    if intrinsics.fx <= 0 or intrinsics.fy <= 0:
        raise ctx.error("camera_intrinsics", f"focal lengths must be positive, got fx={intrinsics.fx}, "
                                             f"fy={intrinsics.fy}")
    width = ctx.integer(ctx.require(raw, "img_width"), "img_width")
    height = ctx.integer(ctx.require(raw, "img_height"), "img_height")
    if width <= 0 or height <= 0:
        raise ctx.error("img_width", f"image size must be positive, got {width}x{height}")
    frames_raw = ctx.require(raw, "frames")
    if not isinstance(frames_raw, list):
        raise ctx.error("frames", "expected a list of frames")
    frames = [_parse_frame(ctx, f"frames[{i}]", frame_raw) for i, frame_raw in enumerate(frames_raw)]
    _check_frame_order(ctx, frames)
    if "scene_name" in raw and raw["scene_name"] != scene_name:
        raise ctx.error("scene_name", f"{raw['scene_name']!r} differs from the scene's key {scene_name!r}")
    return SceneFrames(scene_name, intrinsics, width, height, frames, split=ctx.optional_string(raw, "split"),
                       extra={k: v for k, v in raw.items() if k not in _FRAME_SCENE_KEYS})


def _check_frame_order(ctx: _Context, frames: list[FrameMeta]) -> None:
    """Video frame indices must increase: questions number frames by their position ("frame 2 of 32"), so a
    frame out of order would be named wrongly. (String ids, ScanNet++ DSLR images, have no video order.)"""
    ids = [f.frame_id for f in frames]
    if not all(isinstance(i, int) for i in ids):
        return
    for k in range(1, len(ids)):
        if ids[k] <= ids[k - 1]:
            raise ctx.error(f"frames[{k}].frame_id", f"{ids[k]} after {ids[k - 1]}: frames must be in ascending "
                                                     "video order, each once")


def _parse_frame(ctx: _Context, field: str, raw: Any) -> FrameMeta:
    if not isinstance(raw, dict):
        raise ctx.error(field, f"expected a frame object, got {type(raw).__name__}")
    frame_id = ctx.require(raw, "frame_id", field + ".")
    if isinstance(frame_id, bool) or not isinstance(frame_id, (int, str)):
        raise ctx.error(field + ".frame_id", f"expected an integer or string, got {frame_id!r}")
    pose_field = field + ".camera_pose_camera_to_world"
    pose = ctx.matrix(ctx.require(raw, "camera_pose_camera_to_world", field + "."), 4, 4, pose_field)
    problem = rotation_problem(pose[:3, :3])
    if problem:
        raise ctx.error(pose_field, f"its rotation is not a proper rotation: {problem}")
    if not np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6):
        raise ctx.error(pose_field, f"last row must be [0, 0, 0, 1], got {pose[3].tolist()}")
    boxes_raw = raw.get("bboxes_2d", [])
    if not isinstance(boxes_raw, list):
        raise ctx.error(field + ".bboxes_2d", "expected a list")
    boxes = []
    for j, box_raw in enumerate(boxes_raw):
        box_field = f"{field}.bboxes_2d[{j}]"
        instance_id = ctx.integer(ctx.require(box_raw, "instance_id", box_field + "."), box_field + ".instance_id")
        bbox = ctx.vector(ctx.require(box_raw, "bbox_2d", box_field + "."), 4, box_field + ".bbox_2d")
        if bbox[0] > bbox[2] or bbox[1] > bbox[3]:
            raise ctx.error(box_field + ".bbox_2d", f"expected [xmin, ymin, xmax, ymax], got {bbox.tolist()}")
        boxes.append(InstanceBox2D(instance_id, tuple(_number_as_stored(v) for v in box_raw["bbox_2d"])))
    return FrameMeta(frame_id, pose, boxes,
                     **ctx.optional_strings(raw, ("file_path_color", "file_path_depth", "file_path_mask")),
                     extra={k: v for k, v in raw.items() if k not in _FRAME_KEYS})


def scene_frames_to_dict(scene: SceneFrames) -> dict:
    """The JSON object of one scene's frames (reference key order)."""
    intr = scene.intrinsics
    out: dict[str, Any] = {
        "camera_intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy},
        "img_width": int(scene.image_width),
        "img_height": int(scene.image_height),
        "frames": [_frame_to_dict(frame) for frame in scene.frames],
        "scene_name": scene.scene_name,
    }
    if scene.split is not None:
        out["split"] = scene.split
    out.update(scene.extra)
    return out


def _frame_to_dict(frame: FrameMeta) -> dict:
    out: dict[str, Any] = {"frame_id": frame.frame_id}
    for key in ("file_path_color", "file_path_depth", "file_path_mask"):
        if getattr(frame, key) is not None:
            out[key] = getattr(frame, key)
    out["camera_pose_camera_to_world"] = [_floats(row) for row in frame.camera_to_world]
    out["bboxes_2d"] = [{"instance_id": int(b.instance_id), "bbox_2d": [_number_as_stored(v) for v in b.bbox]}
                        for b in frame.bboxes_2d]
    out.update(frame.extra)
    return out


def write_frame_metadata(path: Path | str, scenes) -> None:
    """Write scenes' frames (an iterable of ``SceneFrames``) atomically as one frame metadata file."""
    data = {scene.scene_name: scene_frames_to_dict(scene) for scene in scenes}
    atomic_write_text(Path(path), json.dumps(data, indent=4, allow_nan=False))


# ----------------------------------------------------------------------------------------------- helpers


def detect_metadata_kind(path: Path | str) -> str:
    """'scene' or 'frame': which kind of metadata file ``path`` holds (by its first scene's keys)."""
    path = Path(path)
    raw = _top_level(path, _load_json(path))
    first = next(iter(raw.values()), {})
    return "frame" if "frames" in first else "scene"


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _number_as_stored(value) -> int | float:
    """Integers stay integers (pixel bounds are written as ints), everything else becomes a float."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return float(value)
