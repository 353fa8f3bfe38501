"""VSI-Bench appearance order: the order in which four categories first appear in the video.

A category appears in the first sampled frame whose 2D boxes include one of its instances; its time is that
frame's video index over the dataset's frame rate. Four categories qualify when every two first appearances
are more than 1 s apart. Needs frame metadata with instance ids. Evidence: in the answer's order, each category's
first-appearance frame and its instances visible there.
"""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene

#: Video frame rate per dataset, to turn a frame index into seconds (docs/design.md, data §1.4).
VIDEO_FPS = {"scannet": 24.0, "scannetpp": 30.0, "arkitscenes": 10.0, "synthetic": 24.0}
MIN_GAP_SECONDS = 1.0


class ObjAppearanceOrder(QATask):
    name = question_type = "obj_appearance_order"
    bench, kind = VSIBENCH.name, "mca"

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = ctx.require_frames()
        dataset = (ctx.scene.dataset or "").lower()
        if dataset not in VIDEO_FPS:
            raise SkipScene(f"unknown video frame rate for dataset {ctx.scene.dataset!r}")
        if not ctx.geometry.index_of_instance:
            raise SkipScene("scene boxes have no instance ids")
        g = ctx.geometry
        first: dict[str, float] = {}
        seen: dict[str, tuple[int, list[int]]] = {}  # first-appearance frame id and the boxes visible there
        for frame in sorted(frames.frames, key=lambda f: f.frame_id):
            if not isinstance(frame.frame_id, int):
                raise SkipScene(f"frame id {frame.frame_id!r} is not a video frame index")
            for box in frame.bboxes_2d:
                index = g.index_of_instance.get(box.instance_id)
                if index is not None:
                    category = g.categories[index]
                    first.setdefault(category, frame.frame_id / VIDEO_FPS[dataset])
                    frame_id, boxes = seen.setdefault(category, (frame.frame_id, []))
                    if frame_id == frame.frame_id and index not in boxes:
                        boxes.append(index)
        timed = sorted(first, key=lambda c: (first[c], c))
        out = []
        for four in combinations(timed, 4):
            times = np.array([first[c] for c in four])
            if np.min(np.diff(times)) <= MIN_GAP_SECONDS:  # sorted by time, so adjacent gaps suffice
                continue
            answer = ", ".join(four)
            wrong = [", ".join(p) for p in permutations(four) if p != four]
            distractors = [wrong[i] for i in ctx.rng.choice(len(wrong), size=3, replace=False)]
            listed = [four[i] for i in ctx.rng.permutation(4)]
            question = templates.OBJ_APPEARANCE_ORDER.format(choice_a=listed[0], choice_b=listed[1],
                                                             choice_c=listed[2], choice_d=listed[3])
            evidence = Evidence(objects=[g.object_ref(k) for c in four for k in seen[c][1]],
                                frames=[seen[c][0] for c in four])
            out.append(Candidate(question, answer, [answer, *distractors], extra={"categories_involved": listed},
                                 evidence=evidence))
        return out
