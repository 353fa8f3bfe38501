"""Answer options: balanced letter placement and distractors (docs/design.md, data §4.2-4.4).

All randomness comes from the numpy generator passed in (one per scene and task; docs/design.md B13).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

LETTERS = "ABCD"


class LetterBalancer:
    """Puts the correct answer at the least-used letter so far, choosing among the letters this question can use
    (the reference counts all four letters even for 2- and 3-option questions, so its balancing degrades to plain
    shuffling; docs/design.md B10)."""

    def __init__(self):
        self.counts: Counter[str] = Counter()

    def place(self, rng: np.random.Generator, options: list, answer) -> tuple[list, str]:
        """The options in their final order and the letter of ``answer``."""
        if answer not in options:
            raise ValueError(f"answer {answer!r} is not among the options {options!r}")
        usable = LETTERS[:len(options)]
        fewest = min(self.counts[letter] for letter in usable)
        candidates = [letter for letter in usable if self.counts[letter] == fewest]
        letter = candidates[int(rng.integers(len(candidates)))]
        others = [o for o in options if o != answer]
        others = [others[i] for i in rng.permutation(len(others))]
        position = LETTERS.index(letter)
        ordered = others[:position] + [answer] + others[position:]
        self.counts[letter] += 1
        return ordered, letter


def lettered(options: list) -> list[str]:
    """``["A. x", "B. y", ...]``."""
    return [f"{LETTERS[i]}. {value}" for i, value in enumerate(options)]


def python_round(value: float, decimals: int = 0):
    """Python's round (half to even on the binary float), as the reference rounds; an int for 0 decimals."""
    return int(round(value)) if decimals == 0 else round(float(value), decimals)


def numeric_distractors(rng: np.random.Generator, answer: float, margin: float = 0.20, lower: float = 0.25,
                        upper: float = 1.75, decimals: int = 1, tries: int = 31) -> list | None:
    """Three values drawn uniformly from [answer * lower, answer * upper], rounded, at least EPS = ceil(answer *
    margin) (at the rounding precision) from each other and from the answer; None if that fails after ``tries``
    resampling passes (the question is then dropped, as in the reference)."""
    scale = 10 ** decimals
    eps = math.ceil(answer * margin * scale) / scale

    def draw():
        return python_round(rng.uniform(answer * lower, answer * upper), decimals)

    values = [draw() for _ in range(3)]
    for _ in range(tries + 1):
        bad = set()
        for i in range(3):
            if abs(values[i] - answer) < eps:
                bad.add(i)
            for j in range(i + 1, 3):
                if abs(values[i] - values[j]) < eps:
                    bad.add(j)
        if not bad:
            return values
        for i in sorted(bad):
            values[i] = draw()
    return None


def count_distractors(rng: np.random.Generator, answer: int) -> list[int]:
    """Three other counts near ``answer`` (offsets from +-3, then +-5; never below 1), as the reference draws them."""
    values = [answer]
    offsets = [o for o in range(-3, 4) if o]
    tried = set()
    while len(values) < 4:
        if not offsets:
            offsets = [o for o in range(-5, 6) if o and o not in tried]
            if not offsets:
                break
        offset = offsets.pop(int(rng.integers(len(offsets))))
        tried.add(offset)
        candidate = max(1, answer + offset)
        if candidate not in values:
            values.append(candidate)
    return values[1:]
