"""Question and prediction files in, scores and reports out: what ``vlm3r eval score`` and ``vlm3r eval baseline``
do, and how a run (``vlm3r eval run``) scores its answers."""

from __future__ import annotations

import json
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.baselines import frequency_baseline, frequency_predictions, random_baseline
from vlm3r.eval.loading import load_predictions, load_questions
from vlm3r.eval.report import write_report, write_scores
from vlm3r.eval.scoring import ScoreReport, benchmark_questions, paper_report, score, split_questions
from vlm3r.qa.benchmarks import Benchmark, get_benchmark
from vlm3r.qa.record import QAFileError, QARecord
from vlm3r.utils.fileio import atomic_write_text

BASELINES = {"random": random_baseline, "frequency": frequency_baseline}  # the paper's chance-level rows


def chance_rows(benchmark: Benchmark, questions: list[QARecord]) -> dict[str, ScoreReport]:
    """Every chance baseline of ``questions``, by name, for a report's comparison rows."""
    return {name: baseline(benchmark, questions) for name, baseline in BASELINES.items()}


def score_files(bench: str, qa: Path, pred: Path, out: Path | None = None) -> ScoreReport:
    """Score the predictions file ``pred`` on the ``bench`` questions of ``qa``, as the benchmark does; with
    ``out``, write scores.json and report.md (beside the chance baselines) there."""
    benchmark = get_benchmark(bench)
    questions = load_questions(qa)
    scored, others = split_questions(benchmark, questions)
    if not scored:
        raise QAFileError(f"{qa}: no {benchmark.name} questions in it")
    report = score(benchmark, questions, load_predictions(pred, scored, others))
    if out is not None:
        write_scores(out, report)
        write_report(out, report, chance_rows(benchmark, questions), f"{benchmark.name} results: {Path(pred).name}")
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
                  title: str, note: str | None = None) -> ScoreReport:
    """A run's scores.json and report.md of ``records`` (answers in ``predictions``, rows as predictions.jsonl
    holds them, to other questions are not scored): the run beside the paper's VLM-3R row and the chance
    baselines; ``note`` (what was scored) and the questions whose video failed end the report."""
    scored = {str(r.id) for r in records}
    predictions = {k: row for k, row in predictions.items() if k in scored}
    report = score(benchmark, records, {k: row["prediction"] for k, row in predictions.items()})
    write_scores(run_dir, report)
    failed = {k: row["error"] for k, row in predictions.items() if row.get("error")}
    baselines = {"paper VLM-3R": paper_report(benchmark), **chance_rows(benchmark, records)}
    write_report(run_dir, report, baselines, title, label="this run", note=note, unanswered=failed)
    return report
