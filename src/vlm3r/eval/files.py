"""Question and prediction files in, scores and reports out: what ``vlm3r eval score`` and ``vlm3r eval baseline``
do, and how a run (``vlm3r eval run``) scores its answers."""

from __future__ import annotations

import json
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.baselines import frequency_baseline, frequency_predictions, random_baseline
from vlm3r.eval.loading import load_predictions, load_questions
from vlm3r.eval.report import write_report, write_scores
from vlm3r.eval.predictions import empty_answers
from vlm3r.eval.public import paper_rows
from vlm3r.eval.scoring import ScoreReport, benchmark_questions, score, split_questions
from vlm3r.qa.benchmarks import Benchmark, get_benchmark
from vlm3r.qa.record import QAFileError, QARecord
from vlm3r.utils.fileio import atomic_write_text, sha256_of

BASELINES = {"random": random_baseline, "frequency": frequency_baseline}  # the paper's chance-level rows


def chance_rows(benchmark: Benchmark, questions: list[QARecord]) -> dict[str, ScoreReport]:
    """Every chance baseline of ``questions``, by name, for a report's comparison rows."""
    return {name: baseline(benchmark, questions) for name, baseline in BASELINES.items()}


def checksum_note(qa: Path) -> str:
    """The report's line naming the question file scored and its SHA-256 (which tells releases apart)."""
    return f"Question file: {qa} (SHA-256 {sha256_of(qa)})."


def score_files(bench: str, qa: Path, pred: Path, out: Path | None = None) -> ScoreReport:
    """Score the predictions file ``pred`` on the ``bench`` questions of ``qa``, as the benchmark does; with
    ``out``, write scores.json and report.md (beside the chance baselines) there."""
    benchmark = get_benchmark(bench)
    questions = load_questions(qa)
    scored, others = split_questions(benchmark, questions)
    if not scored:
        raise QAFileError(f"{qa}: no {benchmark.name} questions in it")
    predictions = load_predictions(pred, scored, others)
    report = score(benchmark, questions, predictions)
    if out is not None:
        write_scores(out, report)
        empty = empty_answers({str(q.id): {"prediction": predictions[str(q.id)]} for q in scored})
        paper, rows_note = paper_rows(benchmark, scored)
        write_report(out, report, {**paper, **chance_rows(benchmark, questions)},
                     f"{benchmark.name} results: {Path(pred).name}", empty=empty, rows_note=rows_note,
                     note=checksum_note(qa))
    return report


def baseline_files(bench: str, qa: Path, kind: str, out: Path | None = None) -> ScoreReport:
    """The ``kind`` chance baseline (random or frequency) of the ``bench`` questions of ``qa``; with ``out``,
    scores.json there and, for frequency, the predictions it scored (predictions.jsonl)."""
    if kind not in BASELINES:
        raise InputError(f"--kind: unknown baseline {kind!r} (known: {', '.join(BASELINES)})")
    benchmark = get_benchmark(bench)
    questions = load_questions(qa)
    report = BASELINES[kind](benchmark, questions)
    if out is not None:
        write_scores(out, report)
        if kind == "frequency":
            predictions = frequency_predictions(benchmark_questions(benchmark, questions)[0])
            atomic_write_text(Path(out) / "predictions.jsonl", "".join(
                json.dumps({"id": q, "prediction": p}) + "\n" for q, p in predictions.items()))
    return report


def write_results(run_dir: Path, benchmark: Benchmark, records: list[QARecord], predictions: dict[str, dict],
                  title: str, note: str | None = None, file_questions: list[QARecord] | None = None) -> ScoreReport:
    """A run's scores.json and report.md of ``records`` (answers in ``predictions``, rows as predictions.jsonl
    holds them, to other questions are not scored): the run beside the chance baselines, and beside the paper's
    VLM-3R row only when ``file_questions`` (the benchmark's questions of the file read; default ``records``) are
    the public release (``eval.public``); ``note`` (what was scored), the count of empty answers and the questions
    whose video failed are in the report."""
    scored = {str(r.id) for r in records}
    predictions = {k: row for k, row in predictions.items() if k in scored}
    report = score(benchmark, records, {k: row["prediction"] for k, row in predictions.items()})
    write_scores(run_dir, report)
    failed = {k: row["error"] for k, row in predictions.items() if row.get("error")}
    paper, rows_note = paper_rows(benchmark, records if file_questions is None else file_questions)
    write_report(run_dir, report, {**paper, **chance_rows(benchmark, records)}, title, label="this run", note=note,
                 unanswered=failed, rows_note=rows_note, empty=empty_answers(predictions))
    return report
