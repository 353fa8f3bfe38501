"""Precomputed CUT3R tokens (docs/design.md, model §5.4, with its bugs fixed): ``vlm3r features extract`` writes
them, training reads them instead of running CUT3R.

- One path rule for both (``feature_path``): ``<features>/<the video's path below the video folder>.pt``, the
  video's suffix kept (``room.mp4`` -> ``room.mp4.pt``, so ``room.mov`` does not collide with it).
- Each file holds ``camera_tokens`` [F, 1, D], ``patch_tokens`` [F, N, D] and ``meta``: the frames, the SigLIP
  and CUT3R input sizes, the frame indices and the SHA-256 of the CUT3R file they were made with. Training
  checks all of it against its model (``FeatureSpec``) and names the file and the field that differ.
- Computed on exactly the pixels the model sees (SigLIP preprocessing, then bilinear resize for CUT3R), one
  recurrent state per video. Runs resume (finished files are skipped), each file is written whole or not at
  all, failing videos are reported by name with the reason. Under ``torchrun`` (or with ``--shard i/n``) the
  videos are split between processes; their failures end in one ``failures.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vlm3r.errors import Vlm3rError
from vlm3r.model.cut3r import Cut3r
from vlm3r.model.video import cut3r_pixels, siglip_pixels
from vlm3r.utils.fileio import atomic_torch_save, atomic_write_text, load_torch, read_json, sha256_of
from vlm3r.utils.parallel import shard_of
from vlm3r.utils.video import VideoError, read_video_frames

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
FEATURE_SUFFIX = ".pt"
FAILURES = "failures.json"


class FeatureError(Vlm3rError):
    """A feature file that cannot be used with the model; the message names the file and the field."""


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature file must have been made with to stand in for the model's own CUT3R pass."""

    frames: int
    image_size: int  # SigLIP input size the frames were resized to
    cut3r_size: int  # CUT3R input size
    tokens: int  # patch tokens per frame: (cut3r_size / patch)^2
    width: int  # CUT3R decoder width
    cut3r_sha256: str | None = None  # the CUT3R weights; None: not checked

    @classmethod
    def for_cut3r(cls, config, frames: int, image_size: int, cut3r_size: int, cut3r_path: Path) -> FeatureSpec:
        """The spec of a CUT3R (its ``Cut3rConfig`` and weights file) run on ``frames`` frames at these sizes."""
        return cls(frames, image_size, cut3r_size, (cut3r_size // config.patch_size) ** 2, config.dec_embed_dim,
                   sha256_of(cut3r_path))


def feature_path(features: Path, video_folder: Path, video: Path | str) -> Path:
    """Where the tokens of ``video`` (a path below ``video_folder``, or relative to it) live under ``features``."""
    video = Path(video)
    relative = video
    if video.is_absolute():
        try:
            relative = video.resolve().relative_to(Path(video_folder).resolve())
        except ValueError as exc:
            raise FeatureError(f"{video}: not below the video folder {video_folder}, so it has no feature path "
                               "there") from exc
    return features / relative.with_name(relative.name + FEATURE_SUFFIX)


def video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def video_tokens(cut3r: Cut3r, video: Path, spec: FeatureSpec) -> dict:
    """The tokens and ``meta`` of one video, as a feature file holds them."""
    frames, indices, _ = read_video_frames(video, spec.frames)
    param = cut3r.pose_token
    pixels = cut3r_pixels(siglip_pixels(frames, spec.image_size), spec.cut3r_size).to(param.device, param.dtype)
    with torch.inference_mode():
        camera, patch = cut3r.encode_video(pixels)
    meta = {**asdict(spec), "frame_indices": [int(i) for i in indices]}  # fewer than frames for a short video
    return {"camera_tokens": camera.cpu().clone(), "patch_tokens": patch.cpu().clone(), "meta": meta}


def load_features(path: Path, spec: FeatureSpec, frame_indices=None) -> dict[str, torch.Tensor]:
    """The tokens of a feature file, checked against ``spec`` (and against the video's sampled
    ``frame_indices``, when given)."""
    data = load_torch(path, FeatureError, "a feature file")
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        raise FeatureError(f"{path}: no meta (frames, sizes, CUT3R checksum): written by an older vlm3r; extract "
                           "the features again with `vlm3r features extract`")
    wanted = asdict(spec)
    for name in ("frames", "image_size", "cut3r_size", "cut3r_sha256"):
        if name == "cut3r_sha256" and spec.cut3r_sha256 is None:
            continue
        if meta.get(name) != wanted[name]:
            raise FeatureError(f"{path}: meta.{name} is {meta.get(name)!r}, the model needs {wanted[name]!r}")
    indices = meta.get("frame_indices")
    if frame_indices is not None and list(indices or []) != [int(i) for i in frame_indices]:
        raise FeatureError(f"{path}: meta.frame_indices {indices} are not the video's sampled frames "
                           f"{[int(i) for i in frame_indices]} (the video changed?)")
    count = len(indices or [])
    expected = {"camera_tokens": (count, 1, spec.width), "patch_tokens": (count, spec.tokens, spec.width)}
    for name, shape in expected.items():
        value = data.get(name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else None
            raise FeatureError(f"{path}: {name}: the model needs {list(shape)}, the file has {got}")
    return {"camera_tokens": data["camera_tokens"], "patch_tokens": data["patch_tokens"]}


@dataclass
class ExtractionReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already present
    failed: dict[str, str] = field(default_factory=dict)  # video -> reason


def extract_features(cut3r: Cut3r, videos: Path, out: Path, files: list[Path], spec: FeatureSpec,
                     progress: Callable[[Path], None] | None = None) -> ExtractionReport:
    """Tokens of ``files`` (from ``video_files(videos)``) at their ``feature_path`` under ``out``."""
    report = ExtractionReport()
    for video in files:
        # relative to the folder, as training data names videos (``videos`` itself may be a relative path)
        target = feature_path(out, videos, video.relative_to(videos))
        if target.is_file():
            report.skipped.append(target)
        else:
            try:
                atomic_torch_save(video_tokens(cut3r, video, spec), target)
                report.written.append(target)
            except (VideoError, RuntimeError, OSError) as exc:
                report.failed[str(video)] = str(exc)
        if progress:
            progress(video)
    return report


def shard_failures_path(out: Path, index: int, count: int) -> Path:
    return out / f"failures.shard-{index}-of-{count}.json"


def merge_failures(out: Path, single: dict[str, str] | None = None) -> dict[str, str]:
    """``failures.json``: ``single`` (one process did everything), else the union of every shard's file;
    removed when there are none. Returns what it holds."""
    failures: dict[str, str] = dict(single or {})
    if single is None:
        for path in sorted(out.glob("failures.shard-*-of-*.json")):
            failures.update(read_json(path, FeatureError, dict, "a shard's failed videos"))
    target = out / FAILURES
    if failures:
        atomic_write_text(target, json.dumps(dict(sorted(failures.items())), indent=1))
    else:
        target.unlink(missing_ok=True)
    return failures


@dataclass
class ExtractionResult:
    report: ExtractionReport  # this process's
    failures: dict[str, str]  # every shard's, as far as known (all of them under torchrun, on process 0)
    shard: tuple[int, int]


def run_extraction(cut3r: Cut3r, cut3r_path: Path, videos: Path, out: Path, frames: int, image_size: int,
                   cut3r_size: int, shard: tuple[int, int] | None = None,
                   progress_factory: Callable[[int], Callable[[Path], None]] | None = None) -> ExtractionResult:
    """Extract this process's share of the videos (``shard``, else the launcher's rank among its processes).

    Args:
        cut3r, cut3r_path: the loaded CUT3R and its file (its checksum goes into every file).
        videos, out: the video folder (searched recursively) and the feature folder.
        frames, image_size, cut3r_size: as the model samples and resizes.
        shard: (i, n) for the i-th of n independent jobs; None under torchrun: the process's rank.
        progress_factory: called with this share's video count; the callable it returns gets each video.
    """
    state = None
    if shard is None:
        from accelerate import PartialState

        state = PartialState(cpu=cut3r.pose_token.device.type == "cpu")
        shard = (state.process_index, state.num_processes)
    spec = FeatureSpec.for_cut3r(cut3r.config, frames, image_size, cut3r_size, cut3r_path)
    files = shard_of(video_files(videos), *shard)
    progress = progress_factory(len(files)) if progress_factory else None
    report = extract_features(cut3r, videos, out, files, spec, progress)
    index, count = shard
    if count > 1:
        atomic_write_text(shard_failures_path(out, index, count), json.dumps(report.failed, indent=1))
    if state is not None and count > 1:
        state.wait_for_everyone()  # every process has written its failures before process 0 merges them
        failures = merge_failures(out) if state.is_main_process else report.failed
    else:
        failures = merge_failures(out, report.failed if count == 1 else None)
    return ExtractionResult(report, failures, shard)
