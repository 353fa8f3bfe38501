"""QA records: the benchmark/training question format (docs/design.md, data §6.7), read and written as JSONL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm3r.errors import Vlm3rError
from vlm3r.utils.fileio import atomic_write_text, read_jsonl_objects

_FIELDS = ("id", "dataset", "scene_name", "video_path", "question_type", "question", "options", "ground_truth",
           "mc_answer")
_REQUIRED = ("id", "question_type", "question", "ground_truth")


class QAFileError(Vlm3rError):
    """A malformed QA file; the message names the file, the line and the field."""


@dataclass
class QARecord:
    """One question. ``ground_truth`` is the value (number or text); ``mc_answer`` the letter of the correct option
    (docs/design.md B17). VSTI records carry ``frame_indices`` (video frame ids). ``images``: an image sequence
    (paths relative to the video root) asked about instead of ``video_path``. Task-specific keys (such as
    ``category``) go to ``extra`` and are written after the standard fields."""

    id: int
    dataset: str
    scene_name: str
    video_path: str
    question_type: str
    question: str
    options: list
    ground_truth: Any
    mc_answer: str | None
    frame_indices: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    images: list[str] | None = None

    def answer_problem(self) -> str | None:
        """Why ``mc_answer`` does not name the ``ground_truth`` option ("A. 2" style options), or None. Records
        whose ground truth is the letter itself (VSI-Bench's public files) have nothing to check."""
        if self.mc_answer is None or not self.options:
            return None
        labeled = dict(str(o).split(". ", 1) for o in self.options if ". " in str(o))
        letter = str(self.mc_answer)
        if not labeled or str(self.ground_truth) == letter:
            return None
        if letter not in labeled:
            return f"mc_answer {letter!r} is not one of the options' letters {sorted(labeled)}"
        if not _same_value(labeled[letter], self.ground_truth):
            return f"mc_answer {letter!r} is option {labeled[letter]!r} but ground_truth is {self.ground_truth!r}"
        return None

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in _FIELDS}
        if self.frame_indices is not None:
            out["frame_indices"] = list(self.frame_indices)
        if self.images is not None:
            out["images"] = list(self.images)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, raw: dict, where: str = "") -> QARecord:
        """A record from any of the layouts in use (vlm3r, VSI-Bench, VSTI-Bench): id, question_type, question
        and ground_truth are required; the public files lack some of the others (VSI-Bench has no video_path or
        mc_answer, and no options for numeric questions)."""
        missing = [name for name in _REQUIRED if name not in raw or raw[name] is None]
        if missing:
            raise QAFileError(f"{where}: missing field(s) {', '.join(missing)}")
        known = set(_FIELDS) | {"frame_indices", "images"}
        frame_indices = raw.get("frame_indices")
        images = raw.get("images")
        if images is not None and (not isinstance(images, list) or not images
                                   or not all(isinstance(i, str) and i for i in images)):
            raise QAFileError(f"{where}: images must be a non-empty list of image paths, got {images!r}")
        return cls(
            id=raw["id"], dataset=raw.get("dataset") or "", scene_name=raw.get("scene_name") or "",
            video_path=raw.get("video_path") or "", question_type=raw["question_type"], question=raw["question"],
            options=list(raw.get("options") or []), ground_truth=raw["ground_truth"], mc_answer=raw.get("mc_answer"),
            frame_indices=None if frame_indices is None else list(frame_indices),
            extra={k: v for k, v in raw.items() if k not in known}, images=images)


def _same_value(option: str, truth: Any) -> bool:
    if option == str(truth):
        return True
    try:
        return float(option) == float(truth)
    except (TypeError, ValueError):
        return False


def check_answers(records, where: str) -> None:
    """Raise QAFileError naming the first records whose letter and ground truth disagree."""
    problems = [f"id {r.id}: {problem}" for r in records if (problem := r.answer_problem())]
    if problems:
        raise QAFileError(f"{where}: {len(problems)} record(s) with inconsistent answers: "
                          + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))


def write_qa_jsonl(path: Path | str, records) -> None:
    """Write records atomically, one JSON object per line."""
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, allow_nan=False) for r in records]
    atomic_write_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))


def read_qa_jsonl(path: Path | str) -> list[QARecord]:
    """Read a JSONL QA file; malformed lines raise QAFileError naming the file and line."""
    return [QARecord.from_dict(row, f"{path}: line {number}") for number, row in read_jsonl_objects(path, QAFileError)]
