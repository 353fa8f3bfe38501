"""The task interface: a task turns one scene (``SceneContext``) into ``Candidate`` questions; the runner
(``vlm3r.qa.generate``) subsamples them, places the answer letters and writes records. Scene-level problems are
reported by raising ``SkipScene`` with a reason, never by producing a wrong answer. The tasks themselves, in
benchmark order, are the table of ``vlm3r.qa.tasks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlm3r.qa.choices import numeric_distractors
from vlm3r.qa.evidence import Evidence
from vlm3r.scene import SceneFrames, SceneMeta


class SkipScene(Exception):
    """This scene cannot produce questions for this task; the message says why."""


@dataclass
class Candidate:
    """A question before letters are placed.

    ``question`` is the text, or a function of the final option order when the text lists the options.
    ``options`` holds the option values, the answer among them; ``lettered`` options are written "A. value"
    (VSTI's numeric tasks write raw numbers, as the benchmark does). ``evidence``: the geometry the answer was
    computed from (``vlm3r.qa.evidence``), written to the record's extra key ``evidence``; or a function giving it,
    called only for the candidates kept (closest points cost more than the distances that pick the answer).
    """

    question: str | Callable[[list], str]
    answer: Any
    options: list
    lettered: bool = True
    frame_indices: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    evidence: Evidence | Callable[[], Evidence] | None = None


def numeric_candidate(rng: np.random.Generator, question: str, answer: float, lettered: bool = True,
                      frame_indices: list[int] | None = None, extra: dict[str, Any] | None = None,
                      evidence: Evidence | Callable[[], Evidence] | None = None, **distractors) -> Candidate | None:
    """A numeric question whose options are ``answer`` and three values drawn around it (``numeric_distractors``
    with the ``distractors`` options); None when they cannot be drawn, and the question is dropped."""
    values = numeric_distractors(rng, answer, **distractors)
    if values is None:
        return None
    return Candidate(question, answer, [answer, *values], lettered, frame_indices, extra or {}, evidence)


@dataclass
class SceneContext:
    """What a task sees of one scene: its metadata, its frames (or None), cached geometry and its own generator."""

    scene: SceneMeta
    frames: SceneFrames | None
    geometry: Any  # vlm3r.qa.geometry.SceneGeometry, shared by the scene's tasks
    rng: np.random.Generator

    def require_frames(self) -> SceneFrames:
        if self.frames is None or not self.frames.frames:
            raise SkipScene("no frame metadata for this scene")
        return self.frames


class QATask:
    """Base class. Subclasses set the class attributes and implement ``candidates``."""

    name: str  # key in the task table (vlm3r.qa.tasks.BY_NAME)
    question_type: str  # written to records (several variants may share one)
    bench: str  # the benchmark its questions belong to: a name of vlm3r.qa.benchmarks (vsibench, vstibench)
    kind: str  # "mca" (scored on the letter) or "na" (numeric, scored by mean relative accuracy)
    default_per_scene: int | None = 6  # questions kept per scene unless --per-scene says otherwise (None: all)
    in_benchmark: bool = True  # False for training-only variants, generated only when named

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        raise NotImplementedError
