"""VSTI-Bench camera-object distance: from the camera centre (the pose translation; decisions.md B1) to the nearest
point of an object's box, in a given sampled frame, for objects whose category appears once in that frame."""

from __future__ import annotations

from vlm3r.qa import templates
from vlm3r.qa.choices import numeric_distractors, python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext

MIN_DISTANCE, MAX_DISTANCE = 0.2, 10.0


class CameraObjAbsDist(QATask):
    name = question_type = "camera_obj_abs_dist"
    bench, kind = "vsti", "na"

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = ctx.require_frames().frames
        out = []
        for rank, frame in enumerate(frames):
            visible = ctx.geometry.frame_unique(frame)
            indices = list(visible)
            if not indices:
                continue
            for index, distance in zip(indices, ctx.geometry.camera_distances(frame, indices)):
                if not MIN_DISTANCE <= distance <= MAX_DISTANCE:
                    continue
                answer = python_round(distance, 1)
                distractors = numeric_distractors(ctx.rng, answer)
                if distractors is None:
                    continue
                question = templates.CAMERA_OBJ_DIST.format(
                    object_name=visible[index], frame_description=templates.frame_description(rank, len(frames)))
                out.append(Candidate(question, answer, [answer, *distractors], lettered=False,
                                     frame_indices=[frame.frame_id]))
        return out
