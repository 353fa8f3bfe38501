"""What ``vlm3r app`` shows, read once when it starts: the scenes of the processed datasets given (``--data``),
the questions of the QA files (``--qa``), the answers of ``eval run`` folders (``--run``) and the scenes' videos.
Nothing outside those is ever read. A folder or file that cannot be used is not fatal: its error is kept in
``problems`` and the page shows it, with everything else that could be read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.errors import Vlm3rError
from vlm3r.eval.loading import load_questions
from vlm3r.eval.predictions import done_predictions
from vlm3r.qa.record import QARecord
from vlm3r.utils.fileio import sha256_of
from vlm3r.scene import SceneFrames, SceneMeta, read_frame_metadata, read_scene_metadata
from vlm3r.viz.scene_view import SceneViewError, dataset_scenes

RUN_RECORD = "run.json"  # what an eval run folder says it ran (eval.provenance): its question file and checksum


@dataclass(frozen=True)
class SceneRef:
    """One scene of a processed dataset: its layout and name."""

    layout: ProcessedLayout
    name: str


@dataclass
class RunAnswers:
    """An eval run's answers (question id as text -> prediction row) and the question file it ran on."""

    run_dir: Path
    qa: Path | None
    predictions: dict[str, dict]


@dataclass
class Catalog:
    scenes: dict[str, SceneRef] = field(default_factory=dict)  # by label: the scene name (root/name when repeated)
    questions: list[QARecord] = field(default_factory=list)
    question_sources: dict[int, Path] = field(default_factory=dict)  # position in ``questions`` -> its file
    runs: list[RunAnswers] = field(default_factory=list)
    videos: dict[str, Path] = field(default_factory=dict)  # label (relative to its --data folder) -> file
    problems: list[str] = field(default_factory=list)
    _read: dict[Path, dict] = field(default_factory=dict, repr=False)  # metadata files, each read once

    def metadata(self, ref: SceneRef) -> tuple[SceneMeta, SceneFrames]:
        """A scene's metadata and frames. A dataset's metadata files hold all its scenes (a real one's frame
        metadata runs to tens of MB), so each is read once, at its first scene's view."""
        layout = ref.layout
        if layout.scene_metadata_path not in self._read:
            self._read[layout.scene_metadata_path] = read_scene_metadata(layout.scene_metadata_path).scenes
        if layout.frame_metadata_path not in self._read:
            self._read[layout.frame_metadata_path] = read_frame_metadata(layout.frame_metadata_path)
        frames = self._read[layout.frame_metadata_path].get(ref.name)
        if frames is None:
            raise SceneViewError(f"{layout.frame_metadata_path}: no frames of scene {ref.name!r} in this frame "
                                 f"metadata")
        return self._read[layout.scene_metadata_path][ref.name], frames

    def scene_for(self, record: QARecord) -> str | None:
        """The label of the scene a question is about: the one of its name (and dataset, when names repeat)."""
        named = [label for label, ref in self.scenes.items() if ref.name == record.scene_name]
        if len(named) > 1:
            named = [label for label in named if self.scenes[label].layout.dataset == record.dataset] or named
        return named[0] if named else None

    def answer(self, record: QARecord, position: int) -> tuple[RunAnswers, dict] | None:
        """The first run answering this question (matched by id, among the runs of its question file)."""
        source = self.question_sources.get(position)
        for run in self.runs:
            if run.qa is not None and source is not None and run.qa.resolve() != source.resolve():
                continue
            row = run.predictions.get(str(record.id))
            if row is not None:
                return run, row
        return None


def load_catalog(data: list[Path], qa: list[Path], runs: list[Path]) -> Catalog:
    """Read every folder and file given; each one that fails adds its error to ``problems``."""
    catalog = Catalog()
    for root in data:
        _guarded(catalog, lambda root=root: _add_dataset(catalog, Path(root)))
    for path in qa:
        _guarded(catalog, lambda path=path: _add_questions(catalog, Path(path)))
    for run_dir in runs:
        _guarded(catalog, lambda run_dir=run_dir: _add_run(catalog, Path(run_dir)))
    return catalog


def _guarded(catalog: Catalog, step) -> None:
    try:
        step()
    except (Vlm3rError, OSError, ValueError) as exc:  # a bad folder or file: said in the page, not fatal
        catalog.problems.append(str(exc))


def _add_dataset(catalog: Catalog, root: Path) -> None:
    if not root.is_dir():
        raise Vlm3rError(f"--data {root}: not a folder")
    listed = dataset_scenes(root)
    if not listed:
        raise Vlm3rError(f"--data {root}: no scene metadata (metadata/SPLIT/*_metadata_SPLIT.json) in this folder; "
                         f"give a processed dataset's root, as `vlm3r scenes metadata` or `make demo` writes it")
    for layout, names in listed:
        for name in names:
            label = name if name not in catalog.scenes else f"{root.name}/{name}"
            catalog.scenes[label] = SceneRef(layout, name)
            video = layout.video_path(name)
            if video.is_file():  # the scene's video, where the processed layout keeps it
                catalog.videos[f"{root.name}/{layout.relative(video)}"] = video


def _add_questions(catalog: Catalog, path: Path) -> None:
    if not path.is_file():
        raise Vlm3rError(f"--qa {path}: no such file")
    for record in load_questions(path):
        catalog.question_sources[len(catalog.questions)] = path
        catalog.questions.append(record)


def _add_run(catalog: Catalog, run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise Vlm3rError(f"--run {run_dir}: not a folder")
    record_path = run_dir / RUN_RECORD
    qa = None
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError as exc:
            raise Vlm3rError(f"{record_path}: not JSON ({exc})") from exc
        qa = Path(record["qa"]) if record.get("qa") else None
        if qa is not None and qa.is_file() and record.get("qa_sha256") and sha256_of(qa) != record["qa_sha256"]:
            catalog.problems.append(f"{record_path}: field qa_sha256: {qa} has changed since this run; its answers "
                                    f"are shown against the file as it is now")
    predictions = done_predictions(run_dir)
    if not predictions:
        raise Vlm3rError(f"--run {run_dir}: no answers (predictions.jsonl) in this folder")
    catalog.runs.append(RunAnswers(run_dir, qa, predictions))
    if qa is not None and not qa.is_file():
        catalog.problems.append(f"{record_path}: field qa: {qa} is not found from here (it is taken as the run wrote "
                                f"it); give the run's question file with --qa")
        catalog.runs[-1].qa = None  # its answers are then matched by id to the --qa files' questions
    elif qa is not None and all(qa.resolve() != p.resolve() for p in catalog.question_sources.values()):
        _add_questions(catalog, qa)  # the run's own questions, when --qa did not name them
