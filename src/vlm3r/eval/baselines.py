"""Chance baselines computed from the benchmark file itself (the paper's "Chance Level" rows).

- random: the expected score of picking a letter uniformly: 1 / number of options per multiple-choice
  question; numeric questions have no random baseline (shown as "-", as in the paper).
- frequency: always give the task's most frequent answer. Multiple choice: the letter of the option holding
  the task's most frequent correct value (or, if a question does not offer it, the task's most frequent
  letter). Numbers: the task's mean answer, except counting, whose answers are discrete, where it is the most
  frequent count.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from vlm3r.eval.scoring import ScoreReport, aggregate, benchmark_questions, correct_letter, option_value, score
from vlm3r.qa.benchmarks import Benchmark
from vlm3r.qa.choices import LETTERS
from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import answer_kind

DISCRETE_NUMERIC = {"object_counting"}


def random_baseline(benchmark: Benchmark, questions: list[QARecord]) -> ScoreReport:
    questions, ignored = benchmark_questions(benchmark, questions)
    expected: dict[str, list[float | None]] = defaultdict(list)
    for q in questions:
        mca = answer_kind(q.question_type) == "mca" and q.options
        expected[q.question_type].append(1.0 / len(q.options) if mca else None)
    per_type = {t: (None if any(v is None for v in vs) else 100.0 * float(np.mean(vs))) for t, vs in expected.items()}
    return aggregate(benchmark, per_type, {t: len(v) for t, v in expected.items()}, ignored=ignored)


def frequency_predictions(questions: list[QARecord]) -> dict[str, str]:
    """The "always the most frequent answer" prediction for every question."""
    by_type: dict[str, list[QARecord]] = defaultdict(list)
    for q in questions:
        by_type[q.question_type].append(q)
    predictions = {}
    for question_type, group in by_type.items():
        if answer_kind(question_type) == "mca":
            values = Counter(option_value(q.options[LETTERS.index(correct_letter(q))]) for q in group if q.options)
            top_value = values.most_common(1)[0][0] if values else None
            top_letter = Counter(correct_letter(q) for q in group).most_common(1)[0][0]
            for q in group:
                offered = [option_value(o) for o in q.options]
                predictions[str(q.id)] = LETTERS[offered.index(top_value)] if top_value in offered else top_letter
        else:
            answers = np.array([float(q.ground_truth) for q in group])
            if question_type in DISCRETE_NUMERIC:
                guess = Counter(answers.tolist()).most_common(1)[0][0]
            else:
                guess = float(answers.mean())
            for q in group:
                predictions[str(q.id)] = f"{guess:g}"
    return predictions


def frequency_baseline(benchmark: Benchmark, questions: list[QARecord]) -> ScoreReport:
    return score(benchmark, questions, frequency_predictions(benchmark_questions(benchmark, questions)[0]))
