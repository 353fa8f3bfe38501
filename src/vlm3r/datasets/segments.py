"""Meshes labelled through over-segmentation, as ScanNet and ScanNet++ release them: a mesh, a segments file
(``segIndices``: one segment id per vertex) and an annotation whose ``segGroups`` name each object's segments
(``id``, ``label``, ``segments``). Each group whose raw label the category table keeps is one instance with the
group's id."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlm3r.datasets.categories import CategoryTable
from vlm3r.datasets.pointcloud import LabeledPoints, read_ply_vertices
from vlm3r.errors import SceneBuildError
from vlm3r.utils import fileio


def read_json(path: Path, what: str) -> dict:
    """A JSON object file of a scene (segments, annotation, poses)."""
    return fileio.read_json(path, SceneBuildError, dict, what)


def read_seg_groups(path: Path, what: str) -> list[dict]:
    groups = read_json(path, what).get("segGroups")
    if not isinstance(groups, list):
        raise SceneBuildError(f"{path}: segGroups missing")
    return groups


def segment_labeled_points(ply_path: Path, segs_path: Path, groups_path: Path, table: CategoryTable,
                            transform: np.ndarray | None = None) -> LabeledPoints:
    """Mesh vertices (mapped by the 4x4 ``transform`` when given) with category label and instance id."""
    xyz, rgb, _ = read_ply_vertices(ply_path, SceneBuildError, "scene mesh", ("red", "green", "blue"))
    if transform is not None:
        xyz = xyz @ transform[:3, :3].T + transform[:3, 3]
    segments = np.asarray(read_json(segs_path, "mesh segments").get("segIndices", []), dtype=np.int64)
    if len(segments) != len(xyz):
        raise SceneBuildError(f"{segs_path}: segIndices has {len(segments)} entries for {len(xyz)} vertices")
    label = np.zeros(len(xyz), dtype=np.int64)
    instance = np.zeros(len(xyz), dtype=np.int64)
    for group in read_seg_groups(groups_path, "object annotation"):
        category = table.resolve(group.get("label", ""))
        if category is None:
            continue
        members = np.isin(segments, np.asarray(group.get("segments", []), dtype=np.int64))
        if not members.any():
            raise SceneBuildError(f"{groups_path}: segGroup {group.get('id')} ({group.get('label')}) is "
                                  "empty: none of its segments has a vertex")
        label[members], instance[members] = table.label_id(category), int(group["id"])
    return LabeledPoints(xyz, rgb, label, instance)
