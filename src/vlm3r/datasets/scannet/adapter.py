"""ScanNet raw scan -> processed layout (docs/design.md, data §1.1, §2.3, §3.1).

Per scene ``<root>/scans/<scene>/``: ``<scene>.sens``, ``<scene>.txt`` (``axisAlignment``),
``<scene>_vh_clean_2.ply``, ``<scene>_vh_clean_2.0.010000.segs.json``, ``<scene>.aggregation.json`` and
``<scene>_2d-instance-filt.zip``. Written:

- the labelled point cloud: mesh vertices in the axis-aligned world, each aggregation group whose raw label
  the category table (``data/categories/scannet.json``) keeps becomes one instance with ``instance_id`` = the
  group's id (the value its 2D masks carry, plus one);
- 32 ``linspace`` frames of the stream: colour resized to 640x480, raw depth (mm), the instance mask resized
  (nearest) to 640x480, the axis-aligned camera-to-world pose;
- the intrinsics of those 640x480 colour frames: the colour camera's, scaled (the reference stores the depth
  camera's, which do not describe the resized colour images);
- the video: every colour frame at 640x480 and 24 fps, so frame ids are video frame indices.

A scene with a lost-tracking (non-finite) pose among its sampled frames, an empty instance, or a missing mask
fails with the reason; it is never written half-way (the point cloud, which marks a scene complete, is last).
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from vlm3r.datasets.categories import CategoryTable
from vlm3r.datasets.layout import ProcessedLayout, listed_or_all
from vlm3r.datasets.media import write_intrinsics, write_sampled_frame, write_video
from vlm3r.datasets.pointcloud import LabeledPoints, write_point_cloud
from vlm3r.datasets.scannet.sens import SensFile
from vlm3r.datasets.segments import segment_labeled_points
from vlm3r.errors import SceneBuildError
from vlm3r.utils.frames import NUM_FRAMES, linspace_indices

FRAME_SIZE = (640, 480)
log = logging.getLogger(__name__)

VIDEO_FPS = 24.0


def list_scenes(root: Path, split: str) -> list[str]:
    """Scenes of a split: ``scannetv2_<split>.txt`` (ScanNet's benchmark lists) if present, else every scan."""
    return listed_or_all(root / f"scannetv2_{split}.txt", root / "scans", "ScanNet")


def read_axis_alignment(path: Path) -> np.ndarray:
    """``axisAlignment`` of a scene's ``.txt`` as 4x4 (identity when the file has none, as the reference, with a
    warning naming the file: the scene's boxes are then in the scan's own frame, not gravity-aligned)."""
    if not path.is_file():
        raise SceneBuildError(f"{path}: missing (the scene's meta file with axisAlignment)")
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "axisAlignment":
            try:
                matrix = np.array([float(v) for v in value.split()], dtype=np.float64)
            except ValueError as exc:
                raise SceneBuildError(f"{path}: axisAlignment is not 16 numbers") from exc
            if matrix.shape != (16,) or not np.all(np.isfinite(matrix)):
                raise SceneBuildError(f"{path}: axisAlignment must be 16 finite numbers, got {matrix.size}")
            return matrix.reshape(4, 4)
    log.warning("%s: no axisAlignment; the scene is used unaligned (its boxes in the scan's own frame)", path)
    return np.eye(4)


def labeled_points(scan: Path, scene: str, table: CategoryTable, alignment: np.ndarray) -> LabeledPoints:
    """Mesh vertices in the axis-aligned world, labelled through the segments and the aggregation."""
    return segment_labeled_points(scan / f"{scene}_vh_clean_2.ply", scan / f"{scene}_vh_clean_2.0.010000.segs.json",
                                   scan / f"{scene}.aggregation.json", table, alignment)


class _MaskArchive:
    """The scene's 2D instance masks (``instance-filt/<frame>.png`` in ``<scene>_2d-instance-filt.zip``)."""

    def __init__(self, scan: Path, scene: str):
        candidates = [scan / f"{scene}_2d-instance-filt.zip", scan / f"{scene}_2d-instance.zip"]
        self.path = next((p for p in candidates if p.is_file()), None)
        if self.path is None:
            raise SceneBuildError(f"{candidates[0]}: missing (the 2D instance masks)")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            raise SceneBuildError(f"{self.path}: not a readable zip ({exc})") from exc
        self.names = set(self.zip.namelist())

    def __enter__(self) -> _MaskArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.zip.close()

    def mask(self, frame_id: int, size: tuple[int, int]) -> np.ndarray:
        for name in (f"instance-filt/{frame_id}.png", f"instance/{frame_id}.png"):
            if name in self.names:
                with Image.open(io.BytesIO(self.zip.read(name))) as image:
                    return np.asarray(image.resize(size, Image.NEAREST))
        raise SceneBuildError(f"{self.path}: no mask for frame {frame_id} (instance-filt/{frame_id}.png)")


def prepare_scene(root: Path, scene: str, layout: ProcessedLayout, table: CategoryTable,
                  num_frames: int = NUM_FRAMES, on_frame: Callable[[], None] | None = None) -> None:
    scan = root / "scans" / scene
    if not scan.is_dir():
        raise SceneBuildError(f"{scan}: missing (listed in the split but not in scans/)")
    alignment = read_axis_alignment(scan / f"{scene}.txt")
    points = labeled_points(scan, scene, table, alignment)  # validated before any frame is written
    with _MaskArchive(scan, scene) as masks, SensFile(scan / f"{scene}.sens") as sens:
        if len(sens) == 0:
            raise SceneBuildError(f"{sens.path}: no frames")
        chosen = set(linspace_indices(len(sens), num_frames).tolist())
        for index in sorted(chosen):
            if not np.all(np.isfinite(sens.frames[index].camera_to_world)):
                raise SceneBuildError(f"{sens.path}: frame {index}: camera_to_world is not finite (tracking lost), "
                                      "and it is one of the sampled frames")
        header = sens.header
        scale = np.diag([FRAME_SIZE[0] / header.color_width, FRAME_SIZE[1] / header.color_height, 1.0])
        write_intrinsics(layout, scene, scale @ header.intrinsic_color[:3, :3])

        def color_frames():
            for index in range(len(sens)):
                rgb = np.asarray(Image.fromarray(sens.color(index)).resize(FRAME_SIZE, Image.BILINEAR))
                if index in chosen:
                    write_sampled_frame(layout, scene, index, rgb, sens.depth_mm(index),
                                        masks.mask(index, FRAME_SIZE),
                                        alignment @ sens.frames[index].camera_to_world)
                yield rgb

        write_video(layout.video_path(scene), color_frames(), VIDEO_FPS, *FRAME_SIZE, on_frame)
    write_point_cloud(layout.point_cloud_path(scene), points)
