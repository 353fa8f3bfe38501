"""Procedural indoor scenes written in the processed-dataset layout, then turned into metadata by the shared builder.

Per scene: a furnished room, a handheld walkthrough, a video (H.264 mp4, PyAV), ``num_frames`` frames sampled
uniformly from the video (``np.linspace(0, N - 1, num_frames)``, as the model samples its input) rendered at
full size with colour, 16-bit millimetre depth and instance masks, camera-to-world poses, intrinsics and a
labelled point cloud sampled on every surface. Everything is drawn from one generator seeded by
(seed, scene index), so the same seed gives byte-identical files.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm3r.datasets.media import write_intrinsics, write_sampled_frame, write_video
from vlm3r.datasets.layout import MASK_VALUE_OFFSET, ProcessedLayout
from vlm3r.datasets.pointcloud import LabeledPoints, write_point_cloud
from vlm3r.datasets.synthetic.categories import SyntheticVocabulary
from vlm3r.datasets.synthetic.furnish import FurnishedRoom, furnish
from vlm3r.datasets.synthetic.render import Renderer, scene_geometry
from vlm3r.datasets.synthetic.trajectory import NoWalkableFloor, Trajectory, walkthrough
from vlm3r.errors import InputError, SceneBuildError, Vlm3rError
from vlm3r.geometry import intrinsic_matrix, point_box_distance
from vlm3r.utils.frames import NUM_FRAMES, linspace_indices

log = logging.getLogger(__name__)

DATASET = "synthetic"
_ATTEMPTS = 8  # a scene whose walkthrough misses every object in some sampled frame is drawn again
_CAMERA_CLEARANCE = 0.2


@dataclass(frozen=True)
class SynthConfig:
    num_frames: int = NUM_FRAMES
    video_frames: int = 240
    frame_size: tuple[int, int] = (640, 480)  # width, height of the sampled frames
    video_size: tuple[int, int] = (320, 240)
    fps: float = 24.0
    focal_ratio: float = 0.8  # focal length in pixels = ratio * image width (64 degree horizontal field of view)
    point_spacing: float = 0.04
    split: str = "train"

    def __post_init__(self):
        if self.num_frames < 1 or self.video_frames < self.num_frames:
            raise InputError(f"need 1 <= frames <= video frames, got frames={self.num_frames}, "
                             f"video frames={self.video_frames}")
        for name, (w, h) in (("frame size", self.frame_size), ("video size", self.video_size)):
            if not (16 <= w <= 4096 and 16 <= h <= 4096):
                raise InputError(f"{name} {w}x{h} is impossible: width and height must be 16..4096 pixels")
            if w % 2 or h % 2:
                raise InputError(f"{name} {w}x{h}: width and height must be even (H.264 4:2:0 video)")

    def intrinsics(self, size: tuple[int, int]) -> np.ndarray:
        width, height = size
        focal = self.focal_ratio * width
        return intrinsic_matrix(focal, focal, (width - 1) / 2, (height - 1) / 2)

    @property
    def sampled_frame_ids(self) -> np.ndarray:
        return linspace_indices(self.video_frames, self.num_frames)


def scene_name(seed: int, index: int) -> str:
    return f"synth{seed}_{index:04d}"


@dataclass(frozen=True)
class SyntheticScene:
    """A generated scene before it is written: its furniture, camera path and colours."""

    name: str
    furnished: FurnishedRoom
    trajectory: Trajectory
    instance_colors: dict[int, np.ndarray]
    structure_colors: np.ndarray  # wall, floor, ceiling


def design_scene(seed: int, index: int, config: SynthConfig, vocabulary: SyntheticVocabulary) -> SyntheticScene:
    """Draw rooms until one has a walkthrough whose sampled frames all see an object (checked by rendering)."""
    rng = np.random.default_rng([seed, index])
    for attempt in range(_ATTEMPTS):
        furnished = furnish(rng, vocabulary)
        if not furnished.objects:
            continue
        try:
            trajectory = walkthrough(rng, furnished, config.video_frames, config.fps)
        except NoWalkableFloor as exc:
            log.info("scene %s attempt %d: %s", scene_name(seed, index), attempt, exc)
            continue
        if not _camera_path_is_clear(furnished, trajectory):
            continue
        colors = {obj.instance_id: _instance_color(rng, obj.category) for obj in furnished.objects}
        structure = np.array([rng.uniform(0.72, 0.9, 3), np.array([0.55, 0.4, 0.27]) * rng.uniform(0.85, 1.15),
                              [0.93, 0.93, 0.92]])
        scene = SyntheticScene(scene_name(seed, index), furnished, trajectory, colors, structure)
        # Cheap visibility check at a small size before committing to this scene.
        renderer = Renderer(scene_geometry(furnished, colors, structure), config.intrinsics((64, 48)), 64, 48)
        poses = trajectory.poses[config.sampled_frame_ids]
        if all(np.any(renderer.render(pose).instance > 0) for pose in poses):
            return scene
    raise Vlm3rError(f"scene {scene_name(seed, index)}: no walkthrough that sees an object in every sampled "
                       f"frame after {_ATTEMPTS} rooms")


def _camera_path_is_clear(furnished: FurnishedRoom, trajectory: Trajectory) -> bool:
    positions = trajectory.poses[:, :3, 3]
    if not np.all(furnished.room.contains(positions[:, :2], margin=0.25)):
        return False
    for obj in furnished.objects:
        if np.any(point_box_distance(positions, obj.center, obj.size, obj.axes) < _CAMERA_CLEARANCE):
            return False
    return True


def _instance_color(rng: np.random.Generator, category: str) -> np.ndarray:
    """A category's hue (stable across scenes) with per-instance variation."""
    hue_rng = np.random.default_rng(zlib.crc32(category.encode()))
    base = hue_rng.uniform(0.15, 0.85, 3)
    return np.clip(base * rng.uniform(0.85, 1.15) + rng.normal(0, 0.04, 3), 0.05, 0.95)


def write_scene(layout: ProcessedLayout, scene: SyntheticScene, config: SynthConfig,
                on_frame: Callable[[], None] | None = None) -> None:
    """Write one scene's files; its point cloud is written last, so a scene is listed only once complete."""
    geometry = scene_geometry(scene.furnished, scene.instance_colors, scene.structure_colors)
    video = Renderer(geometry, config.intrinsics(config.video_size), *config.video_size)
    write_video(layout.video_path(scene.name), (video.render(pose).rgb for pose in scene.trajectory.poses),
                config.fps, *config.video_size, on_frame=on_frame)
    k = config.intrinsics(config.frame_size)
    renderer = Renderer(geometry, k, *config.frame_size)
    write_intrinsics(layout, scene.name, k)
    for frame_id in config.sampled_frame_ids:
        pose = scene.trajectory.poses[frame_id]
        frame = renderer.render(pose)
        depth_mm = np.clip(np.round(frame.depth * 1000.0), 0, 65535)
        mask = np.where(frame.instance > 0, frame.instance + MASK_VALUE_OFFSET, 0)
        write_sampled_frame(layout, scene.name, frame_id, frame.rgb, depth_mm, mask, pose)
    write_point_cloud(layout.point_cloud_path(scene.name), scene_points(scene, config.point_spacing))


def scene_points(scene: SyntheticScene, spacing: float) -> LabeledPoints:
    """Points on the floor, the walls and every object part, with colour, label and instance id."""
    room = scene.furnished.room
    structure = SyntheticVocabulary.load().structure
    chunks = []

    def add(xyz, color, label, instance):
        rgb = np.broadcast_to(np.round(np.asarray(color) * 255).astype(np.uint8), xyz.shape)
        chunks.append((xyz, rgb, np.full(len(xyz), label), np.full(len(xyz), instance)))

    xs = _grid(0.0, room.width, spacing)
    ys = _grid(0.0, room.depth, spacing)
    floor = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    floor = floor[room.contains(floor)]
    add(np.column_stack([floor, np.zeros(len(floor))]), scene.structure_colors[1], structure["floor"], 0)
    for wall in room.walls():
        along = _grid(0.0, wall.length, spacing)
        heights = _grid(0.0, room.height, spacing)
        a, h = np.meshgrid(along, heights, indexing="ij")
        xy = wall.start + a.reshape(-1, 1) * wall.direction
        add(np.column_stack([xy, h.reshape(-1)]), scene.structure_colors[0], structure["wall"], 0)
    for obj in scene.furnished.objects:
        for part in obj.parts:
            add(box_surface_points(part.center, part.lengths, part.axes, spacing), scene.instance_colors[
                obj.instance_id], obj.label, obj.instance_id)
    xyz, rgb, label, instance = (np.concatenate(parts) for parts in zip(*chunks))
    return LabeledPoints(xyz, rgb, label, instance)


def _grid(start: float, stop: float, spacing: float) -> np.ndarray:
    """Evenly spaced values from start to stop inclusive, no further apart than ``spacing``."""
    return np.linspace(start, stop, max(2, int(np.ceil((stop - start) / spacing)) + 1))


def box_surface_points(center: np.ndarray, lengths: np.ndarray, axes: np.ndarray, spacing: float) -> np.ndarray:
    """Points on all six faces of a box, on grids that include the edges and corners."""
    pieces = []
    for k in range(3):
        u, v = [j for j in range(3) if j != k]
        gu, gv = (_grid(-lengths[j] / 2, lengths[j] / 2, spacing) for j in (u, v))
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        for sign in (-1.0, 1.0):
            local = np.empty((uu.size, 3))
            local[:, u], local[:, v], local[:, k] = uu.ravel(), vv.ravel(), sign * lengths[k] / 2
            pieces.append(local)
    return np.concatenate(pieces) @ axes + center


def generate_dataset(out: Path | str, num_scenes: int, seed: int, config: SynthConfig,
                     progress: Callable[[str, int], None] | None = None, first: int = 0) -> ProcessedLayout:
    """Generate ``num_scenes`` scenes under ``out`` (indices ``first``, ``first + 1``, ...) and write their scene
    and frame metadata.

    ``progress(scene_name, frames_done)`` is called as video frames are rendered (for progress bars).
    """
    if num_scenes < 1:
        raise InputError(f"--num-scenes: need at least 1 scene, got {num_scenes}")
    layout = ProcessedLayout(Path(out), DATASET, config.split)
    vocabulary = SyntheticVocabulary.load()
    for index in range(first, first + num_scenes):
        scene = design_scene(seed, index, config, vocabulary)
        callback = (lambda name=scene.name: progress(name, 1)) if progress is not None else None
        write_scene(layout, scene, config, callback)
    # The metadata describes every complete scene in the folder (earlier runs' scenes included).
    write_metadata(layout)
    return layout


def write_metadata(layout: ProcessedLayout) -> None:
    """Build and write the dataset's scene and frame metadata from the files on disk (``vlm3r scenes metadata
    --dataset synthetic``); a scene that cannot be described is an error here, never silently left out."""
    from vlm3r.datasets.metadata import build_dataset_metadata

    result = build_dataset_metadata(DATASET, layout.root, layout.root, layout.split)
    if result.failures:
        raise SceneBuildError("; ".join(f"{scene}: {reason}" for scene, reason in result.failures.items()))
