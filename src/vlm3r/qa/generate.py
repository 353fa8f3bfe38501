"""Running tasks over scenes: seeding, filtering, subsampling, letter placement, parallelism, skip reasons.

Every (scene, task) pair draws from its own generator seeded by (seed, scene name, task name), and scenes are
processed independently and concatenated in scene-name order, so the output is byte-identical whatever the
number of workers (docs/design.md B13). Subsampling to ``per_scene`` happens after all filters.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vlm3r.errors import InputError
from vlm3r.qa.choices import LetterBalancer, lettered
from vlm3r.qa.geometry import SceneGeometry, scene_problem
from vlm3r.qa.record import QARecord
from vlm3r.qa.task import QATask, SceneContext, SkipScene
from vlm3r.qa.tasks import BY_NAME
from vlm3r.scene import MetadataError, SceneFrames, SceneMeta, read_frame_metadata, read_scene_metadata
from vlm3r.utils.fileio import atomic_write_text
from vlm3r.utils.parallel import parallel_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skip:
    """A (scene, task) that produced no question, and why."""

    scene: str
    task: str
    reason: str


def skipped_path(qa_path: Path | str) -> Path:
    """Where the skips of a question file are listed: ``<name>.skipped.jsonl`` beside it."""
    qa_path = Path(qa_path)
    return qa_path.with_name(qa_path.stem + ".skipped.jsonl")


def write_skips(path: Path | str, skips: list[Skip]) -> None:
    """One JSON object (scene, task, reason) per line, written atomically."""
    atomic_write_text(path, "".join(json.dumps(asdict(s)) + "\n" for s in skips))


def skip_summary(skips: list[Skip]) -> list[tuple[str, str, int]]:
    """(task, reason, scenes) of every distinct skip reason, sorted by task and reason."""
    return [(task, reason, n) for (task, reason), n in sorted(Counter((s.task, s.reason) for s in skips).items())]


@dataclass
class SceneInput:
    scene: SceneMeta
    frames: SceneFrames | None


def load_scenes(metadata: Path | str) -> list[SceneInput]:
    """Scenes with their frames from a scene metadata file, a metadata folder or a processed dataset root.

    Frame metadata is looked up beside each scene metadata file (``<d>_frame_metadata_<s>.json`` next to
    ``<d>_metadata_<s>.json``); files without one (such as VSI-Bench ``meta_info``) give scenes without frames.
    """
    metadata = Path(metadata)
    if metadata.is_dir():
        files = sorted(p for p in metadata.rglob("*.json") if "_metadata" in p.name and "_frame_metadata" not in p.name)
        if not files:
            raise MetadataError(metadata, "no scene metadata files (*_metadata_*.json) found in this folder")
    else:
        files = [metadata]
    scenes: list[SceneInput] = []
    for path in files:
        frames_path = path.with_name(path.name.replace("_metadata", "_frame_metadata", 1))
        frames = read_frame_metadata(frames_path) if frames_path.is_file() and frames_path != path else {}
        for name, scene in read_scene_metadata(path).scenes.items():
            scenes.append(SceneInput(scene, frames.get(name)))
    names = [s.scene.scene_name for s in scenes]
    if len(set(names)) != len(names):
        raise InputError(f"{metadata}: scene names repeat across metadata files")
    return sorted(scenes, key=lambda s: s.scene.scene_name)


def task_rng(seed: int, scene_name: str, task_name: str) -> np.random.Generator:
    """The generator of one (scene, task): independent of processing order and of Python's hash seed."""
    return np.random.default_rng([seed, zlib.crc32(scene_name.encode()), zlib.crc32(task_name.encode())])


def generate_scene(item: SceneInput, task_names: list[str], seed: int, per_scene: int | None
                   ) -> tuple[list[QARecord], list[Skip]]:
    """All questions of one scene (records without final ids) and the reasons for tasks that gave none."""
    scene = item.scene
    problem = scene_problem(scene)
    if problem is not None:
        return [], [Skip(scene.scene_name, name, problem) for name in task_names]
    geometry = SceneGeometry(scene)
    records, skips = [], []
    for name in task_names:
        task = BY_NAME[name]
        rng = task_rng(seed, scene.scene_name, name)
        try:
            candidates = task.candidates(SceneContext(scene, item.frames, geometry, rng))
        except SkipScene as exc:
            skips.append(Skip(scene.scene_name, name, str(exc)))
            continue
        if not candidates:
            skips.append(Skip(scene.scene_name, name, "no candidate passed the task's filters"))
            continue
        keep = per_scene if per_scene is not None else task.default_per_scene
        if keep is not None and len(candidates) > keep:
            chosen = np.sort(rng.choice(len(candidates), size=keep, replace=False))
            candidates = [candidates[i] for i in chosen]
        balancer = LetterBalancer()
        for candidate in candidates:
            records.append(_record(task, scene, candidate, balancer, rng))
    return records, skips


def _record(task: QATask, scene: SceneMeta, candidate, balancer: LetterBalancer, rng) -> QARecord:
    ordered, letter = balancer.place(rng, list(candidate.options), candidate.answer)
    question = candidate.question(ordered) if callable(candidate.question) else candidate.question
    extra = dict(candidate.extra)
    evidence = candidate.evidence() if callable(candidate.evidence) else candidate.evidence
    evidence = evidence.to_dict() if evidence is not None else {}
    if evidence:
        extra["evidence"] = evidence  # after the task's own keys (docs/questions.md, "Evidence")
    return QARecord(
        id=-1, dataset=scene.dataset or "", scene_name=scene.scene_name, video_path=scene.video_path or "",
        question_type=task.question_type, question=question,
        options=lettered(ordered) if candidate.lettered else list(ordered), ground_truth=candidate.answer,
        mc_answer=letter, frame_indices=candidate.frame_indices, extra=extra,
    )


def _generate_scene_args(args):
    return generate_scene(*args)


def generate(scenes: Iterable[SceneInput], tasks: list[QATask], seed: int = 0, per_scene: int | None = None,
             workers: int = 1, progress: Callable[[str], None] | None = None) -> tuple[list[QARecord], list[Skip]]:
    """Questions for every scene and task, ids 0..N-1 in scene order; plus the skip reasons."""
    scenes = list(scenes)
    names = [t.name for t in tasks]
    jobs = [(item, names, seed, per_scene) for item in scenes]
    results = []
    for item, result in zip(scenes, parallel_map(_generate_scene_args, jobs, workers)):
        results.append(result)
        if progress:
            progress(item.scene.scene_name)
    records, skips = [], []
    for scene_records, scene_skips in results:
        records += scene_records
        skips += scene_skips
    for i, record in enumerate(records):
        record.id = i
    return records, skips
