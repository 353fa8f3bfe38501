"""The feature file format of precomputed CUT3R tokens (docs/design.md, model §5.4, with its bugs fixed): the
extraction job (``vlm3r.training.extraction``, ``vlm3r features extract``) writes the files, training reads them
instead of running CUT3R; both read this module.

- One path rule for both (``feature_path``): ``<features>/<the video's path below the video folder>.pt``, the
  video's suffix kept (``room.mp4`` -> ``room.mp4.pt``, so ``room.mov`` does not collide with it).
- Each file holds ``camera_tokens`` [F, 1, D], ``patch_tokens`` [F, N, D] and ``meta``: the frames, the SigLIP
  and CUT3R input sizes, the frame indices and the SHA-256 of the CUT3R file they were made with
  (``feature_record``). Training checks all of it against its model (``FeatureSpec``, ``load_features``) and
  names the file and the field that differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vlm3r.errors import Vlm3rError
from vlm3r.utils.fileio import load_torch, sha256_of

FEATURE_SUFFIX = ".pt"


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


def feature_record(camera: torch.Tensor, patch: torch.Tensor, spec: FeatureSpec, frame_indices: Sequence[int]
                   ) -> dict:
    """What a feature file holds: the tokens (on the CPU, their own storage) and ``meta`` (``spec``'s fields and
    the video's sampled frame indices, fewer than ``spec.frames`` for a short video)."""
    meta = {**asdict(spec), "frame_indices": [int(i) for i in frame_indices]}
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
