"""VSTI-Bench camera displacement: how far the camera centre moved between two sampled frames 5-30 frames apart.
Evidence: both frames, their camera centres and the segment between them, labelled with the answer."""

from __future__ import annotations

import numpy as np

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSTIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, numeric_candidate
from vlm3r.qa.tasks._frame_pairs import frame_pairs, pair_descriptions, span_frames

MIN_DISPLACEMENT, MAX_DISPLACEMENT = 0.2, 10.0  # m: camera moves outside this range are not asked about


class CameraDisplacement(QATask):
    name = question_type = "camera_displacement"
    bench, kind = VSTIBENCH.name, "na"

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = span_frames(ctx)
        centers = np.array([f.camera_center for f in frames])
        out = []
        for i, j in frame_pairs(frames):
            displacement = float(np.linalg.norm(centers[j] - centers[i]))
            if not MIN_DISPLACEMENT <= displacement <= MAX_DISPLACEMENT:
                continue
            question = templates.CAMERA_DISPLACEMENT.format(**pair_descriptions(i, j, len(frames)))
            answer = python_round(displacement, 1)
            evidence = Evidence(frames=[frames[i].frame_id, frames[j].frame_id],
                                points=[(f"camera, {templates.frame_description(k, len(frames))}", centers[k])
                                        for k in (i, j)],
                                segments=[(f"{answer} m", centers[i], centers[j])])
            out.append(numeric_candidate(ctx.rng, question, answer, lettered=False,
                                         frame_indices=[frames[i].frame_id, frames[j].frame_id], evidence=evidence))
        return [c for c in out if c is not None]
