"""A video reconstructed by CUT3R alone, written for a 3D viewer (``vlm3r cut3r reconstruct``): the coloured point
cloud as a PLY in the labelled point-cloud layout (labels and instances 0) and the camera path beside it as
``<out>.cameras.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlm3r.datasets.pointcloud import LabeledPoints, write_point_cloud
from vlm3r.model.cut3r import load_cut3r, read_architecture_file
from vlm3r.model.cut3r.reconstruction import Reconstruction, reconstruct_video
from vlm3r.utils.devices import check_device, torch_dtype
from vlm3r.utils.fileio import atomic_write_text
from vlm3r.utils.frames import NUM_FRAMES


def cameras_path(out: Path | str) -> Path:
    """Where the camera path of the point cloud ``out`` goes: ``<out>.cameras.json``."""
    return Path(out).with_suffix(".cameras.json")


def write_reconstruction(result: Reconstruction, out: Path | str) -> None:
    """Write the point cloud ``out`` (PLY) and its camera path (``cameras_path(out)``), each atomically."""
    count = len(result.points)
    write_point_cloud(out, LabeledPoints(result.points, result.colors, np.zeros(count, int), np.zeros(count, int)))
    atomic_write_text(cameras_path(out), json.dumps(result.cameras(), indent=1))


def reconstruct_to_files(video: Path | str, cut3r: Path | str, out: Path | str, config: Path | str | None = None,
                         frames: int = NUM_FRAMES, keep: float = 0.5, device: str = "cpu",
                         dtype: str = "fp32") -> Reconstruction:
    """Load CUT3R with its heads (``cut3r`` weights; ``config``: a JSON architecture file, for weights without
    one) on ``device`` in ``dtype``, reconstruct ``frames`` frames of ``video`` keeping the ``keep`` share of the
    points, and write them (``write_reconstruction``)."""
    model = load_cut3r(cut3r, config=read_architecture_file(config), device=check_device(device),
                       dtype=torch_dtype(dtype), with_heads=True)
    result = reconstruct_video(model, video, frames, keep)
    write_reconstruction(result, out)
    return result
