"""The feature extraction job (``vlm3r features extract``): CUT3R tokens of every video of a folder, or of the
videos a training file names, written as feature files (their format: ``vlm3r.training.features``) that training
reads instead of running CUT3R.

Runs resume (finished files are skipped), each file is written whole or not at all, failing videos are reported
by name with the reason. Under ``torchrun`` (or with ``--shard i/n``) the videos are dealt to the processes
(``utils.parallel.shard_of``); their failures end in one ``failures.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vlm3r.model.cut3r import Cut3r, load_cut3r, read_architecture_file
from vlm3r.model.video import cut3r_pixels, siglip_pixels
from vlm3r.training.data import read_training_samples
from vlm3r.training.features import FeatureError, FeatureSpec, feature_path, feature_record
from vlm3r.utils.devices import check_device, torch_dtype
from vlm3r.utils.fileio import atomic_torch_save, atomic_write_text, read_json
from vlm3r.utils.parallel import shard_of
from vlm3r.utils.video import VIDEO_SUFFIXES, VideoError, read_video_frames

FAILURES = "failures.json"


def video_files(folder: Path) -> list[Path]:
    """Every video below ``folder`` (by suffix, ``VIDEO_SUFFIXES``), in path order: the order shards deal."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def video_names(videos: Path, data: Path | None = None) -> list[Path]:
    """The videos to extract, named as training names them (below the video folder ``videos``, its
    ``data.video_folder``), in path order: those the training file ``data`` names (each once, whatever its
    sampling strategies draw), or with no ``data`` every video below ``videos``."""
    if data is None:
        return [video.relative_to(videos) for video in video_files(videos)]
    samples = read_training_samples(data, every=True)
    return sorted({Path(sample["video"]) for sample in samples if "video" in sample}, key=str)


def video_tokens(cut3r: Cut3r, video: Path, spec: FeatureSpec) -> dict:
    """The feature file of one video: its tokens, computed on exactly the pixels the model sees (SigLIP
    preprocessing, then bilinear resize for CUT3R), one recurrent state per video."""
    frames, indices, _ = read_video_frames(video, spec.frames)
    param = cut3r.pose_token
    pixels = cut3r_pixels(siglip_pixels(frames, spec.image_size), spec.cut3r_size).to(param.device, param.dtype)
    with torch.inference_mode():
        camera, patch = cut3r.encode_video(pixels)
    return feature_record(camera, patch, spec, indices)


@dataclass
class ExtractionReport:
    """What one process did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already present
    failed: dict[str, str] = field(default_factory=dict)  # video -> reason


def extract_features(cut3r: Cut3r, videos: Path, out: Path, names: list[Path], spec: FeatureSpec,
                     progress: Callable[[Path], None] | None = None) -> ExtractionReport:
    """Tokens of the videos ``names`` (from ``video_names``: below ``videos``, as training names them) at their
    ``feature_path`` under ``out``, the one training computes from the same name."""
    report = ExtractionReport()
    for name in names:
        video = videos / name
        try:  # FeatureError: an absolute name outside the video folder, which has no feature path there
            target = feature_path(out, videos, name)
            if target.is_file():
                report.skipped.append(target)
            else:
                atomic_torch_save(video_tokens(cut3r, video, spec), target)
                report.written.append(target)
        except (FeatureError, VideoError, RuntimeError, OSError) as exc:
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
    """What a process reports: its own work, every shard's failures and its share."""

    report: ExtractionReport  # this process's
    failures: dict[str, str]  # every shard's, as far as known (all of them under torchrun, on process 0)
    shard: tuple[int, int]


def run_extraction(cut3r: Cut3r, cut3r_path: Path, videos: Path, out: Path, frames: int, image_size: int,
                   cut3r_size: int, shard: tuple[int, int] | None = None,
                   progress_factory: Callable[[int], Callable[[Path], None]] | None = None,
                   data: Path | None = None) -> ExtractionResult:
    """Extract this process's share of the videos (``shard``, else the launcher's rank among its processes).

    Args:
        cut3r, cut3r_path: the loaded CUT3R and its file (its checksum goes into every file).
        videos, out: the video folder (``data.video_folder``) and the feature folder (``data.features``).
        frames, image_size, cut3r_size: as the model samples and resizes.
        shard: (i, n) for the i-th of n independent jobs; None under torchrun: the process's rank.
        progress_factory: called with this share's video count; the callable it returns gets each video.
        data: a training file (``data.train``): only the videos it names; None: every video below ``videos``.
    """
    state = None
    if shard is None:
        from accelerate import PartialState

        state = PartialState(cpu=cut3r.pose_token.device.type == "cpu")
        shard = (state.process_index, state.num_processes)
    spec = FeatureSpec.for_cut3r(cut3r.config, frames, image_size, cut3r_size, cut3r_path)
    names = shard_of(video_names(videos, data), *shard)
    progress = progress_factory(len(names)) if progress_factory else None
    report = extract_features(cut3r, videos, out, names, spec, progress)
    index, count = shard
    if count > 1:
        atomic_write_text(shard_failures_path(out, index, count), json.dumps(report.failed, indent=1))
    if state is not None and count > 1:
        state.wait_for_everyone()  # every process has written its failures before process 0 merges them
        failures = merge_failures(out) if state.is_main_process else report.failed
    else:
        failures = merge_failures(out, report.failed if count == 1 else None)
    return ExtractionResult(report, failures, shard)


def extract_folder(cut3r_path: Path, videos: Path, out: Path, frames: int, image_size: int, cut3r_size: int,
                   config: Path | None = None, device: str = "cpu", dtype: str = "fp32",
                   shard: tuple[int, int] | None = None,
                   progress_factory: Callable[[int], Callable[[Path], None]] | None = None,
                   data: Path | None = None) -> ExtractionResult:
    """``vlm3r features extract``: load the CUT3R of ``cut3r_path`` (``config``: its JSON architecture, needed for
    .safetensors) on ``device`` in ``dtype``, then ``run_extraction`` with the other arguments. ``data`` (a
    training file) is read first, so that a bad one stops the job before CUT3R is loaded."""
    if data is not None:
        read_training_samples(data, every=True)
    run_dtype, device = torch_dtype(dtype), check_device(device)
    cut3r = load_cut3r(cut3r_path, config=read_architecture_file(config), device=device, dtype=run_dtype,
                       with_heads=False)
    return run_extraction(cut3r, cut3r_path, videos, out, frames, image_size, cut3r_size, shard, progress_factory,
                          data)
