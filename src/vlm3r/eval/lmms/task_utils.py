"""Functions the task YAMLs point at (``!function utils.<name>``): the benchmark prompt and vlm3r's scoring.

ScanQA and SQA3D (``qa3d_*``) score the whole set at once, as the reference does (its captioning metrics are
corpus-level: CIDEr's document frequencies come from all the answers, so a mean of per-question scores would be
another number). ``qa3d_process_results`` gives each of the benchmark's metrics the document's answer, and
``qa3d_aggregate``, the aggregation of every one of them, scores the set with ``qa3d_report.score_answers`` and
returns its metric. The score of a set is computed once and kept (``_qa3d_report``, keyed by the set's content,
which survives lmms-eval's gathering from several processes where identity would not), so ScanQA's nine metrics
start Java once, not nine times.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.metrics import exact_match, mean_relative_accuracy
from vlm3r.eval.qa3d import Qa3dReport
from vlm3r.eval.qa3d_bench import QA3D_BENCHMARKS, Qa3dQuestion
from vlm3r.eval.qa3d_report import HEADINGS, score_answers
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


# ---------------------------------------------------------------------- ScanQA, SQA3D
QA3D_KEPT_REPORTS = 4  # scored sets kept (one is enough: lmms-eval aggregates a task's metrics one after another)


def qa3d_doc_to_text(doc: dict, lmms_eval_specific_kwargs=None) -> str:
    """The question's text as ``vlm3r eval run`` gives it to the model (the model places it in the reference
    prompt named by the YAML's ``generation_kwargs.vlm3r_prompt``)."""
    return doc["text"]


def qa3d_process_results(doc: dict, results: list[str]) -> dict:
    """The document's answer under each metric of its benchmark (``bench.metrics``), all scored in aggregation."""
    item = {"benchmark": doc["benchmark"], "id": str(doc["id"]), "question_type": doc["question_type"],
            "answers": list(doc["answers"]), "prediction": results[0]}
    return {metric: {**item, "metric": metric} for metric in QA3D_BENCHMARKS[doc["benchmark"]].metrics}


@functools.lru_cache(maxsize=QA3D_KEPT_REPORTS)
def _qa3d_report(benchmark: str, rows: tuple[tuple[str, str, tuple[str, ...], str], ...]) -> Qa3dReport:
    """vlm3r's score of a set of (id, question type, answers, prediction) rows, logged as a table."""
    bench = QA3D_BENCHMARKS[benchmark]
    questions = [Qa3dQuestion(qid, "", "", answers, kind) for qid, kind, answers, _ in rows]  # what scoring reads
    report = score_answers(bench, questions, [(qid, prediction) for qid, _, _, prediction in rows],
                           f"lmms-eval's {benchmark} answers")
    table = [f"{benchmark}: {report.n} questions; " + ", ".join(f"{HEADINGS[m]} {v:.2f}"
                                                                for m, v in report.overall.items())]
    table += [f"  {kind} ({report.counts[kind]}): " + ", ".join(f"{HEADINGS[m]} {v:.2f}" for m, v in scores.items())
              for kind, scores in report.per_type.items()]
    log.info("\n".join(table))
    return report


def qa3d_aggregate(items: list[dict]) -> float:
    """The items' metric (all carry the same one) of vlm3r's score of the whole set, in points."""
    metrics = {item["metric"] for item in items}
    benchmarks = {item["benchmark"] for item in items}
    if len(metrics) != 1 or len(benchmarks) != 1:
        raise InputError(f"qa3d_aggregate: one metric of one benchmark at a time (each metric_list entry of the "
                         f"task's YAML), got {sorted(metrics)} of {sorted(benchmarks)}")
    rows = tuple((item["id"], item["question_type"], tuple(item["answers"]), item["prediction"]) for item in items)
    return _qa3d_report(benchmarks.pop(), rows).overall[metrics.pop()]
