"""Reading benchmark questions (vlm3r JSONL, reference JSON lists, VSI-Bench / VSTI-Bench parquet), finding and
checking their videos, and reading predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from vlm3r.errors import EvalRunError, Vlm3rError
from vlm3r.qa.record import QAFileError, QARecord, read_qa_jsonl
from vlm3r.utils.fileio import read_json, read_jsonl_objects
from vlm3r.utils.images import ImageError, list_images, probe_image
from vlm3r.utils.video import first_listed, unreadable_videos


class PredictionError(Vlm3rError):
    """A malformed prediction file; the message names the file and the problem."""


def load_questions(path: Path | str) -> list[QARecord]:
    """Questions from ``.jsonl`` (vlm3r, VSTI fields), ``.json`` (a list, as the reference writes) or ``.parquet``
    (the public benchmark columns)."""
    path = Path(path)
    if not path.is_file():
        raise QAFileError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        records = read_qa_jsonl(path)
    elif path.suffix == ".json":
        rows = read_json(path, QAFileError, list, "a list of questions")
        records = [QARecord.from_dict(row, f"{path}: item {i}") for i, row in enumerate(rows)]
    elif path.suffix == ".parquet":
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for unreadable files
            raise QAFileError(f"{path}: not a readable parquet file ({exc})") from exc
        records = [QARecord.from_dict(row, f"{path}: row {i}") for i, row in enumerate(rows)]
    else:
        raise QAFileError(f"{path}: unknown question file type {path.suffix!r} (.jsonl, .json or .parquet)")
    ids = [str(r.id) for r in records]
    if len(set(ids)) != len(ids):
        raise QAFileError(f"{path}: question ids repeat")
    return records


def video_of(record: QARecord, root: Path) -> Path | tuple[Path, ...]:
    """Where a question's video is: ``video_path`` relative to ``root`` (vlm3r and VSTI-Bench), else
    ``root/<dataset>/<scene_name>.mp4`` (VSI-Bench's public layout); a question about an image sequence
    (``images``): the images' paths relative to ``root``, in the record's order."""
    if record.images:
        return tuple(root / image for image in record.images)
    if record.video_path:
        return root / record.video_path
    if record.dataset and record.scene_name:
        return root / record.dataset / f"{record.scene_name}.mp4"
    raise EvalRunError(f"question {record.id}: no video_path, and no dataset and scene_name to find its video")


@dataclass
class VideoQuestions:
    """The questions about one video (a path) or one image sequence (a tuple of paths)."""

    video: Path | tuple[Path, ...]
    questions: list[QARecord] = field(default_factory=list)


def group_by_video(records: list, root: Path, locate: Callable[[object, Path], Path] = video_of
                   ) -> list[VideoQuestions]:
    """Questions per video (``locate(question, root)``: where its video is), videos in the order of their first
    question, questions in file order."""
    groups: dict[Path, VideoQuestions] = {}
    for record in records:
        video = locate(record, root)
        groups.setdefault(video, VideoQuestions(video)).questions.append(record)
    return list(groups.values())


def unreadable_image_sets(sets) -> dict[tuple[Path, ...], str]:
    """{image sequence: why it cannot be read} for those of ``sets`` with a missing or unreadable image (each
    image's header is read)."""
    reasons = {}
    for images in sets:
        try:
            for path in list_images(list(images)):
                probe_image(path)
        except ImageError as exc:
            reasons[images] = str(exc)
    return reasons


def check_videos(groups: list[VideoQuestions]) -> None:
    """Every video opens (header read) and every image of an image sequence, or one error lists those that do
    not, before any model work."""
    reasons = {**unreadable_videos(g.video for g in groups if not isinstance(g.video, tuple)),
               **unreadable_image_sets(g.video for g in groups if isinstance(g.video, tuple))}
    bad = [f"{reasons[group.video]} ({len(group.questions)} questions)" for group in groups if group.video in reasons]
    if bad:
        raise EvalRunError(f"{len(bad)} of {len(groups)} videos cannot be read: {first_listed(bad)}")


def load_predictions(path: Path | str, questions: list[QARecord], others: list[QARecord] = ()) -> dict[str, str]:
    """``{"id": ..., "prediction": "..."}`` per line, checked against the questions: every question answered
    once, no unknown ids. Ids are compared as text, so 3 and "3" match. Predictions for ``others`` (questions of
    the same file that another benchmark scores) are allowed and left out."""
    predictions: dict[str, str] = {}
    for number, row in read_jsonl_objects(path, PredictionError):
        if "id" not in row or "prediction" not in row:
            raise PredictionError(f"{path}: line {number}: expected {{\"id\": ..., \"prediction\": \"...\"}}")
        if not isinstance(row["prediction"], str):
            raise PredictionError(f"{path}: line {number}: prediction must be text, got {row['prediction']!r}")
        key = str(row["id"])
        if key in predictions:
            raise PredictionError(f"{path}: line {number}: id {row['id']!r} appears twice")
        predictions[key] = row["prediction"]
    known = {str(q.id) for q in questions}
    elsewhere = {str(q.id) for q in others}
    predictions = {k: v for k, v in predictions.items() if k not in elsewhere}
    unknown = [k for k in predictions if k not in known]
    if unknown:
        raise PredictionError(f"{path}: {len(unknown)} id(s) not in the question file, e.g. {unknown[:5]}")
    missing = [str(q.id) for q in questions if str(q.id) not in predictions]
    if missing:
        raise PredictionError(f"{path}: {len(missing)} question(s) have no prediction, e.g. ids {missing[:5]}")
    return predictions
