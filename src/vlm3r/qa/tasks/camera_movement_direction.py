"""VSTI-Bench camera movement direction between two sampled frames, relative to the camera's start orientation.

The displacement of the camera centre is expressed in the start camera's frame (OpenCV axes); its sideways (x)
and forward (z) parts are significant above a threshold (1 m with four choices, 0.5 m with three or two);
the larger significant part decides Forward / Backward / Right / Left, forward winning ties. All variants write
the question type ``camera_movement_direction``, as the benchmark does. Evidence: both frames and an arrow from the
start camera centre to the end one, labelled with the answer (the start frame's pose gives the axes it is read in).
"""

from __future__ import annotations

import numpy as np

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSTIBENCH
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext
from vlm3r.qa.tasks._frame_pairs import frame_pairs, pair_descriptions

DIRECTIONS = ("Forward", "Backward", "Left", "Right")


def movement_direction(start_pose: np.ndarray, end_pose: np.ndarray, threshold: float) -> str | None:
    """The dominant significant direction of travel in the start camera's frame, or None."""
    dx, _, dz = start_pose[:3, :3].T @ (end_pose[:3, 3] - start_pose[:3, 3])
    x_big, z_big = abs(dx) > threshold, abs(dz) > threshold
    if z_big and (not x_big or abs(dz) >= abs(dx)):
        return "Forward" if dz > 0 else "Backward"
    if x_big:
        return "Right" if dx > 0 else "Left"
    return None


class _CameraMovementDirection(QATask):
    question_type = "camera_movement_direction"
    bench, kind = VSTIBENCH.name, "mca"
    default_per_scene = 5
    num_choices: int
    threshold: float

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        frames = ctx.require_frames().frames
        out = []
        for i, j in frame_pairs(frames, min_span=1, max_span=None):
            answer = movement_direction(frames[i].camera_to_world, frames[j].camera_to_world, self.threshold)
            if answer is None:
                continue
            others = [d for d in DIRECTIONS if d != answer]
            options = [answer, *(others[k] for k in ctx.rng.permutation(3)[:self.num_choices - 1])]
            descriptions = pair_descriptions(i, j, len(frames))
            out.append(Candidate(
                templates.listing_choices(templates.CAMERA_MOVEMENT_DIRECTION, "and", **descriptions),
                answer, options, frame_indices=[frames[i].frame_id, frames[j].frame_id],
                extra={"question_template": self.name},
                evidence=Evidence(frames=[frames[i].frame_id, frames[j].frame_id],
                                  arrows=[(answer, frames[i].camera_center, frames[j].camera_center)])))
        return out


class CameraMovementDirection(_CameraMovementDirection):
    name = "camera_movement_direction"
    num_choices, threshold = 4, 1.0


class CameraMovementDirectionV2(_CameraMovementDirection):
    name = "camera_movement_direction_v2"
    num_choices, threshold = 3, 0.5


class CameraMovementDirectionV3(_CameraMovementDirection):
    name = "camera_movement_direction_v3"
    num_choices, threshold = 2, 0.5
