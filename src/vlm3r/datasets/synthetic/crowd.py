"""A synthetic scene crowded with many boxes of one category: the input of the scaling benchmark and test of
question generation (each task must stay near-linear in one category's box count, docs/questions.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from vlm3r.geometry import box_aabb

CROWD_SIZES_M = (0.05, 0.15)  # m: each side of an added box
CROWD_FIRST_ID = 100_000  # instance ids of the added boxes start here, clear of the scene's own


def crowd_scene(root: Path, folder: Path, category: str, count: int, seed: int = 0) -> Path:
    """A metadata folder holding the first scene of the synthetic dataset ``root`` (and its frame metadata) plus
    ``count`` upright boxes of ``category`` at random headings, spread over the scene's boxes, written as the
    metadata builder writes boxes. Returns the scene metadata file."""
    path = next((Path(root) / "metadata").rglob("synthetic_metadata_*.json"))
    frames = path.with_name(path.name.replace("_metadata", "_frame_metadata", 1))
    raw = json.loads(path.read_text())
    name = sorted(raw)[0]
    scene = raw[name]
    if count:
        rng = np.random.default_rng(seed)
        centers = np.array([b["centroid"] for boxes in scene["object_bboxes"].values() for b in boxes])
        new_centers = rng.uniform(centers.min(axis=0), centers.max(axis=0), (count, 3))
        lengths = rng.uniform(*CROWD_SIZES_M, (count, 3))
        yaw = rng.uniform(0, np.pi, count)
        c, s, zero, one = np.cos(yaw), np.sin(yaw), np.zeros(count), np.ones(count)
        axes = np.stack([c, s, zero, -s, c, zero, zero, zero, one], axis=1).reshape(count, 3, 3)
        lo, hi = box_aabb(new_centers, lengths, axes)
        scene["object_bboxes"][category] = [
            {"centroid": new_centers[k].tolist(), "axesLengths": lengths[k].tolist(),
             "normalizedAxes": axes[k].reshape(9).tolist(), "min": lo[k].tolist(), "max": hi[k].tolist(),
             "instance_id": CROWD_FIRST_ID + k} for k in range(count)]
        scene["object_counts"][category] = count
    folder = Path(folder)
    folder.mkdir(parents=True)
    (folder / path.name).write_text(json.dumps({name: scene}))
    shutil.copy(frames, folder / frames.name)
    return folder / path.name
