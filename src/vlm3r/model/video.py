"""Video frames as VLM-3R sees them (reference-model.md §1.1-1.2, reference-cut3r.md §3).

Frames are ``np.linspace(0, N - 1, num_frames)`` of the decoded video (the sampling the benchmarks' "frame k of
N" refers to); SigLIP preprocessing squashes each to 384x384 with PIL bicubic resampling and maps it to [-1, 1];
CUT3R then sees the same pixels bilinearly resized to 432x432 (a 27x27 patch grid).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vlm3r.utils.frames import linspace_indices

SIGLIP_SIZE = 384
CUT3R_SIZE = 432


class VideoError(ValueError):
    """A video that cannot be read; the message names the file."""


def read_video_frames(path: Path | str, num_frames: int = 32) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames uint8 [F, H, W, 3], their indices in the video, the video's frame rate)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0) or 24.0
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc
    if not decoded:
        raise VideoError(f"{path}: the video has no frames")
    indices = linspace_indices(len(decoded), num_frames)
    return np.stack([decoded[i] for i in indices]), indices, fps


def siglip_pixels(frames: np.ndarray, size: int = SIGLIP_SIZE) -> torch.Tensor:
    """[F, 3, size, size] float32 in [-1, 1]: PIL bicubic resize (aspect squashed), x / 255, (x - 0.5) / 0.5."""
    resized = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in frames])
    pixels = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255.0
    return (pixels - 0.5) / 0.5


def cut3r_pixels(siglip: torch.Tensor, size: int = CUT3R_SIZE) -> torch.Tensor:
    """The SigLIP pixels bilinearly resized for CUT3R (align_corners False, no antialias)."""
    return F.interpolate(siglip, size=(size, size), mode="bilinear", align_corners=False)
