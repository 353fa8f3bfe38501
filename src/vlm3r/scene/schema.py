"""Typed scene and frame metadata: the interchange format between dataset adapters and question generators.

The on-disk layout is the reference's (docs/design.md, data §2-3); see ``vlm3r.scene.io`` for the
readers and writers of its three variants. Geometry is metric, world z up; camera poses are camera-to-world in
OpenCV axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlm3r.geometry import (box_aabb, box_box_distance, box_corners, box_volume, camera_center,
                            intrinsic_matrix)


@dataclass(eq=False)
class OrientedBox:
    """One object instance as an oriented 3D box.

    ``normalized_axes`` is 3x3 with ROW k the unit world direction of box axis k, whose full side length is
    ``axes_lengths[k]`` (the reference's ``normalizedAxes`` reshaped row-major). ``aabb_min``/``aabb_max`` are
    kept as stored (ARKitScenes files compute them with a different rotation convention); ``from_geometry``
    derives them from the corners.
    """

    centroid: np.ndarray
    axes_lengths: np.ndarray
    normalized_axes: np.ndarray
    aabb_min: np.ndarray
    aabb_max: np.ndarray
    instance_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_geometry(cls, centroid, axes_lengths, normalized_axes, instance_id: int | None = None) -> OrientedBox:
        centroid = np.asarray(centroid, dtype=np.float64).reshape(3)
        axes_lengths = np.asarray(axes_lengths, dtype=np.float64).reshape(3)
        normalized_axes = np.asarray(normalized_axes, dtype=np.float64).reshape(3, 3)
        aabb_min, aabb_max = box_aabb(centroid, axes_lengths, normalized_axes)
        return cls(centroid, axes_lengths, normalized_axes, aabb_min, aabb_max, instance_id)

    @property
    def corners(self) -> np.ndarray:
        """The 8 world-space corners [8, 3]."""
        return box_corners(self.centroid, self.axes_lengths, self.normalized_axes)

    @property
    def volume(self) -> float:
        return float(box_volume(self.axes_lengths))

    @property
    def longest_side(self) -> float:
        return float(np.max(self.axes_lengths))


def stack_boxes(boxes: list[OrientedBox]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres [N, 3], lengths [N, 3], axes [N, 3, 3]) of a list of boxes, for the vectorised geometry."""
    if not boxes:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3, 3))
    return (np.stack([b.centroid for b in boxes]), np.stack([b.axes_lengths for b in boxes]),
            np.stack([b.normalized_axes for b in boxes]))


@dataclass(eq=False)
class SceneMeta:
    """One scene: room measures and the oriented box of every annotated instance, grouped by category.

    ``object_counts`` is kept as stored: it normally equals the number of boxes per category, but released
    files may disagree (the reference stores every printer box twice; docs/design.md B5).
    """

    scene_name: str
    room_size: float
    room_center: np.ndarray
    object_counts: dict[str, int]
    objects: dict[str, list[OrientedBox]]
    video_path: str | None = None
    dataset: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, scene_name: str, objects: dict[str, list[OrientedBox]], room_size: float,
                     room_center, **fields) -> SceneMeta:
        """A scene whose counts are derived from its boxes (what a metadata builder writes)."""
        counts = {category: len(boxes) for category, boxes in objects.items()}
        return cls(scene_name, float(room_size), np.asarray(room_center, dtype=np.float64).reshape(3), counts,
                   objects, **fields)

    @property
    def categories(self) -> list[str]:
        return list(self.objects)

    @property
    def num_objects(self) -> int:
        return sum(len(boxes) for boxes in self.objects.values())

    def unique_categories(self) -> list[str]:
        """Categories with exactly one instance: the ones distance and direction questions can name."""
        return [c for c, boxes in self.objects.items() if len(boxes) == 1 and self.object_counts.get(c, 1) == 1]

    def unique_object_distances(self) -> list[tuple[str, str, float]]:
        """(category, category, closest distance in m) of every pair of unique objects, nearest first."""
        names = self.unique_categories()
        centers, lengths, axes = stack_boxes([self.objects[c][0] for c in names])
        i, j = np.triu_indices(len(names), k=1)
        distances = box_box_distance(centers[i], lengths[i], axes[i], centers[j], lengths[j], axes[j])
        return sorted(((names[a], names[b], float(d)) for a, b, d in zip(i, j, distances)), key=lambda t: t[2])

    def instance(self, instance_id: int) -> tuple[str, OrientedBox] | None:
        """The (category, box) carrying an instance id, if any."""
        for category, boxes in self.objects.items():
            for box in boxes:
                if box.instance_id == instance_id:
                    return category, box
        return None


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels for the frames' image size."""

    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def matrix(self) -> np.ndarray:
        return intrinsic_matrix(self.fx, self.fy, self.cx, self.cy)


@dataclass(frozen=True)
class InstanceBox2D:
    """Pixel bounds [xmin, ymin, xmax, ymax] (inclusive) of one instance's mask in a frame."""

    instance_id: int
    bbox: tuple[float, float, float, float]

    @property
    def area(self) -> float:
        xmin, ymin, xmax, ymax = self.bbox
        return float((xmax - xmin + 1) * (ymax - ymin + 1))


@dataclass(eq=False)
class FrameMeta:
    """One sampled frame: its id (the video frame index; a string for ScanNet++ DSLR images), camera-to-world
    pose, image files relative to the processed dataset root, and the 2D boxes of the instances it shows."""

    frame_id: int | str
    camera_to_world: np.ndarray
    bboxes_2d: list[InstanceBox2D]
    file_path_color: str | None = None
    file_path_depth: str | None = None
    file_path_mask: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def camera_center(self) -> np.ndarray:
        return camera_center(self.camera_to_world)

    @property
    def visible_instances(self) -> set[int]:
        return {b.instance_id for b in self.bboxes_2d}


@dataclass(eq=False)
class SceneFrames:
    """The sampled frames of one scene, in ascending frame order, with shared intrinsics and image size."""

    scene_name: str
    intrinsics: CameraIntrinsics
    image_width: int
    image_height: int
    frames: list[FrameMeta]
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def poses(self) -> np.ndarray:
        """Camera-to-world poses [F, 4, 4]."""
        return np.stack([f.camera_to_world for f in self.frames]) if self.frames else np.zeros((0, 4, 4))


def category_totals(scenes) -> list[tuple[str, int, int]]:
    """(category, instances, scenes holding it) over ``scenes``, most instances first, then by name."""
    instances: dict[str, int] = {}
    holding: dict[str, int] = {}
    for scene in scenes:
        for category, count in scene.object_counts.items():
            instances[category] = instances.get(category, 0) + count
            holding[category] = holding.get(category, 0) + 1
    return [(c, instances[c], holding[c]) for c in sorted(instances, key=lambda c: (-instances[c], c))]
