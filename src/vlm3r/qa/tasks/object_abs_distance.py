"""VSI-Bench absolute distance between two unique objects, measured between their closest points.

Distances are exact box-to-box distances (the reference samples points every 5 cm, which can add a few
centimetres); the answer is rounded to 0.1 m and pairs closer than 0.2 m are skipped, as in the reference.
Evidence: the two boxes and the segment between their closest points, labelled with the answer.
"""

from __future__ import annotations

from functools import partial

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, numeric_candidate

MIN_DISTANCE = 0.2  # m: closer pairs are not asked about


def distance_evidence(g, a: int, b: int, label: str) -> Evidence:
    """Boxes ``a`` and ``b`` of a ``SceneGeometry`` and the segment between their closest points."""
    return Evidence(objects=[g.object_ref(a), g.object_ref(b)], segments=[(label, *g.closest_points(a, b))])


class ObjectAbsDistance(QATask):
    name = question_type = "object_abs_distance"
    bench, kind = VSIBENCH.name, "na"

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        unique = ctx.scene.unique_categories()
        g = ctx.geometry
        out = []
        for i, first in enumerate(unique):
            for second in unique[:i]:  # each unique category with every one listed before it, as the reference
                distance, a, b = g.closest_pair(first, second)
                answer = python_round(distance, 1)
                if answer < MIN_DISTANCE:
                    continue
                evidence = partial(distance_evidence, g, a, b, f"{answer} m")
                out.append(numeric_candidate(
                    ctx.rng, templates.OBJ_ABS_DISTANCE.format(object1=first, object2=second), answer,
                    extra={"category, first object": first, "category, second object": second}, evidence=evidence))
        return [c for c in out if c is not None]
