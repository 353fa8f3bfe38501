"""VSI-Bench object size: the longest side of a unique object's box, in whole centimetres."""

from __future__ import annotations

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext, numeric_candidate


class ObjectSizeEstimation(QATask):
    name = question_type = "object_size_estimation"
    bench, kind = VSIBENCH.name, "na"
    default_per_scene = None

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        out = [numeric_candidate(ctx.rng, templates.OBJ_SIZE.format(category=category),
                                 python_round(ctx.scene.objects[category][0].longest_side * 100),
                                 extra={"category": category}, lower=0.4, upper=1.8, decimals=0)
               for category in ctx.scene.unique_categories()]
        return [c for c in out if c is not None]
