"""Scoring predictions and aggregating them as the benchmarks report (docs/design.md, data §9).

Per question type: accuracy (multiple choice, on the letter; docs/design.md B17) or Mean Relative Accuracy
(numbers). VSI-Bench replaces its three relative-direction levels by their unweighted mean
(``object_rel_direction``) before the unweighted overall mean; VSTI-Bench averages every question type as is.
Scores are 0-100.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from vlm3r.eval.metrics import MRA_THRESHOLDS, exact_match, mra_hits
from vlm3r.qa.benchmarks import Benchmark
from vlm3r.qa.choices import LETTERS
from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import answer_kind

#: The paper's VLM-3R (7B) rows (Table 3 for VSI-Bench, with its two decimals; Table 2 for VSTI-Bench, whose
#: "Avg." is the mean of the five columns it shows, as every other row of Table 2 checks: it has no Cam-Obj Dist.
#: Change column and is not the code's mean over question types. VLM-3R's five give 58.94; the table says 58.8).
PAPER_VLM3R: dict[str, dict[str, float]] = {
    "vsibench": {"overall": 60.90, "Obj. Count": 70.16, "Abs. Dist.": 49.38, "Obj. Size": 69.15,
                 "Room Size": 67.12, "Rel. Dist.": 65.35, "Rel. Dir.": 80.52, "Route Plan": 45.36,
                 "Appr. Order": 40.13},
    "vstibench": {"overall": 58.8, "Cam-Obj Abs. Dist.": 39.4, "Cam. Displace.": 39.6, "Cam. Mov. Dir.": 60.6,
                  "Obj-Obj Rel. Pos.": 86.5, "Cam-Obj Rel. Dist.": 68.6},
}


def correct_letter(record: QARecord) -> str:
    """The letter a multiple-choice answer must match: ``mc_answer`` (vlm3r, VSTI-Bench), else the ground truth
    (VSI-Bench stores the letter there)."""
    if record.mc_answer is not None and str(record.mc_answer) in LETTERS:
        return str(record.mc_answer)
    return str(record.ground_truth)


def option_value(option) -> str:
    """"A. left" -> "left"; raw values stay as they are."""
    text = str(option)
    return text[3:] if len(text) > 3 and text[0] in LETTERS and text[1:3] == ". " else text


def benchmark_questions(benchmark: Benchmark, questions: list[QARecord]) -> tuple[list[QARecord], list[str]]:
    """The questions of this benchmark, and the other question types found (ignored)."""
    kept, others = split_questions(benchmark, questions)
    return kept, sorted({q.question_type for q in others})


def split_questions(benchmark: Benchmark, questions: list[QARecord]) -> tuple[list[QARecord], list[QARecord]]:
    """(the benchmark's questions, the others): a file from ``qa generate --bench all`` holds both benchmarks'."""
    known = set(benchmark.question_types)
    return [q for q in questions if q.question_type in known], [q for q in questions if q.question_type not in known]


@dataclass
class ScoreReport:
    benchmark: str
    overall: float | None  # the benchmark's overall score, 0-100 (None if a task has no score, as for chance)
    per_task: dict[str, float | None]  # keyed as the benchmark reports (VSI-Bench's merged object_rel_direction)
    n: int
    per_question_type: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    columns: dict[str, float | None] = field(default_factory=dict)  # the paper's table columns
    paper_average: float | None = None  # mean of the columns the paper's table has (VSTI-Bench's "Avg.")
    mra_curves: dict[str, list[float]] = field(default_factory=dict)  # numeric types: % within each threshold
    ignored_question_types: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _mean(values) -> float | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def aggregate(benchmark: Benchmark, per_type: dict[str, float | None], counts: dict[str, int],
              mra_curves: dict[str, list[float]] | None = None, ignored: list[str] | None = None) -> ScoreReport:
    """Benchmark-level scores from per-question-type scores."""
    order = [t for column in benchmark.columns for t in column.question_types if t in per_type]
    per_task: dict[str, float | None] = {}
    merged_done = set()
    for question_type in order:
        merged_key = next((k for k, members in benchmark.merged.items() if question_type in members), None)
        if merged_key is None:
            per_task[question_type] = per_type[question_type]
        elif merged_key not in merged_done:
            merged_done.add(merged_key)
            per_task[merged_key] = _mean(per_type[t] for t in benchmark.merged[merged_key] if t in per_type)
    columns = {c.label: _mean(per_type[t] for t in c.question_types if t in per_type)
               for c in benchmark.columns if any(t in per_type for t in c.question_types)}
    return ScoreReport(
        benchmark=benchmark.name, overall=_mean(per_task.values()), per_task=per_task,
        n=sum(counts.values()), per_question_type={t: per_type[t] for t in order},
        counts={t: counts[t] for t in order}, columns=columns,
        paper_average=_mean(columns[c.label] for c in benchmark.columns if c.in_paper and c.label in columns),
        mra_curves=mra_curves or {}, ignored_question_types=ignored or [])


def question_score(record: QARecord, prediction: str) -> float:
    """One answer's score, 0-1: 1 or 0 on the letter for multiple choice, its Mean Relative Accuracy for a number
    (the share of ``MRA_THRESHOLDS`` it is within)."""
    if answer_kind(record.question_type) == "mca":
        return float(exact_match(prediction, correct_letter(record)))
    return float(mra_hits(prediction, float(record.ground_truth)).mean())


def score(benchmark: Benchmark, questions: list[QARecord], predictions: dict[str, str]) -> ScoreReport:
    """Score predictions (question id as text -> model output) on the benchmark's questions."""
    questions, ignored = benchmark_questions(benchmark, questions)
    scores: dict[str, list[float]] = defaultdict(list)
    hits: dict[str, list[np.ndarray]] = defaultdict(list)
    for q in questions:
        prediction = predictions[str(q.id)]
        if answer_kind(q.question_type) == "na":
            hits[q.question_type].append(mra_hits(prediction, float(q.ground_truth)))
        scores[q.question_type].append(question_score(q, prediction))
    per_type = {t: 100.0 * float(np.mean(v)) for t, v in scores.items()}
    curves = {t: (100.0 * np.mean(h, axis=0)).tolist() for t, h in hits.items()}
    return aggregate(benchmark, per_type, {t: len(v) for t, v in scores.items()}, curves, ignored)


def paper_report(benchmark: Benchmark) -> ScoreReport:
    """The paper's VLM-3R row as a report (columns and its average; no per-question-type scores). VSTI-Bench's
    "Avg." is over the paper's columns, not the code's overall, so there it is the row's ``paper_average``
    only."""
    row = PAPER_VLM3R[benchmark.name]
    vsti = benchmark.name == "vstibench"
    return ScoreReport(benchmark=benchmark.name, overall=None if vsti else row["overall"], per_task={}, n=0,
                       columns={c.label: row.get(c.label) for c in benchmark.columns},
                       paper_average=row["overall"] if vsti else None)


__all__ = ["MRA_THRESHOLDS", "ScoreReport", "aggregate", "benchmark_questions", "correct_letter", "option_value",
           "paper_report", "score", "split_questions"]
