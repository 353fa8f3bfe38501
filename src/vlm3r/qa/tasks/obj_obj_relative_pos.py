"""VSTI-Bench object-object relative position in a frame: near/far, left/right, up/down as seen by the camera.

Both objects' box corners go into the camera frame (OpenCV axes: x right, y down, z forward); A is nearer /
left / up when its whole box is more than 0.15 m closer / further left / higher than B's along that axis, and
the opposite word holds the other way round; overlapping extents give no question. Objects are pairs whose
categories appear once in the frame. Which one is A is drawn at random (the reference takes the smaller instance
id, which ties the answer to the order objects were annotated in and so biases the answer words). (The
reference formats these templates with the wrong keys and so produces none; docs/design.md B2.) Evidence: the
frame, the boxes of A and B and the camera centre.
"""

from __future__ import annotations

from functools import partial
from itertools import combinations

from vlm3r.geometry import box_corners, world_to_camera
from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSTIBENCH
from vlm3r.qa.task import Candidate, QATask, SceneContext
from vlm3r.qa.tasks._camera import camera_evidence

THRESHOLD = 0.15


class _ObjObjRelativePos(QATask):
    bench, kind = VSTIBENCH.name, "mca"
    default_per_scene = 9
    axis: int  # camera axis compared
    words: tuple[str, str]  # (A below B along the axis, A above B)
    template: str

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = ctx.require_frames().frames
        g = ctx.geometry
        out = []
        for rank, frame in enumerate(frames):
            visible = ctx.geometry.frame_unique(frame)
            ordered = sorted(visible, key=lambda k: g.boxes[k].instance_id)
            if len(ordered) < 2:
                continue
            corners = world_to_camera(box_corners(g.centers[ordered], g.lengths[ordered], g.axes[ordered]),
                                      frame.camera_to_world[None, None])[..., self.axis]  # [n, 8]
            low, high = corners.min(axis=1), corners.max(axis=1)
            description = templates.frame_description(rank, len(frames))
            for a, b in combinations(range(len(ordered)), 2):
                if ctx.rng.random() < 0.5:
                    a, b = b, a
                if low[b] - high[a] > THRESHOLD:
                    answer = self.words[0]
                elif low[a] - high[b] > THRESHOLD:
                    answer = self.words[1]
                else:
                    continue
                question = self.template.format(frame_description=description, obj_A_name=visible[ordered[a]],
                                                obj_B_name=visible[ordered[b]])
                evidence = partial(camera_evidence, g, [(frame, description)], [ordered[a], ordered[b]])
                out.append(Candidate(question, answer, list(self.words), frame_indices=[frame.frame_id],
                                     evidence=evidence))
        return out


class ObjObjRelativePosNF(_ObjObjRelativePos):
    name = question_type = "obj_obj_relative_pos_nf"
    axis, words, template = 2, ("Near", "Far"), templates.OBJ_OBJ_REL_POS["nf"]


class ObjObjRelativePosLR(_ObjObjRelativePos):
    name = question_type = "obj_obj_relative_pos_lr"
    axis, words, template = 0, ("Left", "Right"), templates.OBJ_OBJ_REL_POS["lr"]


class ObjObjRelativePosUD(_ObjObjRelativePos):
    name = question_type = "obj_obj_relative_pos_ud"
    axis, words, template = 1, ("Up", "Down"), templates.OBJ_OBJ_REL_POS["ud"]
