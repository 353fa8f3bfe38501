"""VSI-Bench object counting: "How many {category}(s) are in this room?" for categories with 2+ instances."""

from __future__ import annotations

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.choices import count_distractors
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext


class ObjectCounting(QATask):
    name = question_type = "object_counting"
    bench, kind = VSIBENCH.name, "na"
    default_per_scene = None

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        out = []
        for category, count in ctx.scene.object_counts.items():
            if count < 2:
                continue
            options = [count, *count_distractors(ctx.rng, count)]
            evidence = Evidence(objects=[(category, i) for i in range(len(ctx.scene.objects[category]))])
            out.append(Candidate(templates.OBJ_COUNT.format(category=category), count, options,
                                 extra={"category": category}, evidence=evidence))
        return out
