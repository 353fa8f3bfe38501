"""ScanNet ``.sens`` RGB-D streams (the format of ScanNet's SensorData): a header with the colour and depth
intrinsics and image sizes, then per frame a camera-to-world pose, timestamps, a compressed colour image (JPEG)
and compressed depth (zlib uint16, millimetres after ``depth_shift``).

``SensFile`` indexes the frames once (offsets only) and decodes a frame on demand; a truncated or malformed
file raises ``SensError`` naming the file and the frame."""

from __future__ import annotations

import io
import mmap
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vlm3r.errors import Vlm3rError

COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}
_FRAME_HEADER = struct.Struct("<16f4Q")  # pose, timestamp colour, timestamp depth, colour bytes, depth bytes


class SensError(Vlm3rError):
    """A .sens file that cannot be read; the message names the file and the frame or field."""


@dataclass(frozen=True)
class SensHeader:
    version: int
    sensor_name: str
    intrinsic_color: np.ndarray  # 4x4
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: str
    depth_compression: str
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    num_frames: int


@dataclass(frozen=True)
class SensFrame:
    camera_to_world: np.ndarray  # 4x4 float64 (may hold -inf where ScanNet lost tracking)
    timestamp_color: int
    timestamp_depth: int
    color_offset: int
    color_size: int
    depth_offset: int
    depth_size: int


class SensFile:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise SensError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise SensError(f"{self.path}: empty file")
        with self.path.open("rb") as f:  # mapped, not read: real .sens files are gigabytes
            self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.header, offset = self._read_header()
        self.frames = self._index_frames(offset)

    def close(self) -> None:
        self._data.close()

    def __enter__(self) -> SensFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unpack(self, fmt: str, offset: int, what: str):
        size = struct.calcsize(fmt)
        if offset + size > len(self._data):
            raise SensError(f"{self.path}: truncated in {what} (offset {offset}, file {len(self._data)} bytes)")
        return struct.unpack_from(fmt, self._data, offset), offset + size

    def _read_header(self) -> tuple[SensHeader, int]:
        (version,), at = self._unpack("<I", 0, "header version")
        if version != 4:
            raise SensError(f"{self.path}: header version is {version}, expected 4 (not a ScanNet .sens file?)")
        (name_length,), at = self._unpack("<Q", at, "header sensor name")
        if name_length > 4096:
            raise SensError(f"{self.path}: header sensor name length {name_length} is implausible")
        name = self._data[at:at + name_length].decode("utf-8", "replace")
        at += name_length
        matrices = []
        for what in ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth"):
            values, at = self._unpack("<16f", at, f"header {what}")
            matrices.append(np.array(values, dtype=np.float64).reshape(4, 4))
        (color_type, depth_type), at = self._unpack("<ii", at, "header compression types")
        (cw, ch, dw, dh), at = self._unpack("<4I", at, "header image sizes")
        (shift,), at = self._unpack("<f", at, "header depth_shift")
        (count,), at = self._unpack("<Q", at, "header frame count")
        if COLOR_COMPRESSION.get(color_type) != "jpeg":
            raise SensError(f"{self.path}: colour compression {COLOR_COMPRESSION.get(color_type, color_type)!r} "
                            "is not supported (ScanNet uses jpeg)")
        if DEPTH_COMPRESSION.get(depth_type) != "zlib_ushort":
            raise SensError(f"{self.path}: depth compression {DEPTH_COMPRESSION.get(depth_type, depth_type)!r} "
                            "is not supported (ScanNet uses zlib_ushort)")
        if min(cw, ch, dw, dh) == 0 or not shift > 0:
            raise SensError(f"{self.path}: header image sizes {cw}x{ch} / {dw}x{dh} or depth_shift {shift} invalid")
        header = SensHeader(version, name, *matrices, "jpeg", "zlib_ushort", cw, ch, dw, dh, float(shift), count)
        return header, at

    def _index_frames(self, at: int) -> list[SensFrame]:
        frames = []
        for index in range(self.header.num_frames):
            values, at = self._unpack(_FRAME_HEADER.format, at, f"frame {index} header")
            color_size, depth_size = values[18], values[19]
            end = at + color_size + depth_size
            if end > len(self._data):
                raise SensError(f"{self.path}: truncated in frame {index} of {self.header.num_frames} (image data "
                                f"ends at {end}, file {len(self._data)} bytes)")
            frames.append(SensFrame(np.array(values[:16], dtype=np.float64).reshape(4, 4), values[16], values[17],
                                    at, color_size, at + color_size, depth_size))
            at = end
        return frames

    def __len__(self) -> int:
        return len(self.frames)

    def color(self, index: int) -> np.ndarray:
        """RGB uint8 [color_height, color_width, 3]."""
        frame = self.frames[index]
        try:
            with Image.open(io.BytesIO(self._data[frame.color_offset:frame.color_offset + frame.color_size])) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise SensError(f"{self.path}: frame {index}: colour image does not decode ({exc})") from exc

    def depth_mm(self, index: int) -> np.ndarray:
        """uint16 [depth_height, depth_width] in millimetres (raw values scaled by 1000 / depth_shift)."""
        frame = self.frames[index]
        h = self.header
        try:
            raw = zlib.decompress(self._data[frame.depth_offset:frame.depth_offset + frame.depth_size])
        except zlib.error as exc:
            raise SensError(f"{self.path}: frame {index}: depth does not decompress ({exc})") from exc
        if len(raw) != 2 * h.depth_width * h.depth_height:
            raise SensError(f"{self.path}: frame {index}: depth has {len(raw)} bytes, expected "
                            f"{2 * h.depth_width * h.depth_height}")
        depth = np.frombuffer(raw, dtype="<u2").reshape(h.depth_height, h.depth_width)
        if h.depth_shift == 1000.0:
            return depth.copy()
        return np.clip(np.round(depth * (1000.0 / h.depth_shift)), 0, 65535).astype(np.uint16)
