"""Functions the task YAMLs point at (``!function utils.<name>``): the benchmark prompt and vlm3r's scoring."""

from __future__ import annotations

import logging
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.metrics import exact_match, mean_relative_accuracy
from vlm3r.eval.scoring import aggregate, correct_letter
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH, get_benchmark
from vlm3r.qa.prompts import question_text
from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import answer_kind

log = logging.getLogger(__name__)


def check_data_file(task: str, path: str) -> None:
    """Fail, naming ``path`` and ``task``, when the task's data file is missing; its ``<task>_utils.py`` calls this
    as lmms-eval loads the task, since lmms-eval 0.7.3 would retry the read and report only
    ``RetryError[... FileNotFoundError]``."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file: the questions of the lmms-eval task {task} (its YAML's "
                         f"dataset_kwargs.data_files.test); write the task again with vlm3r eval lmms-tasks")


def _record(doc: dict) -> QARecord:
    return QARecord.from_dict(doc)


def doc_to_visual(doc: dict) -> list[str]:
    return [doc["video_path"]]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs=None) -> str:
    return question_text(_record(doc))


def process_results(doc: dict, results: list[str]) -> dict:
    record = _record(doc)
    prediction = results[0]
    if answer_kind(record.question_type) == "mca":
        value = exact_match(prediction, correct_letter(record))
    else:
        value = mean_relative_accuracy(prediction, float(record.ground_truth))
    return {"vlm3r_overall": {"question_type": record.question_type, "score": value}}


def _aggregate(benchmark_name: str, items: list[dict]) -> float:
    per_type: dict[str, list[float]] = {}
    for item in items:
        per_type.setdefault(item["question_type"], []).append(item["score"])
    report = aggregate(get_benchmark(benchmark_name), {t: 100.0 * sum(v) / len(v) for t, v in per_type.items()},
                       {t: len(v) for t, v in per_type.items()})
    log.info("%s per task: %s", benchmark_name, report.per_task)
    return report.overall


def aggregate_vsibench(items: list[dict]) -> float:
    return _aggregate(VSIBENCH.name, items)


def aggregate_vstibench(items: list[dict]) -> float:
    return _aggregate(VSTIBENCH.name, items)
