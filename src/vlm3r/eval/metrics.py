"""The benchmarks' answer matching and metrics, as the reference scores them (docs/design.md, data §9.1).

- ``fuzzy_match``: the first space-separated token of the answer, trailing "." removed, whitespace stripped.
- multiple choice: 1 if that token equals the correct letter, ignoring case, else 0.
- numbers: the token parsed as a float (any failure scores 0: "2.5m" and "about 2.5" score 0, "2.5 meters"
  parses), then Mean Relative Accuracy: the share of thresholds theta in {0.50, 0.55, ..., 0.95} with
  |pred - gt| / gt <= 1 - theta (the code's <=; the paper writes <).
"""

from __future__ import annotations

import numpy as np

#: The reference's thresholds: np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2)), i.e. 10 values.
MRA_THRESHOLDS = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))


def fuzzy_match(prediction: str) -> str:
    return prediction.split(" ")[0].rstrip(".").strip()


def exact_match(prediction: str, target: str) -> float:
    return 1.0 if fuzzy_match(prediction).lower() == str(target).lower() else 0.0


def to_float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def mra_hits(prediction: str, target: float) -> np.ndarray:
    """Per threshold, whether the prediction is within it (all False when the prediction is not a number)."""
    value = to_float(fuzzy_match(prediction))
    if value is None:
        return np.zeros(len(MRA_THRESHOLDS), dtype=bool)
    target = float(target)
    return np.abs(value - target) / target <= 1 - MRA_THRESHOLDS


def mean_relative_accuracy(prediction: str, target: float) -> float:
    return float(mra_hits(prediction, target).mean())
