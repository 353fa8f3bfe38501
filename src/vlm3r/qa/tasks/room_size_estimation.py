"""VSI-Bench room size: the floor area in square metres, rounded to 0.1."""

from __future__ import annotations

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene, numeric_candidate


class RoomSizeEstimation(QATask):
    name = question_type = "room_size_estimation"
    bench, kind = VSIBENCH.name, "na"
    default_per_scene = 1

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        answer = python_round(ctx.scene.room_size, 1)
        if answer <= 0:
            raise SkipScene(f"room_size is {ctx.scene.room_size} (the room's area could not be measured)")
        candidate = numeric_candidate(ctx.rng, templates.ROOM_SIZE, answer)
        return [] if candidate is None else [candidate]
