"""Helpers for datasets whose objects are annotated oriented boxes and whose frames have no instance masks
(ARKitScenes, ScanNet++'s iPhone frames; docs/design.md B7: they still get instance ids and frame metadata).

- Annotated boxes are kept as annotated (``boxes/<split>/<scene>.json``); the metadata builder uses them instead
  of boxes fitted to the points.
- Mesh vertices are labelled with the instance whose box contains them (the smallest, where boxes overlap).
- Instance masks are rendered by projecting the labelled vertices into each frame: a vertex counts where the
  frame's depth shows that it is not hidden (its depth at most ``tolerance`` behind the measured one), the
  nearest vertex wins a pixel, and a vertex at (u, v) lands in pixel (floor u, floor v).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm3r.datasets.layout import MASK_VALUE_OFFSET
from vlm3r.errors import SceneBuildError
from vlm3r.geometry import box_volume, points_in_box, project, rotation_problem
from vlm3r.geometry.camera import world_to_camera
from vlm3r.utils.fileio import atomic_write_text, read_json


@dataclass(frozen=True)
class AnnotatedBox:
    instance_id: int
    category: str
    centroid: np.ndarray  # [3]
    axes_lengths: np.ndarray  # [3] full side lengths
    normalized_axes: np.ndarray  # [3, 3], row k = direction of axis k


def validated_box(instance_id: int, category: str, centroid, lengths, axes, where: str) -> AnnotatedBox:
    """An annotated box checked for finite values, positive sizes and orthonormal axes (errors name ``where``)."""
    try:
        centroid = np.asarray(centroid, dtype=np.float64).reshape(3)
        lengths = np.asarray(lengths, dtype=np.float64).reshape(3)
        axes = np.asarray(axes, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError) as exc:
        raise SceneBuildError(f"{where}: box needs centroid[3], axesLengths[3], normalizedAxes[9] ({exc})") from exc
    if not (np.all(np.isfinite(centroid)) and np.all(np.isfinite(lengths)) and np.all(np.isfinite(axes))):
        raise SceneBuildError(f"{where}: box has non-finite values")
    if np.any(lengths <= 0):
        raise SceneBuildError(f"{where}: degenerate box, axesLengths {lengths.tolist()}")
    problem = rotation_problem(axes, proper=False)
    if problem:
        raise SceneBuildError(f"{where}: normalizedAxes are {problem}")
    return AnnotatedBox(instance_id, category, centroid, lengths, axes)


def write_annotated_boxes(path: Path, boxes: list[AnnotatedBox]) -> None:
    atomic_write_text(path, json.dumps([{"instance_id": b.instance_id, "category": b.category,
                                         "centroid": b.centroid.tolist(), "axesLengths": b.axes_lengths.tolist(),
                                         "normalizedAxes": b.normalized_axes.flatten().tolist()} for b in boxes]))


def read_annotated_boxes(path: Path) -> list[AnnotatedBox]:
    raw = read_json(path, SceneBuildError, list, "annotated boxes")
    try:
        return [validated_box(int(b["instance_id"]), str(b["category"]), b["centroid"], b["axesLengths"],
                              b["normalizedAxes"], f"{path}: instance {b.get('instance_id')}") for b in raw]
    except (KeyError, TypeError) as exc:
        raise SceneBuildError(f"{path}: not a list of annotated boxes ({exc})") from exc


def instances_from_boxes(xyz: np.ndarray, boxes: list[AnnotatedBox], margin: float = 0.01) -> np.ndarray:
    """Instance id of the smallest box containing each point (within ``margin`` metres), -1 for none."""
    instance = np.full(len(xyz), -1, dtype=np.int64)
    best = np.full(len(xyz), np.inf)
    for box in boxes:
        inside = points_in_box(xyz, box.centroid, box.axes_lengths, box.normalized_axes, tol=margin)
        volume = float(box_volume(box.axes_lengths))
        take = inside & (volume < best)
        instance[take], best[take] = box.instance_id, volume
    return instance


def render_instance_mask(xyz: np.ndarray, instance: np.ndarray, camera_to_world: np.ndarray, k: np.ndarray,
                         depth_m: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """uint16 mask [H, W] (instance id + 1, 0 = none) of the labelled points visible in a frame."""
    height, width = depth_m.shape
    mask = np.zeros((height, width), dtype=np.uint16)
    keep = instance >= 0
    cam = world_to_camera(xyz[keep], camera_to_world)
    ids = instance[keep]
    front = cam[:, 2] > 1e-6
    cam, ids = cam[front], ids[front]
    u, v = np.floor(project(cam, k)).astype(np.int64).T
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    u, v, z, ids = u[inside], v[inside], cam[inside, 2], ids[inside]
    measured = depth_m[v, u]
    visible = (measured <= 0) | (z <= measured + tolerance)  # no depth reading: nothing hides the point
    u, v, z, ids = u[visible], v[visible], z[visible], ids[visible]
    order = np.argsort(-z, kind="stable")  # far first, so the nearest point is written last and wins
    mask[v[order], u[order]] = (ids[order] + MASK_VALUE_OFFSET).astype(np.uint16)
    return mask
