"""Video frames as VLM-3R's towers see them (docs/design.md, model §1.2, cut3r §3): frames sampled
by ``vlm3r.utils.video.read_video_frames``; SigLIP preprocessing squashes each to 384x384 with PIL bicubic
resampling and maps it to [-1, 1]; CUT3R then sees the same pixels bilinearly resized to 432x432 (a 27x27
patch grid).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vlm3r.utils.frames import CUT3R_IMAGE_SIZE, SIGLIP_IMAGE_SIZE


def siglip_pixels(frames: np.ndarray, size: int = SIGLIP_IMAGE_SIZE) -> torch.Tensor:
    """[F, 3, size, size] float32 in [-1, 1]: PIL bicubic resize (aspect squashed), x / 255, (x - 0.5) / 0.5."""
    resized = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in frames])
    pixels = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255.0
    return (pixels - 0.5) / 0.5


def cut3r_pixels(siglip: torch.Tensor, size: int = CUT3R_IMAGE_SIZE) -> torch.Tensor:
    """The SigLIP pixels bilinearly resized for CUT3R (align_corners False, no antialias)."""
    return F.interpolate(siglip, size=(size, size), mode="bilinear", align_corners=False)
