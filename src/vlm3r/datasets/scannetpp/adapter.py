"""ScanNet++ scene -> processed layout.

Per scene ``<root>/data/<scene>/``: ``scans/mesh_aligned_0.05.ply``, ``scans/segments.json`` and
``scans/segments_anno.json`` (``segGroups`` with ``id``, ``label``, ``segments`` and an ``obb``), and the iPhone
capture: ``iphone/rgb.mkv`` (or extracted ``iphone/rgb/frame_XXXXXX.jpg``), ``iphone/depth.bin`` and
``iphone/pose_intrinsic_imu.json`` (per ``frame_XXXXXX``: ``aligned_pose``, the camera-to-world pose in the
aligned mesh's frame, and ``intrinsic``, 3x3 for the RGB images).

- Scenes: ``<root>/splits/nvs_sem_<split>.txt`` when present, otherwise every scene under ``data/``.
- Objects: each segment group whose label the category table keeps (``data/categories/scannetpp.json``) and
  that has an ``obb`` is one instance with the group's id; its box is kept as annotated, and its vertices
  (through the segments) carry its id in the labelled point cloud.
- Frames: the video is every iPhone frame at 640x480 and the capture rate (frame ids = iPhone frame indices);
  32 ``linspace`` frames among those with a finite pose are sampled, with depth (192x256 in ``depth.bin``:
  one raw-deflate stream of float32 metres, or per frame a 4-byte size and a raw-deflate float32 or lz4 uint16
  block) resized to 640x480, and an instance mask rendered from the labelled mesh (``annotated``).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image

from vlm3r.datasets.annotated import render_instance_mask, validated_box, write_annotated_boxes
from vlm3r.datasets.categories import CategoryTable
from vlm3r.datasets.layout import ProcessedLayout, listed_or_all
from vlm3r.datasets.media import write_intrinsics, write_sampled_frame, write_video
from vlm3r.datasets.pointcloud import write_point_cloud
from vlm3r.datasets.segments import read_json, read_seg_groups, segment_labeled_points
from vlm3r.errors import SceneBuildError
from vlm3r.utils.frames import NUM_FRAMES, linspace_indices

FRAME_SIZE = (640, 480)
DEPTH_SHAPE = (192, 256)


def list_scenes(root: Path, split: str) -> list[str]:
    return listed_or_all(root / "splits" / f"nvs_sem_{split}.txt", root / "data", "ScanNet++")


def annotated_boxes(path: Path, table: CategoryTable) -> list:
    boxes = []
    for group in read_seg_groups(path, "object annotation"):
        category = table.resolve(group.get("label", ""))
        obb = group.get("obb")
        if category is None or not obb:
            continue
        boxes.append(validated_box(int(group["id"]), category, obb.get("centroid"), obb.get("axesLengths"),
                                   obb.get("normalizedAxes"), f"{path}: segGroup {group.get('id')} "
                                                              f"({group.get('label')})"))
    return boxes


def read_depth_frames(path: Path) -> np.ndarray:
    """All depth frames [N, 192, 256] in metres (float32: a long capture holds tens of thousands of frames)."""
    if not path.is_file():
        raise SceneBuildError(f"{path}: missing (the iPhone depth)")
    data = path.read_bytes()
    pixels = DEPTH_SHAPE[0] * DEPTH_SHAPE[1]
    try:
        whole = zlib.decompress(data, wbits=-zlib.MAX_WBITS)
        if len(whole) % (4 * pixels) == 0:
            return np.frombuffer(whole, dtype="<f4").reshape(-1, *DEPTH_SHAPE)
    except zlib.error:
        pass
    frames, at = [], 0
    while at < len(data):
        if at + 4 > len(data):
            raise SceneBuildError(f"{path}: truncated after frame {len(frames)}")
        size = int.from_bytes(data[at:at + 4], "little")
        block = data[at + 4:at + 4 + size]
        if len(block) != size:
            raise SceneBuildError(f"{path}: frame {len(frames)} truncated ({len(block)} of {size} bytes)")
        frames.append(_depth_block(block, path, len(frames), pixels))
        at += 4 + size
    if not frames:
        raise SceneBuildError(f"{path}: no depth frames")
    return np.stack(frames)


def _depth_block(block: bytes, path: Path, index: int, pixels: int) -> np.ndarray:
    try:
        raw = zlib.decompress(block, wbits=-zlib.MAX_WBITS)
        return np.frombuffer(raw, dtype="<f4").reshape(DEPTH_SHAPE)
    except (zlib.error, ValueError):
        pass
    try:
        import lz4.block
    except ImportError as exc:
        raise SceneBuildError(f"{path}: frame {index} is lz4-compressed; install lz4 (pip install lz4) to read "
                              "it") from exc
    try:
        raw = lz4.block.decompress(block, uncompressed_size=2 * pixels)
    except Exception as exc:  # lz4 raises its own error type
        raise SceneBuildError(f"{path}: frame {index}: neither deflate nor lz4 ({exc})") from exc
    return (np.frombuffer(raw, dtype="<u2").reshape(DEPTH_SHAPE) / 1000.0).astype(np.float32)


def read_poses(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Frame index -> (camera-to-world, 3x3 intrinsics) for frames with a finite pose."""
    poses = {}
    for name, entry in read_json(path, "iPhone poses and intrinsics").items():
        try:
            index = int(name.rsplit("_", 1)[-1])
            pose = np.asarray(entry["aligned_pose"], dtype=np.float64).reshape(4, 4)
            k = np.asarray(entry["intrinsic"], dtype=np.float64).reshape(3, 3)
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneBuildError(f"{path}: {name}: needs aligned_pose (4x4) and intrinsic (3x3)") from exc
        if np.all(np.isfinite(pose)) and np.all(np.isfinite(k)):
            poses[index] = (pose, k)
    return poses


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def rgb_frames(iphone: Path):
    """The iPhone RGB frames in order (extracted JPEGs if present, else decoded from rgb.mkv), the frame rate
    and the image size (width, height)."""
    folder = iphone / "rgb"
    if folder.is_dir() and any(folder.glob("frame_*.jpg")):
        files = sorted(folder.glob("frame_*.jpg"), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
        with Image.open(files[0]) as first:
            size = first.size
        return (_read_rgb(p) for p in files), 60.0, size
    video = iphone / "rgb.mkv"
    if not video.is_file():
        raise SceneBuildError(f"{video}: missing (the iPhone video; or extracted frames in {folder})")
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 60)
            size = (stream.codec_context.width, stream.codec_context.height)
    except (av.FFmpegError, IndexError) as exc:
        raise SceneBuildError(f"{video}: not a readable video ({exc})") from exc

    def decode():
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    return decode(), fps, size


def prepare_scene(root: Path, scene: str, layout: ProcessedLayout, table: CategoryTable,
                  num_frames: int = NUM_FRAMES) -> None:
    folder = root / "data" / scene
    if not folder.is_dir():
        raise SceneBuildError(f"{folder}: missing")
    scans, iphone = folder / "scans", folder / "iphone"
    boxes = annotated_boxes(scans / "segments_anno.json", table)
    points = segment_labeled_points(scans / "mesh_aligned_0.05.ply", scans / "segments.json",
                                     scans / "segments_anno.json", table)
    poses = read_poses(iphone / "pose_intrinsic_imu.json")
    depth = read_depth_frames(iphone / "depth.bin")
    usable = sorted(i for i in poses if i < len(depth))
    if not usable:
        raise SceneBuildError(f"{iphone / 'pose_intrinsic_imu.json'}: no frame with a finite pose and depth")
    chosen = set(np.asarray(usable)[linspace_indices(len(usable), num_frames)].tolist())
    frames, fps, (width, height) = rgb_frames(iphone)
    scale = np.diag([FRAME_SIZE[0] / width, FRAME_SIZE[1] / height, 1.0])
    write_intrinsics(layout, scene, scale @ poses[min(chosen)][1])
    instance = np.where(points.label > 0, points.instance_id, -1)

    def color_frames():
        for index, rgb in enumerate(frames):
            if rgb.shape[1::-1] != (width, height):
                raise SceneBuildError(f"{iphone}: frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, not {width}x{height}")
            small = np.asarray(Image.fromarray(rgb).resize(FRAME_SIZE, Image.BILINEAR))
            if index in chosen:
                pose, k = poses[index]
                k = scale @ k
                depth_m = np.asarray(Image.fromarray(depth[index].astype(np.float32)).resize(FRAME_SIZE,
                                                                                             Image.NEAREST))
                mask = render_instance_mask(points.xyz, instance, pose, k, depth_m.astype(np.float64))
                depth_mm = np.clip(np.round(depth_m * 1000.0), 0, 65535)
                write_sampled_frame(layout, scene, index, small, depth_mm, mask, pose)
            yield small

    count = write_video(layout.video_path(scene), color_frames(), fps, *FRAME_SIZE)
    if count <= max(chosen):
        raise SceneBuildError(f"{iphone}: the video has {count} frames, poses go to frame {max(chosen)}")
    write_annotated_boxes(layout.boxes_path(scene), boxes)
    write_point_cloud(layout.point_cloud_path(scene), points)
