"""Scoring speed: predictions scored per second for 1e5 rows (mixed multiple-choice and numeric questions) of
VSI-Bench and VSTI-Bench; and ScanQA (exact match and the captioning metrics, through Java) and SQA3D at ScanQA
val's size, 4,675 answers: METEOR's one start per process is timed apart from the scoring.

Usage: python benchmarks/score.py [--rows 100000] [--qa3d-rows 4675]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import report
from vlm3r.eval.qa3d import score_qa3d
from vlm3r.eval.qa3d_bench import SCANQA, SCANQA_TYPE_ORDER, SQA3D, SQA3D_TYPE_ORDER, Qa3dQuestion
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


WORDS = ("brown", "chair", "table", "on the left", "two", "white", "next to the bed", "lamp", "black", "yes", "no")


def qa3d_rows(n: int, types: tuple[str, ...], rng: np.random.Generator):
    """Questions with one to three short answers of ``WORDS`` and answers that match, half match or miss."""
    questions, predictions = [], []
    for i in range(n):
        answers = tuple(str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4))))
        questions.append(Qa3dQuestion(str(i), "scene0000_00", "q", answers, types[i % len(types)]))
        predictions.append((str(i), [answers[0], f"the {answers[0]} by the wall", str(rng.choice(WORDS))][i % 3]))
    return questions, predictions


def qa3d_timings(n: int, rng: np.random.Generator) -> list[dict]:
    from vlm3r.eval.captions import shared_scorer

    start = time.perf_counter()
    scorer = shared_scorer()
    scorer.scores(["chair"], [["chair"]])  # METEOR loads its paraphrase table at its first call
    meteor_start = time.perf_counter() - start
    rows = []
    for bench, types, captions in ((SCANQA, SCANQA_TYPE_ORDER, scorer.grouped_scores), (SQA3D, SQA3D_TYPE_ORDER, None)):
        questions, predictions = qa3d_rows(n, types, rng)
        start = time.perf_counter()
        result = score_qa3d(bench, questions, predictions, captions=captions)
        seconds = time.perf_counter() - start
        rows.append({"benchmark": bench.name, "rows": n, "seconds": seconds, "rows_per_second": n / seconds,
                     "overall": result.overall["EM1"],
                     "meteor_start_seconds": meteor_start if captions is not None else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--qa3d-rows", type=int, default=4675)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for benchmark in (VSIBENCH, VSTIBENCH):
        questions, predictions = synthetic_rows(args.rows, TYPES[benchmark.name], rng)
        start = time.perf_counter()
        result = score(benchmark, questions, predictions)
        seconds = time.perf_counter() - start
        rows.append({"benchmark": benchmark.name, "rows": args.rows, "seconds": seconds,
                     "rows_per_second": args.rows / seconds, "overall": result.overall, "meteor_start_seconds": None})
    rows += qa3d_timings(args.qa3d_rows, rng)
    report("score", rows)


if __name__ == "__main__":
    main()
