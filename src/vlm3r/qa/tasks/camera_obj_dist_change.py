"""VSTI camera-object distance change (declared by the reference, never implemented; docs/design.md, additions): by
how many meters the camera-to-object distance changed between two sampled frames 5-30 frames apart that both show
the object as the only one of its category; changes under 0.3 m give no question. Evidence: both frames, the
box, both camera centres and a segment from each to the box's nearest point, labelled with its distance."""

from __future__ import annotations

from functools import partial

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSTIBENCH
from vlm3r.qa.choices import python_round
from vlm3r.qa.task import Candidate, QATask, SceneContext, numeric_candidate
from vlm3r.qa.tasks._camera import camera_evidence
from vlm3r.qa.tasks._frame_pairs import frame_pairs, pair_descriptions, span_frames

MIN_CHANGE = 0.3  # m: smaller changes of the camera-object distance are not asked about


class CameraObjDistChange(QATask):
    name = question_type = "camera_obj_dist_change"
    bench, kind = VSTIBENCH.name, "na"

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = span_frames(ctx)
        g = ctx.geometry
        visible = [g.frame_unique(frame) for frame in frames]
        out = []
        for i, j in frame_pairs(frames):
            shared = sorted(set(visible[i]) & set(visible[j]))
            if not shared:
                continue
            start = g.camera_distances(frames[i], shared)
            end = g.camera_distances(frames[j], shared)
            for index, d_start, d_end in zip(shared, start, end):
                change = abs(float(d_end) - float(d_start))
                if change < MIN_CHANGE:
                    continue
                question = templates.CAMERA_OBJ_DIST_CHANGE.format(object=g.categories[index],
                                                                   **pair_descriptions(i, j, len(frames)))
                views = [(frames[k], templates.frame_description(k, len(frames))) for k in (i, j)]
                evidence = partial(camera_evidence, g, views, [index],
                                   [(0, index, f"{float(d_start):.2f} m"), (1, index, f"{float(d_end):.2f} m")])
                out.append(numeric_candidate(ctx.rng, question, python_round(change, 1), lettered=False,
                                             frame_indices=[frames[i].frame_id, frames[j].frame_id],
                                             evidence=evidence))
        return [c for c in out if c is not None]
