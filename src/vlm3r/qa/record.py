"""QA records: the benchmark/training question format (reference-data.md §6.7), read and written as JSONL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm3r.utils.fileio import atomic_write_text

_FIELDS = ("id", "dataset", "scene_name", "video_path", "question_type", "question", "options", "ground_truth",
           "mc_answer")


class QAFileError(ValueError):
    """A malformed QA file; the message names the file, the line and the field."""


@dataclass
class QARecord:
    """One question. ``ground_truth`` is the value (number or text); ``mc_answer`` the letter of the correct option
    (decisions.md B17). VSTI records carry ``frame_indices`` (video frame ids). Task-specific keys (such as
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

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in _FIELDS}
        if self.frame_indices is not None:
            out["frame_indices"] = list(self.frame_indices)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, raw: dict, where: str = "") -> QARecord:
        missing = [name for name in _FIELDS if name not in raw and name != "mc_answer"]
        if missing:
            raise QAFileError(f"{where}: missing field(s) {', '.join(missing)}")
        known = set(_FIELDS) | {"frame_indices"}
        return cls(**{name: raw.get(name) for name in _FIELDS}, frame_indices=raw.get("frame_indices"),
                   extra={k: v for k, v in raw.items() if k not in known})


def write_qa_jsonl(path: Path | str, records) -> None:
    """Write records atomically, one JSON object per line."""
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, allow_nan=False) for r in records]
    atomic_write_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))


def read_qa_jsonl(path: Path | str) -> list[QARecord]:
    """Read a JSONL QA file; malformed lines raise QAFileError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise QAFileError(f"{path}: no such file")
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QAFileError(f"{path}: line {number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(raw, dict):
                raise QAFileError(f"{path}: line {number}: expected a JSON object")
            records.append(QARecord.from_dict(raw, f"{path}: line {number}"))
    return records
