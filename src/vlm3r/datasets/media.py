"""Writing the processed layout's media: videos, images, matrices (shared by every dataset adapter)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path

import av
import numpy as np
from PIL import Image

from vlm3r.utils.fileio import atomic_path, atomic_write_bytes, atomic_write_text


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, width: int, height: int,
                on_frame: Callable[[], None] | None = None) -> int:
    """H.264 mp4 of RGB uint8 frames [height, width, 3], written atomically; returns the frame count."""
    count = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "20", "preset": "ultrafast", "threads": "1"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                count += 1
                if on_frame is not None:
                    on_frame()
            container.mux(stream.encode())
    return count


def encode_image(array: np.ndarray, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


def write_image(path: Path, array: np.ndarray, **options) -> None:
    """PNG or JPEG by suffix (16-bit arrays stay 16-bit in PNG)."""
    format = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    atomic_write_bytes(path, encode_image(array, format, **options))


def matrix_text(matrix: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.9f}" for v in row) for row in matrix) + "\n"


def write_matrix(path: Path, matrix: np.ndarray) -> None:
    atomic_write_text(path, matrix_text(np.asarray(matrix, dtype=np.float64)))


def write_sampled_frame(layout, scene: str, frame_id: int, rgb: np.ndarray, depth_mm: np.ndarray,
                        mask: np.ndarray, camera_to_world: np.ndarray) -> None:
    """One sampled frame in the processed layout: colour JPEG, 16-bit depth PNG (mm), 16-bit instance mask PNG
    (value = instance id + 1), camera-to-world pose text."""
    write_image(layout.color_path(scene, frame_id), rgb, quality=95)
    write_image(layout.depth_path(scene, frame_id), depth_mm.astype(np.uint16), compress_level=1)
    write_image(layout.instance_path(scene, frame_id), mask.astype(np.uint16), compress_level=1)
    write_matrix(layout.pose_path(scene, frame_id), camera_to_world)


def write_intrinsics(layout, scene: str, k: np.ndarray) -> None:
    """The 3x3 pinhole matrix as the 4x4 ``intrinsic_depth_<scene>.txt`` of the layout."""
    k4 = np.eye(4)
    k4[:3, :3] = np.asarray(k)[:3, :3]
    write_matrix(layout.intrinsic_path(scene), k4)
