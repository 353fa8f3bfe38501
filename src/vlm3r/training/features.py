"""Offline CUT3R token cache (reference-model.md §5.4, with its bugs fixed): for every video under a folder,
``{"camera_tokens": [F, 1, D], "patch_tokens": [F, N, D]}`` at ``<out>/<relative path>.pt``, computed on the
same pixels as the model sees (SigLIP preprocessing, then bilinear resize for CUT3R), one recurrent state per
video, all ``num_frames`` frames. Runs resume: finished files are skipped; each file is written whole or not
at all; videos that fail are reported by name with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vlm3r.model.cut3r import Cut3r
from vlm3r.model.video import cut3r_pixels, siglip_pixels
from vlm3r.utils.video import VideoError, read_video_frames
from vlm3r.utils.fileio import atomic_path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass
class ExtractionReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already present
    failed: dict[str, str] = field(default_factory=dict)  # video -> reason


def video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


@torch.inference_mode()
def video_tokens(cut3r: Cut3r, video: Path, num_frames: int = 32, image_size: int = 384,
                 cut3r_size: int = 432) -> dict[str, torch.Tensor]:
    frames, _, _ = read_video_frames(video, num_frames)
    param = cut3r.pose_token
    pixels = cut3r_pixels(siglip_pixels(frames, image_size), cut3r_size).to(param.device, param.dtype)
    camera, patch = cut3r.encode_video(pixels)
    return {"camera_tokens": camera.cpu().clone(), "patch_tokens": patch.cpu().clone()}


def extract_features(cut3r: Cut3r, videos: Path, out: Path, files: list[Path], num_frames: int = 32,
                     image_size: int = 384, cut3r_size: int = 432,
                     progress: Callable[[Path], None] | None = None) -> ExtractionReport:
    """Tokens of ``files`` (from ``video_files(videos)``) at their paths relative to ``videos``, under ``out``."""
    report = ExtractionReport()
    for video in files:
        target = out / video.relative_to(videos).with_suffix(".pt")
        if target.is_file():
            report.skipped.append(target)
        else:
            try:
                tokens = video_tokens(cut3r, video, num_frames, image_size, cut3r_size)
                with atomic_path(target) as tmp:
                    torch.save(tokens, str(tmp))
                report.written.append(target)
            except (VideoError, RuntimeError, OSError) as exc:
                report.failed[str(video)] = str(exc)
        if progress:
            progress(video)
    return report
