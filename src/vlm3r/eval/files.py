"""Question and prediction files in, scores out: what ``vlm3r eval score`` and ``vlm3r eval baseline`` do."""

from __future__ import annotations

import json
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.baselines import frequency_baseline, frequency_predictions, random_baseline
from vlm3r.eval.benchmarks import Benchmark, get_benchmark
from vlm3r.eval.loading import load_predictions, load_questions
from vlm3r.eval.report import write_report, write_scores
from vlm3r.eval.scoring import ScoreReport, benchmark_questions, score, split_questions
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
        raise QAFileError(f"{qa}: no {bench} questions in it")
    report = score(benchmark, questions, load_predictions(pred, scored, others))
    if out is not None:
        write_scores(out, report)
        write_report(out, report, chance_rows(benchmark, questions), f"{bench} results: {Path(pred).name}")
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
