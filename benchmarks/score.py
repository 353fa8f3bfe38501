"""Scoring speed: predictions scored per second for 1e5 rows (mixed multiple-choice and numeric questions).

Usage: python benchmarks/score.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import report
from vlm3r.eval.scoring import score
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH
from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import answer_kind

TYPES = {"vsibench": ["object_counting", "object_abs_distance", "object_rel_distance", "object_rel_direction_hard",
                      "route_planning"],
         "vstibench": ["camera_displacement", "camera_obj_rel_dist_v1", "obj_obj_relative_pos_lr"]}


def synthetic_rows(n: int, types: list[str], rng: np.random.Generator):
    questions, predictions = [], {}
    for i in range(n):
        question_type = types[i % len(types)]
        if answer_kind(question_type) == "mca":
            questions.append(QARecord(i, "d", "s", "v", question_type, "q", ["A. a", "B. b", "C. c", "D. d"], "a", "A"))
            predictions[str(i)] = "ABCD"[int(rng.integers(4))] + "."
        else:
            truth = float(rng.uniform(0.5, 5))
            questions.append(QARecord(i, "d", "s", "v", question_type, "q", [], truth, None))
            predictions[str(i)] = f"{truth * rng.uniform(0.5, 1.5):.2f} meters"
    return questions, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for benchmark in (VSIBENCH, VSTIBENCH):
        questions, predictions = synthetic_rows(args.rows, TYPES[benchmark.name], rng)
        start = time.perf_counter()
        result = score(benchmark, questions, predictions)
        seconds = time.perf_counter() - start
        rows.append({"benchmark": benchmark.name, "rows": args.rows, "seconds": seconds,
                     "rows_per_second": args.rows / seconds, "overall": result.overall})
    report("score", rows)


if __name__ == "__main__":
    main()
