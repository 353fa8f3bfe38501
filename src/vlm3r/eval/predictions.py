"""A run folder's prediction files: ``predictions.jsonl``, one ``{"id", "prediction"}`` line per question
(``"error"`` too when its video failed), appended as answers come and synced after each video, so that an
interrupted run resumes where it stopped; under a launcher every process appends to its own
``predictions.rank<k>.jsonl`` and process 0 merges them into ``predictions.jsonl`` in the question file's order."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vlm3r.errors import EvalRunError
from vlm3r.qa.record import QARecord
from vlm3r.utils.fileio import atomic_write_text, parse_jsonl_objects

PREDICTIONS = "predictions.jsonl"
RANK_PREDICTIONS = "predictions.rank{rank}.jsonl"  # one process's answers while a launched run works


def predictions_path(run_dir: Path, rank: int, world: int) -> Path:
    """Where process ``rank`` of ``world`` appends: ``predictions.jsonl`` alone, else its own file."""
    return run_dir / (PREDICTIONS if world == 1 else RANK_PREDICTIONS.format(rank=rank))


def read_predictions(path: Path, repair: bool = False) -> dict[str, dict]:
    """The complete lines of a predictions file by id (as text). A last line cut off by a kill is dropped (and,
    with ``repair``, removed from the file, so that appending continues cleanly); a repeated id is an error."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    rows: dict[str, dict] = {}
    for number, row in parse_jsonl_objects(complete.decode("utf-8").splitlines(), str(path), EvalRunError):
        key = str(row.get("id"))
        if key in rows:
            raise EvalRunError(f"{path}: line {number}: id {row.get('id')!r} appears twice")
        rows[key] = row
    return rows


def prediction_files(run_dir: Path) -> list[Path]:
    return sorted([run_dir / PREDICTIONS, *run_dir.glob(RANK_PREDICTIONS.format(rank="*"))])


def done_predictions(run_dir: Path) -> dict[str, dict]:
    """Every answer already written in the run folder, by any process of any earlier attempt."""
    done: dict[str, dict] = {}
    for path in prediction_files(run_dir):
        for key, row in read_predictions(path).items():
            if key in done:
                raise EvalRunError(f"{path}: id {row.get('id')!r} is answered in two prediction files")
            done[key] = row
    return done


class PredictionWriter:
    """Appends a video's answers, a line each, and syncs them to disk once: a kill loses at most the video being
    written (a cut last line is repaired on resume)."""

    def __init__(self, path: Path):
        read_predictions(path, repair=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, rows: list[dict]) -> None:
        self._file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def merge_predictions(run_dir: Path, records: list[QARecord]) -> dict[str, dict]:
    """Every answer of the folder in one ``predictions.jsonl``, in the order of ``records`` (the benchmark's
    questions of the file; answers to other ids, if any, after them in the order read): none is ever dropped.
    The per-process files are removed once merged."""
    done = done_predictions(run_dir)
    order = [str(r.id) for r in records if str(r.id) in done]
    known = set(order)
    order += [k for k in done if k not in known]
    atomic_write_text(run_dir / PREDICTIONS, "".join(json.dumps(done[k], ensure_ascii=False) + "\n" for k in order))
    for path in run_dir.glob(RANK_PREDICTIONS.format(rank="*")):
        path.unlink()
    return {k: done[k] for k in order}


def empty_answers(predictions: dict[str, dict]) -> list[str]:
    """The ids of ``predictions`` (rows by id, as predictions.jsonl holds them) whose answer is empty or blank
    text: the model generated nothing. Questions whose video failed (an ``"error"``) are not among them: the
    report lists those with their reason."""
    return [key for key, row in predictions.items() if not row.get("error") and not str(row["prediction"]).strip()]
