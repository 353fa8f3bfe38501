"""VSI-Bench object size: the longest side of a unique object's box, in whole centimetres.

Evidence: the box, and one of its edges along that side (the lowest, so that a view shows it at the object's
foot; the first such edge of ``BOX_EDGES`` on a tie), labelled with the answer.
"""

from __future__ import annotations

import numpy as np

from vlm3r.geometry.boxes import BOX_EDGES
from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, numeric_candidate
from vlm3r.scene import OrientedBox


def longest_edge(box: OrientedBox) -> tuple[np.ndarray, np.ndarray]:
    """The ends of the lowest of the four box edges along its longest axis (``BOX_EDGES`` holds 4 per axis)."""
    axis = int(np.argmax(box.axes_lengths))
    edges = box.corners[BOX_EDGES[4 * axis:4 * axis + 4]]  # [4, 2, 3]
    lowest = int(np.argmin(edges[:, :, 2].sum(axis=1)))
    return edges[lowest, 0], edges[lowest, 1]


class ObjectSizeEstimation(QATask):
    name = question_type = "object_size_estimation"
    bench, kind = VSIBENCH.name, "na"
    default_per_scene = None

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        out = []
        for category in ctx.scene.unique_categories():
            box = ctx.scene.objects[category][0]
            answer = python_round(box.longest_side * 100)
            evidence = Evidence(objects=[(category, 0)], segments=[(f"{answer} cm", *longest_edge(box))])
            out.append(numeric_candidate(ctx.rng, templates.OBJ_SIZE.format(category=category), answer,
                                         extra={"category": category}, evidence=evidence, lower=0.4, upper=1.8,
                                         decimals=0))
        return [c for c in out if c is not None]
