"""The evidence of the camera tasks: the frames asked about, their camera centres (the pose translations, as the
answers use; docs/design.md B1) and segments from a centre to the nearest point of a box."""

from __future__ import annotations

from vlm3r.qa.evidence import Evidence
from vlm3r.qa.geometry import SceneGeometry
from vlm3r.scene import FrameMeta


def camera_evidence(g: SceneGeometry, views: list[tuple[FrameMeta, str]], boxes: list[int],
                    segments: list[tuple[int, int, str]] = ()) -> Evidence:
    """Evidence of frames ``views`` (each with the question's description of it, "frame 3 of 32") about boxes
    ``boxes`` of ``g``: the frame ids, the boxes, a point "camera, <description>" at each camera centre, and per
    (view position, box index, label) of ``segments`` a segment from that camera centre to the box's nearest point
    (``SceneGeometry.camera_closest_points``, whose distance is ``camera_distances``)."""
    return Evidence(
        objects=[g.object_ref(k) for k in boxes], frames=[frame.frame_id for frame, _ in views],
        points=[(f"camera, {description}", frame.camera_center) for frame, description in views],
        segments=[(label, views[v][0].camera_center, g.camera_closest_points(views[v][0], [k])[0])
                  for v, k, label in segments])
