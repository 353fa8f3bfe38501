"""Exact box-box distances per second (vectorised path) for random oriented-box pairs.

Usage: python benchmarks/geometry.py [--pairs 100000]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.spatial.transform import Rotation

from _common import best_time, report
from vlm3r.geometry import box_box_distance, point_box_distance


def random_boxes(rng: np.random.Generator, n: int):
    centers = rng.uniform(-5, 5, size=(n, 3))
    lengths = rng.uniform(0.05, 2.0, size=(n, 3))
    axes = np.swapaxes(Rotation.random(n, random_state=int(rng.integers(1 << 31))).as_matrix(), -1, -2)
    return centers, lengths, axes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, args.pairs), random_boxes(rng, args.pairs)
    points = rng.uniform(-5, 5, size=(args.pairs, 3))
    rows = []
    seconds = best_time(lambda: box_box_distance(*a, *b))
    rows.append({"operation": "box_box_distance", "pairs": args.pairs, "seconds": seconds,
                 "pairs_per_second": args.pairs / seconds})
    seconds = best_time(lambda: point_box_distance(points, *b))
    rows.append({"operation": "point_box_distance", "pairs": args.pairs, "seconds": seconds,
                 "pairs_per_second": args.pairs / seconds})
    report("geometry", rows)


if __name__ == "__main__":
    main()
