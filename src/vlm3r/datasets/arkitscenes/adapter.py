"""ARKitScenes scan -> processed layout.

A scan folder ``<root>/<Training|Validation>/<video_id>/`` holds ``<video_id>_3dod_annotation.json``,
``<video_id>_3dod_mesh.ply`` and the frames (there or in ``<video_id>_frames/``): ``lowres_wide/*.png``,
``lowres_depth/*.png`` (uint16 mm), ``lowres_wide_intrinsics/*.pincam`` (``width height fx fy cx cy``) and
``lowres_wide.traj`` (``timestamp rx ry rz tx ty tz``: axis-angle rotation and translation of the world-to-camera
transform, inverted here to camera-to-world). Frame files are named ``<video_id>_<timestamp>.png``.

- Scenes: the split's rows of ``metadata.csv`` (``fold`` Training/Validation, ``visit_id`` not NA), one scan per
  visit chosen with a fixed seed as the reference does; without ``metadata.csv``, every scan of the fold.
- Objects: each annotation item whose label the category table keeps (``data/categories/arkitscenes.json``)
  is one instance, ids in file order; its ``segments.obbAligned`` box is kept as annotated.
- Frames: the ``lowres_wide`` images that have a depth image, intrinsics and a pose within 50 ms; the video is
  all of them in order at the capture rate (so frame ids are video frame indices); 32 ``linspace`` frames are
  sampled with colour, depth, pose and an instance mask rendered from the labelled mesh (``annotated``).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

from vlm3r.datasets.annotated import (instances_from_boxes, render_instance_mask, validated_box,
                                      write_annotated_boxes)
from vlm3r.datasets.categories import CategoryTable
from vlm3r.datasets.layout import ProcessedLayout, listed_or_all
from vlm3r.datasets.media import write_intrinsics, write_sampled_frame, write_video
from vlm3r.datasets.pointcloud import LabeledPoints, read_ply_vertices, write_point_cloud
from vlm3r.errors import InputError, SceneBuildError
from vlm3r.utils.fileio import read_json
from vlm3r.utils.frames import NUM_FRAMES, linspace_indices

FOLDS = {"train": "Training", "val": "Validation"}
POSE_TOLERANCE_S = 0.05
VISIT_SEED = 0
UNCOLORED_GRAY = 128  # uint8 value drawn for every channel of a mesh without colors


def _fold(split: str) -> str:
    if split not in FOLDS:
        raise InputError(f"ARKitScenes split must be train or val, got {split!r}")
    return FOLDS[split]


def list_scenes(root: Path, split: str) -> list[str]:
    fold = _fold(split)
    listing = root / "metadata.csv"
    if not listing.is_file():
        return listed_or_all(listing, root / fold, "ARKitScenes")
    with listing.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("fold") == fold and r.get("visit_id") not in (None, "", "NA")]
    visits: dict[str, list[str]] = {}
    for row in rows:
        if (root / fold / row["video_id"]).is_dir():
            visits.setdefault(row["visit_id"], []).append(row["video_id"])
    rng = random.Random(VISIT_SEED)
    return sorted(rng.choice(sorted(videos)) for _, videos in sorted(visits.items()))


def traj_poses(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps [N], camera-to-world [N, 4, 4]) of a ``.traj`` file."""
    if not path.is_file():
        raise SceneBuildError(f"{path}: missing (the camera trajectory)")
    stamps, poses = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = np.array([float(v) for v in line.split()], dtype=np.float64)
        except ValueError as exc:
            raise SceneBuildError(f"{path}: line {number}: not numbers") from exc
        if values.shape != (7,) or not np.all(np.isfinite(values)):
            raise SceneBuildError(f"{path}: line {number}: expected 7 finite numbers (timestamp, rotation, "
                                  "translation)")
        world_to_camera = np.eye(4)
        world_to_camera[:3, :3] = Rotation.from_rotvec(values[1:4]).as_matrix()
        world_to_camera[:3, 3] = values[4:7]
        stamps.append(values[0])
        poses.append(np.linalg.inv(world_to_camera))
    if not stamps:
        raise SceneBuildError(f"{path}: no poses")
    return np.array(stamps), np.array(poses)


def read_pincam(path: Path) -> tuple[tuple[int, int], np.ndarray]:
    try:
        w, h, fx, fy, cx, cy = (float(v) for v in path.read_text().split())
    except (OSError, ValueError) as exc:
        raise SceneBuildError(f"{path}: expected 'width height fx fy cx cy' ({exc})") from exc
    return (int(w), int(h)), np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])


def annotated_boxes(path: Path, table: CategoryTable) -> list:
    items = read_json(path, SceneBuildError, dict, "the 3D box annotation").get("data")
    if not isinstance(items, list):
        raise SceneBuildError(f"{path}: expected a 'data' list of annotations")
    boxes = []
    for k, item in enumerate(items):
        category = table.resolve(item.get("label", ""))
        if category is None:
            continue
        obb = (item.get("segments") or {}).get("obbAligned") or {}
        where = f"{path}: data[{k}] ({item.get('label')}, uid {item.get('uid')})"
        if not all(key in obb for key in ("centroid", "axesLengths", "normalizedAxes")):
            raise SceneBuildError(f"{where}: segments.obbAligned needs centroid, axesLengths, normalizedAxes")
        boxes.append(validated_box(len(boxes), category, obb["centroid"], obb["axesLengths"], obb["normalizedAxes"],
                                   where))
    return boxes


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, rgb) of the scene mesh; a mesh without colors is drawn gray."""
    xyz, rgb, _ = read_ply_vertices(path, SceneBuildError, "scene mesh")
    return xyz, (rgb if rgb is not None else np.full((len(xyz), 3), UNCOLORED_GRAY, np.uint8))


def frame_candidates(frames_dir: Path, video_id: str, stamps: np.ndarray) -> list[tuple[Path, float, int]]:
    """(colour image, timestamp, pose index) of every usable ``lowres_wide`` frame, in time order."""
    color_dir = frames_dir / "lowres_wide"
    if not color_dir.is_dir():
        raise SceneBuildError(f"{color_dir}: missing (the low-resolution frames)")
    found = []
    for path in sorted(color_dir.glob(f"{video_id}_*.png")):
        try:
            stamp = float(path.stem[len(video_id) + 1:])
        except ValueError:
            continue
        nearest = int(np.argmin(np.abs(stamps - stamp)))
        has_files = ((frames_dir / "lowres_depth" / path.name).is_file()
                     and (frames_dir / "lowres_wide_intrinsics" / f"{path.stem}.pincam").is_file())
        if abs(stamps[nearest] - stamp) <= POSE_TOLERANCE_S and has_files:
            found.append((path, stamp, nearest))
    return sorted(found, key=lambda c: c[1])


def prepare_scene(root: Path, scene: str, layout: ProcessedLayout, table: CategoryTable,
                  num_frames: int = NUM_FRAMES) -> None:
    scan = root / _fold(layout.split) / scene
    if not scan.is_dir():
        raise SceneBuildError(f"{scan}: missing")
    boxes = annotated_boxes(scan / f"{scene}_3dod_annotation.json", table)
    xyz, rgb = read_mesh(scan / f"{scene}_3dod_mesh.ply")
    instance = instances_from_boxes(xyz, boxes)
    label_of_instance = np.array([table.label_id(b.category) for b in boxes] + [0])  # ids are 0..n-1; -1 -> 0
    label = label_of_instance[instance]
    frames_dir = scan / f"{scene}_frames" if (scan / f"{scene}_frames").is_dir() else scan
    stamps, poses = traj_poses(frames_dir / "lowres_wide.traj")
    candidates = frame_candidates(frames_dir, scene, stamps)
    if not candidates:
        raise SceneBuildError(f"{frames_dir / 'lowres_wide'}: no frame has depth, intrinsics and a pose within "
                              f"{POSE_TOLERANCE_S * 1000:.0f} ms")
    chosen = set(linspace_indices(len(candidates), num_frames).tolist())
    size, first_k = read_pincam(frames_dir / "lowres_wide_intrinsics" / f"{candidates[min(chosen)][0].stem}.pincam")
    write_intrinsics(layout, scene, first_k)
    gaps = np.diff([c[1] for c in candidates])
    fps = float(np.clip(np.round(1.0 / np.median(gaps)), 1, 60)) if len(gaps) else 10.0

    def color_frames():
        for index, (path, _, pose_index) in enumerate(candidates):
            with Image.open(path) as image:
                color = np.asarray(image.convert("RGB"))
            if color.shape[1::-1] != size:
                raise SceneBuildError(f"{path}: image is {color.shape[1]}x{color.shape[0]}, the scene's "
                                      f"frames are {size[0]}x{size[1]}")
            if index in chosen:
                with Image.open(frames_dir / "lowres_depth" / path.name) as image:
                    depth_mm = np.asarray(image).astype(np.uint16)
                _, k = read_pincam(frames_dir / "lowres_wide_intrinsics" / f"{path.stem}.pincam")
                pose = poses[pose_index]
                depth_m = np.asarray(Image.fromarray(depth_mm).resize(size, Image.NEAREST), dtype=np.float64) / 1000
                mask = render_instance_mask(xyz, instance, pose, k, depth_m)
                write_sampled_frame(layout, scene, index, color, depth_mm, mask, pose)
            yield color

    write_video(layout.video_path(scene), color_frames(), fps, *size)
    write_annotated_boxes(layout.boxes_path(scene), boxes)
    write_point_cloud(layout.point_cloud_path(scene), LabeledPoints(xyz, rgb, label, np.maximum(instance, 0)))
