"""VSI-Bench object size: the longest side of a unique object's box, in whole centimetres."""

from __future__ import annotations

from vlm3r.qa import templates
from vlm3r.qa.choices import numeric_distractors, python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext


class ObjectSizeEstimation(QATask):
    name = question_type = "object_size_estimation"
    bench, kind = "vsi", "na"
    default_per_scene = None

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        out = []
        for category in ctx.scene.unique_categories():
            answer = python_round(ctx.scene.objects[category][0].longest_side * 100)
            distractors = numeric_distractors(ctx.rng, answer, lower=0.4, upper=1.8, decimals=0)
            if distractors is None:
                continue
            out.append(Candidate(templates.OBJ_SIZE.format(category=category), answer, [answer, *distractors],
                                 extra={"category": category}))
        return out
