"""VSTI-Bench camera displacement: how far the camera centre moved between two sampled frames 5-30 frames apart."""

from __future__ import annotations

import numpy as np

from vlm3r.qa import templates
from vlm3r.qa.choices import numeric_distractors, python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene
from vlm3r.qa.tasks._frame_pairs import MIN_SPAN, frame_pairs, pair_descriptions

MIN_DISPLACEMENT, MAX_DISPLACEMENT = 0.2, 10.0


class CameraDisplacement(QATask):
    name = question_type = "camera_displacement"
    bench, kind = "vsti", "na"

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = ctx.require_frames().frames
        if len(frames) <= MIN_SPAN:
            raise SkipScene(f"needs more than {MIN_SPAN} sampled frames, has {len(frames)}")
        centers = np.array([f.camera_center for f in frames])
        out = []
        for i, j in frame_pairs(frames):
            displacement = float(np.linalg.norm(centers[j] - centers[i]))
            if not MIN_DISPLACEMENT <= displacement <= MAX_DISPLACEMENT:
                continue
            answer = python_round(displacement, 1)
            distractors = numeric_distractors(ctx.rng, answer)
            if distractors is None:
                continue
            question = templates.CAMERA_DISPLACEMENT.format(**pair_descriptions(i, j, len(frames)))
            out.append(Candidate(question, answer, [answer, *distractors], lettered=False,
                                 frame_indices=[frames[i].frame_id, frames[j].frame_id]))
        return out
