"""Counts per task and answer distributions, so that a biased generator is visible."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import answer_kind


@dataclass
class TaskStats:
    question_type: str
    count: int
    scenes: int
    letters: dict[str, int]  # share of each correct letter
    answers: dict[str, int]  # most frequent answer values (multiple choice)
    numeric: dict[str, float] | None  # min / mean / max of numeric answers


def qa_stats(records: list[QARecord]) -> list[TaskStats]:
    groups: dict[str, list[QARecord]] = defaultdict(list)
    for r in records:
        groups[r.question_type].append(r)
    out = []
    for question_type, group in groups.items():
        numeric = None
        if answer_kind(question_type) == "na":
            values = np.array([float(r.ground_truth) for r in group])
            numeric = {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}
        out.append(TaskStats(
            question_type, len(group), len({r.scene_name for r in group}),
            dict(sorted(Counter(r.mc_answer for r in group).items())),
            dict(Counter(str(r.ground_truth) for r in group).most_common(5)), numeric))
    return out
