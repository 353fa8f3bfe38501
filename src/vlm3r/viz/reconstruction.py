"""A video reconstructed by CUT3R alone, written for a 3D viewer (``vlm3r cut3r reconstruct``): the coloured point
cloud as a plain PLY (``x y z red green blue``, binary little-endian) and the cameras beside it as
``<out>.cameras.json`` (units, frame indices, camera centres, camera-to-world matrices). Coordinates are in the
first camera's frame, in ``model.cut3r.reconstruction.UNITS``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from vlm3r.geometry.camera import OPENCV_TO_Z_UP
from vlm3r.model.cut3r import load_cut3r, read_architecture_file
from vlm3r.model.cut3r.reconstruction import Reconstruction, reconstruct_video
from vlm3r.utils.devices import check_device, torch_dtype
from vlm3r.utils.fileio import atomic_path, atomic_write_text
from vlm3r.utils.frames import NUM_FRAMES
from vlm3r.viz.scene3d import POINT_BUDGET, ScenePayload, downsample

# The vertex layout of the written point cloud: position and colour, nothing else.
POINT_FIELDS = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]


def cameras_path(out: Path | str) -> Path:
    """Where the cameras of the point cloud ``out`` go: ``<out>.cameras.json``."""
    return Path(out).with_suffix(".cameras.json")


def write_colored_points(path: Path | str, points: np.ndarray, colors: np.ndarray) -> None:
    """A binary little-endian PLY of ``points`` [N, 3] and their ``colors`` [N, 3] uint8, written atomically."""
    vertex = np.empty(len(points), dtype=POINT_FIELDS)
    for k, name in enumerate("xyz"):
        vertex[name] = points[:, k]
    for k, name in enumerate(("red", "green", "blue")):
        vertex[name] = colors[:, k]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(tmp))


def write_reconstruction(result: Reconstruction, out: Path | str) -> None:
    """Write the point cloud ``out`` (PLY) and its cameras (``cameras_path(out)``), each atomically."""
    write_colored_points(out, result.points, result.colors)
    atomic_write_text(cameras_path(out), json.dumps(result.cameras(), indent=1))


def reconstruct_to_files(video: Path | str, cut3r: Path | str, out: Path | str, config: Path | str | None = None,
                         frames: int = NUM_FRAMES, keep: float = 0.5, device: str = "cpu", dtype: str = "fp32",
                         progress: Callable[[int, int], None] | None = None) -> Reconstruction:
    """Load CUT3R with its heads (``cut3r`` weights; ``config``: a JSON architecture file, for weights without
    one) on ``device`` in ``dtype``, reconstruct ``frames`` frames of ``video`` keeping the ``keep`` share of the
    points, and write them (``write_reconstruction``). ``progress(done, total)``: frames done (see
    ``reconstruct_video``)."""
    model = load_cut3r(cut3r, config=read_architecture_file(config), device=check_device(device),
                       dtype=torch_dtype(dtype), with_heads=True)
    result = reconstruct_video(model, video, frames, keep, progress)
    write_reconstruction(result, out)
    return result


def reconstruction_payload(result: Reconstruction, name: str, budget: int = POINT_BUDGET) -> ScenePayload:
    """A reconstruction as a 3D view draws it: its points (cut to ``budget``) and camera path, turned from the
    first camera's frame (OpenCV axes) to z up (``geometry.camera.OPENCV_TO_Z_UP``), so that it stands upright
    when the first frame was held upright."""
    points, colors = downsample(result.points, result.colors, budget)
    return ScenePayload(name, (points @ OPENCV_TO_Z_UP.T).astype(np.float32), colors.astype(np.uint8),
                        camera_path=result.camera_to_world[:, :3, 3] @ OPENCV_TO_Z_UP.T)
