"""The task interface and registry: one task = one module that registers itself by its benchmark name.

A task turns one scene (``SceneContext``) into ``Candidate`` questions; the runner (``vlm3r.qa.generate``)
subsamples them, places the answer letters and writes records. Scene-level problems are reported by raising
``SkipScene`` with a reason, never by producing a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlm3r.errors import InputError
from vlm3r.scene import SceneFrames, SceneMeta


class SkipScene(Exception):
    """This scene cannot produce questions for this task; the message says why."""


@dataclass
class Candidate:
    """A question before letters are placed.

    ``question`` is the text, or a function of the final option order when the text lists the options.
    ``options`` holds the option values, the answer among them; ``lettered`` options are written "A. value"
    (VSTI's numeric tasks write raw numbers, as the benchmark does).
    """

    question: str | Callable[[list], str]
    answer: Any
    options: list
    lettered: bool = True
    frame_indices: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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

    name: str  # registry key
    question_type: str  # written to records (several variants may share one)
    bench: str  # "vsi" or "vsti"
    kind: str  # "mca" (scored on the letter) or "na" (numeric, scored by mean relative accuracy)
    default_per_scene: int | None = 6  # questions kept per scene unless --per-scene says otherwise (None: all)
    in_benchmark: bool = True  # False for training-only variants, generated only when named

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        raise NotImplementedError


_REGISTRY: dict[str, QATask] = {}


def register(task_class: type[QATask]) -> type[QATask]:
    """Class decorator: register one instance under its name."""
    task = task_class()
    if task.name in _REGISTRY:
        raise ValueError(f"task {task.name!r} registered twice")
    _REGISTRY[task.name] = task
    return task_class


def all_tasks() -> dict[str, QATask]:
    import vlm3r.qa.tasks  # noqa: F401  (importing the package registers every task)

    return dict(_REGISTRY)


def select_tasks(bench: str = "all", names: list[str] | None = None) -> list[QATask]:
    """Tasks by name (any registered task) or by benchmark (its benchmark tasks), in registry order."""
    tasks = all_tasks()
    if names:
        unknown = [n for n in names if n not in tasks]
        if unknown:
            raise InputError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(tasks)}")
        return [tasks[n] for n in names]
    if bench not in ("vsi", "vsti", "all"):
        raise InputError(f"bench must be vsi, vsti or all, got {bench!r}")
    return [t for t in tasks.values() if t.in_benchmark and bench in (t.bench, "all")]


def answer_kind(question_type: str) -> str:
    """'mca' or 'na' for a question type (registered types and the reference's variant names)."""
    for task in all_tasks().values():
        if task.question_type == question_type:
            return task.kind
    if question_type.startswith(("object_rel_direction", "object_rel_distance", "camera_obj_rel_dist")):
        return "mca"
    raise InputError(f"unknown question type {question_type!r}")
