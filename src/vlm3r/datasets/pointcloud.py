"""Labelled point clouds: PLY vertices with x, y, z, red, green, blue, label, instance_id (ScanNet200 layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from vlm3r.errors import Vlm3rError
from vlm3r.utils.fileio import atomic_path

_FIELDS = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
           ("label", "u4"), ("instance_id", "u4")]


class PointCloudError(Vlm3rError):
    """A point cloud file that cannot be used; the message names the file and the field."""


@dataclass
class LabeledPoints:
    xyz: np.ndarray  # [N, 3] float
    rgb: np.ndarray  # [N, 3] uint8
    label: np.ndarray  # [N] int
    instance_id: np.ndarray  # [N] int


def write_point_cloud(path: Path | str, points: LabeledPoints) -> None:
    """Write a binary little-endian PLY atomically."""
    vertex = np.empty(len(points.xyz), dtype=_FIELDS)
    for k, name in enumerate("xyz"):
        vertex[name] = points.xyz[:, k]
    for k, name in enumerate(("red", "green", "blue")):
        vertex[name] = points.rgb[:, k]
    vertex["label"], vertex["instance_id"] = points.label, points.instance_id
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(tmp))


def read_ply_vertices(path: Path | str, error: type[Exception] = PointCloudError, what: str = "PLY file",
                      fields: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The one PLY reader: (xyz [N, 3] float64, rgb [N, 3] uint8 or None when the file has no colours, the vertex
    records) of a binary or ASCII PLY. A missing or unreadable file, a missing x/y/z or ``fields`` entry and
    non-finite coordinates raise ``error`` naming the file (``what`` says what it should have been)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file ({what})")
    try:
        vertex = PlyData.read(str(path))["vertex"].data
    except Exception as exc:  # plyfile raises several exception types for corrupt files
        raise error(f"{path}: not a readable {what} ({exc})") from exc
    names = vertex.dtype.names or ()
    for name in ("x", "y", "z", *fields):
        if name not in names:
            raise error(f"{path}: vertex field {name!r} missing (has {', '.join(names)})")
    xyz = np.stack([vertex[c] for c in "xyz"], axis=1).astype(np.float64)
    if not np.all(np.isfinite(xyz)):
        raise error(f"{path}: vertex field x/y/z has non-finite values")
    rgb = (np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
           if all(c in names for c in ("red", "green", "blue")) else None)
    return xyz, rgb, vertex


def read_point_cloud(path: Path | str) -> LabeledPoints:
    """Read a labelled PLY (binary or ASCII); missing fields or non-finite coordinates raise PointCloudError."""
    xyz, rgb, vertex = read_ply_vertices(path, PointCloudError, "PLY file", ("label", "instance_id"))
    if rgb is None:
        rgb = np.zeros((len(xyz), 3), dtype=np.uint8)
    return LabeledPoints(xyz, rgb, vertex["label"].astype(np.int64), vertex["instance_id"].astype(np.int64))
