"""Scene and frame metadata from a processed dataset layout: the builder every dataset adapter shares.

Scene metadata comes from the labelled point cloud: one box per (category, instance) — the gravity-aligned box
with the smallest footprint around the instance's points — the room's floor area (alpha shape of all points'
x-y, see ``vlm3r.geometry.room``) and its centre. Frame metadata comes from the sampled frames: poses,
intrinsics, image size, and the 2D bounds of every instance in each mask.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from vlm3r.datasets.annotated import read_annotated_boxes
from vlm3r.datasets.layout import MASK_VALUE_OFFSET, ProcessedLayout
from vlm3r.datasets.pointcloud import read_point_cloud
from vlm3r.errors import SceneBuildError
from vlm3r.geometry import alpha_shape_area, gravity_aligned_box, rotation_problem
from vlm3r.scene import CameraIntrinsics, FrameMeta, InstanceBox2D, OrientedBox, SceneFrames, SceneMeta

log = logging.getLogger(__name__)

#: An instance needs at least this many points to define a box.
MIN_INSTANCE_POINTS = 4


def build_scene_meta(layout: ProcessedLayout, scene: str, label_names: dict[int, str],
                     dataset: str | None = None) -> SceneMeta:
    """Scene metadata of one scene: boxes as annotated when the dataset has them (``boxes/<split>/<scene>.json``),
    otherwise fitted to the labelled point cloud (labels not in ``label_names`` are ignored)."""
    ply_path = layout.point_cloud_path(scene)
    points = read_point_cloud(ply_path)
    if len(points.xyz) < 3:
        raise SceneBuildError(f"{ply_path}: only {len(points.xyz)} points")
    boxes_path = layout.boxes_path(scene)
    if boxes_path.is_file():
        boxes: dict[str, list[tuple[int, OrientedBox]]] = {}
        for b in read_annotated_boxes(boxes_path):
            box = OrientedBox.from_geometry(b.centroid, b.axes_lengths, b.normalized_axes, instance_id=b.instance_id)
            boxes.setdefault(b.category, []).append((b.instance_id, box))
    else:
        boxes = _fitted_boxes(points, label_names, ply_path)
    objects = {category: [box for _, box in sorted(found, key=lambda item: item[0])]
               for category, found in sorted(boxes.items())}
    room_center = gravity_aligned_box(points.xyz)[0]
    return SceneMeta.from_objects(
        scene, objects, room_size=alpha_shape_area(points.xyz[:, :2]), room_center=room_center,
        video_path=layout.relative(layout.video_path(scene)), dataset=dataset or layout.dataset, split=layout.split,
    )


def _fitted_boxes(points, label_names: dict[int, str], ply_path: Path) -> dict[str, list[tuple[int, OrientedBox]]]:
    """One box per (category, instance): the gravity-aligned box with the smallest footprint around its points."""
    labeled = np.isin(points.label, list(label_names))
    pairs = np.unique(np.stack([points.label[labeled], points.instance_id[labeled]], axis=1), axis=0)
    boxes: dict[str, list[tuple[int, OrientedBox]]] = {}
    for label, instance_id in pairs:
        mask = labeled & (points.label == label) & (points.instance_id == instance_id)
        instance_points = points.xyz[mask]
        if len(instance_points) < MIN_INSTANCE_POINTS:
            raise SceneBuildError(f"{ply_path}: instance {instance_id} ({label_names[label]}) has only "
                                  f"{len(instance_points)} points, too few for a box")
        center, lengths, axes = gravity_aligned_box(instance_points)
        if np.count_nonzero(lengths > 1e-4) < 2:
            raise SceneBuildError(f"{ply_path}: instance {instance_id} ({label_names[label]}) is degenerate "
                                  f"(box side lengths {np.round(lengths, 4).tolist()} m)")
        box = OrientedBox.from_geometry(center, lengths, axes, instance_id=int(instance_id))
        boxes.setdefault(label_names[label], []).append((int(instance_id), box))
    return boxes


def read_pose(path: Path) -> np.ndarray:
    """A 4x4 camera-to-world pose text file; non-finite or non-rigid poses raise SceneBuildError."""
    try:
        pose = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise SceneBuildError(f"{path}: unreadable pose ({exc})") from exc
    if pose.shape != (4, 4):
        raise SceneBuildError(f"{path}: pose must be 4x4, got shape {pose.shape}")
    if not np.all(np.isfinite(pose)):
        raise SceneBuildError(f"{path}: pose has non-finite values")
    problem = rotation_problem(pose[:3, :3])
    if problem:
        raise SceneBuildError(f"{path}: the pose's rotation is not a proper rotation: {problem}")
    return pose


def read_intrinsics(path: Path) -> CameraIntrinsics:
    """A 3x3 or 4x4 pinhole matrix text file."""
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise SceneBuildError(f"{path}: unreadable intrinsics ({exc})") from exc
    if matrix.shape not in ((3, 3), (4, 4)) or not np.all(np.isfinite(matrix)) or matrix[0, 0] <= 0 \
            or matrix[1, 1] <= 0:
        raise SceneBuildError(f"{path}: expected a 3x3 or 4x4 pinhole matrix with positive focal lengths")
    return CameraIntrinsics(float(matrix[0, 0]), float(matrix[1, 1]), float(matrix[0, 2]), float(matrix[1, 2]))


def mask_boxes(mask: np.ndarray, value_offset: int = MASK_VALUE_OFFSET) -> list[InstanceBox2D]:
    """Inclusive pixel bounds of every instance in a mask (pixel value = instance id + offset; 0 = none)."""
    boxes = []
    for value, found in enumerate(ndimage.find_objects(mask.astype(np.int64)), start=1):
        if found is None or value < value_offset:
            continue
        rows, cols = found
        boxes.append(InstanceBox2D(value - value_offset, (cols.start, rows.start, cols.stop - 1, rows.stop - 1)))
    return boxes


def build_scene_frames(layout: ProcessedLayout, scene: str) -> SceneFrames:
    """Frame metadata of one scene from its sampled frames; a missing or broken file raises SceneBuildError."""
    frame_ids = layout.frame_ids(scene)
    if not frame_ids:
        raise SceneBuildError(f"{layout.pose_dir(scene)}: no sampled frames")
    intrinsics = read_intrinsics(layout.intrinsic_path(scene))
    frames, size = [], None
    for frame_id in frame_ids:
        color, depth, instance = (layout.color_path(scene, frame_id), layout.depth_path(scene, frame_id),
                                  layout.instance_path(scene, frame_id))
        for path in (color, depth, instance):
            if not path.is_file():
                raise SceneBuildError(f"{path}: missing (frame {frame_id} of scene {scene})")
        try:
            with Image.open(color) as image:
                frame_size = image.size
            with Image.open(instance) as image:
                mask = np.asarray(image)
        except OSError as exc:
            raise SceneBuildError(f"{color.parent}: unreadable image for frame {frame_id} ({exc})") from exc
        if size is None:
            size = frame_size
        if frame_size != size or mask.shape[::-1] != size:
            raise SceneBuildError(f"{instance}: image sizes differ within the scene ({frame_size}, "
                                  f"{mask.shape[::-1]}, first frame {size})")
        frames.append(FrameMeta(
            frame_id=frame_id, camera_to_world=read_pose(layout.pose_path(scene, frame_id)),
            bboxes_2d=mask_boxes(mask), file_path_color=layout.relative(color),
            file_path_depth=layout.relative(depth),
        ))
    return SceneFrames(scene, intrinsics, size[0], size[1], frames, split=layout.split)
