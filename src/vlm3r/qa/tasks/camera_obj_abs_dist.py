"""VSTI-Bench camera-object distance: from the camera centre (the pose translation; docs/design.md B1) to the nearest
point of an object's box, in a given sampled frame, for objects whose category appears once in that frame.
Evidence: the frame, the box, the camera centre and the segment from it to the box's nearest point."""

from __future__ import annotations

from functools import partial

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSTIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext, numeric_candidate
from vlm3r.qa.tasks._camera import camera_evidence

MIN_DISTANCE, MAX_DISTANCE = 0.2, 10.0  # m: camera-object distances outside this range are not asked about


class CameraObjAbsDist(QATask):
    name = question_type = "camera_obj_abs_dist"
    bench, kind = VSTIBENCH.name, "na"

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
                description = templates.frame_description(rank, len(frames))
                question = templates.CAMERA_OBJ_DIST.format(object_name=visible[index], frame_description=description)
                answer = python_round(distance, 1)
                evidence = partial(camera_evidence, ctx.geometry, [(frame, description)], [index],
                                   [(0, index, f"{answer} m")])
                out.append(numeric_candidate(ctx.rng, question, answer, lettered=False,
                                             frame_indices=[frame.frame_id], evidence=evidence))
        return [c for c in out if c is not None]
