"""Exports of QA records: LLaVA conversation JSON for training, parquet in the public benchmark layouts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from vlm3r.errors import InputError
from vlm3r.qa.benchmarks import VSIBENCH, get_benchmark
from vlm3r.qa.prompts import question_text, target_text
from vlm3r.qa.record import QARecord, check_answers
from vlm3r.qa.tasks import BY_QUESTION_TYPE, answer_kind
from vlm3r.utils.fileio import atomic_path, atomic_write_text

_ID_NAMESPACE = uuid.UUID("5a0b2d2e-7b6c-4c1e-9d55-2f7f3c1a9e10")


def to_llava(records: list[QARecord], video_root: str = "") -> list[dict]:
    """LLaVA conversations (docs/design.md, data §7); ids are UUIDs derived from the record, so exports repeat exactly.

    ``video_root`` is prefixed to every video path, so that paths resolve against the trainer's video folder.
    """
    out = []
    for r in records:
        video = str(PurePosixPath(video_root) / r.video_path) if video_root else r.video_path
        out.append({
            "id": str(uuid.uuid5(_ID_NAMESPACE, f"{r.dataset}/{r.scene_name}/{r.question_type}/{r.question}/{r.id}")),
            "data_source": r.dataset, "scene_name": r.scene_name, "question_type": r.question_type, "video": video,
            "conversations": [{"from": "human", "value": "<image>\n" + question_text(r)},
                              {"from": "gpt", "value": target_text(r)}],
        })
    return out


def write_llava(path: Path | str, records: list[QARecord], video_root: str = "", source: str = "records") -> None:
    """Training conversations; records whose letter and ground truth disagree are refused (``source`` names
    where they came from)."""
    check_answers(records, source)
    atomic_write_text(Path(path), json.dumps(to_llava(records, video_root), indent=2, ensure_ascii=False))


def record_bench(record: QARecord) -> str:
    """The name of the benchmark a record's question type belongs to."""
    task = BY_QUESTION_TYPE.get(record.question_type)
    if task is not None:
        return task.bench
    raise InputError(f"record {record.id}: unknown question type {record.question_type!r}")


def write_parquet(path: Path | str, records: list[QARecord], bench: str | None = None,
                  source: str = "records") -> str:
    """Write records of one benchmark (``bench``: its name or short name; None: the one the records hold) in its
    public column layout; returns the benchmark's name.

    VSI-Bench: id, dataset, scene_name, question_type, question, options, ground_truth (the letter for multiple
    choice, the number as text otherwise), plus video_path. VSTI-Bench: id, dataset, scene_name, video_path,
    frame_indices, question_type, question, options, ground_truth (the value as text), mc_answer.
    """
    benches = {record_bench(r) for r in records}
    if bench is None:
        if len(benches) != 1:
            raise InputError(f"{source}: the records mix benchmarks {sorted(benches)}: choose one with --bench "
                             f"({' or '.join(get_benchmark(b).short for b in sorted(benches))})")
        bench = benches.pop()
    bench = get_benchmark(bench).name
    records = [r for r in records if record_bench(r) == bench]
    check_answers(records, source)
    columns = {
        "id": pa.array([r.id for r in records], pa.int64()),
        "dataset": [r.dataset for r in records],
        "scene_name": [r.scene_name for r in records],
        "video_path": [r.video_path for r in records],
        "question_type": [r.question_type for r in records],
        "question": [r.question for r in records],
        "options": pa.array([[str(o) for o in r.options] for r in records], pa.list_(pa.string())),
    }
    if bench == VSIBENCH.name:
        columns["ground_truth"] = [str(r.mc_answer) if answer_kind(r.question_type) == "mca" else str(r.ground_truth)
                                   for r in records]
    else:
        columns["frame_indices"] = pa.array([r.frame_indices for r in records], pa.list_(pa.int64()))
        columns["ground_truth"] = [str(r.ground_truth) for r in records]
        columns["mc_answer"] = [r.mc_answer for r in records]
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)
    return bench
