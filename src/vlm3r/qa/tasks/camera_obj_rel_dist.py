"""VSTI-Bench camera-object relative distance: which of K objects is closest to the camera in a frame (K = 4/3/2).

Objects are those whose category appears once in the frame. A frame whose truly nearest such object is closer
than 0.5 m gives no question (the reference instead drops that object and asks anyway, so its answer can be
wrong; docs/design.md B11). Distractors are at least 0.15 m farther than the answer and from each other;
distances are compared unrounded in every variant. At most one question per frame.
Evidence: the frame, the options' boxes, the camera centre and a segment from it to each option's nearest point,
labelled with the option and its distance (to the centimetre).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSTIBENCH
from vlm3r.qa.task import Candidate, QATask, SceneContext
from vlm3r.qa.tasks._camera import camera_evidence

MIN_NEAREST = 0.5  # m: a frame whose nearest object is closer gives no question
MIN_GAP = 0.15  # m: least difference between the distances of any two options


class _CameraObjRelDist(QATask):
    bench, kind = VSTIBENCH.name, "mca"
    num_choices: int

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = ctx.require_frames().frames
        out = []
        for rank, frame in enumerate(frames):
            visible = ctx.geometry.frame_unique(frame)
            if len(visible) < self.num_choices:
                continue
            indices = list(visible)
            distances = ctx.geometry.camera_distances(frame, indices)
            nearest = int(np.argmin(distances))
            if distances[nearest] < MIN_NEAREST:
                continue
            chosen = [nearest]
            for k in ctx.rng.permutation(len(indices)):
                if len(chosen) == self.num_choices:
                    break
                if k != nearest and all(abs(distances[k] - distances[j]) >= MIN_GAP for j in chosen):
                    chosen.append(int(k))
            if len(chosen) < self.num_choices:
                continue
            names = [visible[indices[k]] for k in chosen]
            description = templates.frame_description(rank, len(frames))
            question = templates.listing_choices(templates.CAMERA_OBJ_REL_DIST, frame_description=description)
            evidence = partial(camera_evidence, ctx.geometry, [(frame, description)], [indices[k] for k in chosen],
                               [(0, indices[k], f"{name} {distances[k]:.2f} m") for k, name in zip(chosen, names)])
            out.append(Candidate(question, names[0], names, frame_indices=[frame.frame_id], evidence=evidence))
        return out


class CameraObjRelDistV1(_CameraObjRelDist):
    name = question_type = "camera_obj_rel_dist_v1"
    num_choices = 4  # objects to choose from


class CameraObjRelDistV2(_CameraObjRelDist):
    name = question_type = "camera_obj_rel_dist_v2"
    num_choices = 3  # objects to choose from


class CameraObjRelDistV3(_CameraObjRelDist):
    name = question_type = "camera_obj_rel_dist_v3"
    num_choices = 2  # objects to choose from
