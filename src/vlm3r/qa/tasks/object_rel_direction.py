"""VSI-Bench relative direction (easy / medium / hard): standing by one object and facing another, where is a third?

Geometry on the floor plane (z up): forward = orienting centroid - positioning centroid; the angle of a point is
measured counter-clockwise from forward (0-360, left side 0-180). Hard uses quadrants, medium left / back /
right with the back spanning 135-225 degrees, easy left / right (back dropped). A question is kept only when
the querying object's centroid is at least 10 degrees from every region boundary (tested on all boundaries
alike; docs/design.md B9), at most 2 of its 8 box corners fall in another region, and the three objects are
0.3-5 m apart pairwise.

Evidence: the three boxes; where the question stands (the positioning centroid), an arrow from there to the
orienting centroid (forward) and one to the querying centroid labelled with the answer, all at the positioning
centroid's height, so that seen from above they are exactly the floor-plane geometry the answer was computed from.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from vlm3r.geometry.polygon import signed_angle
from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene

MIN_SPACING, MAX_SPACING = 0.30, 5.0  # m: every two of the three objects are this far apart
BOUNDARY_MARGIN = 10.0  # degrees
MAX_CORNERS_ELSEWHERE = 2  # box corners that may lie in another region than its center


def ccw_angles(origin_xy: np.ndarray, forward_xy: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Angles (degrees, [0, 360)) of points seen from ``origin``, counter-clockwise from ``forward``."""
    return np.mod(signed_angle(forward_xy, points_xy - origin_xy), 360.0)


class _ObjectRelDirection(QATask):
    bench, kind = VSIBENCH.name, "mca"
    boundaries: tuple[float, ...]  # region edges in degrees, 0 and 360 included
    regions: tuple[str | None, ...]  # name of each region between consecutive edges (None: no question)
    options: tuple[str, ...]
    template: str

    def region(self, angles: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.array(self.boundaries[1:-1]), angles, side="right")

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        unique = ctx.scene.unique_categories()
        if len(unique) < 3:
            raise SkipScene(f"needs 3 unique categories, has {len(unique)}")
        box = {c: ctx.scene.objects[c][0] for c in unique}
        out = []
        for triple in combinations(unique, 3):
            if not all(MIN_SPACING <= ctx.geometry.category_distance(a, b) <= MAX_SPACING
                       for a, b in combinations(triple, 2)):
                continue
            a, b, c = triple
            for positioning, orienting, querying in ((a, b, c), (a, c, b), (b, a, c)):
                answer = self.answer(box[positioning], box[orienting], box[querying])
                if answer is None:
                    continue
                question = self.template.format(positioning_object=positioning, orienting_object=orienting,
                                                querying_object=querying)
                out.append(Candidate(question, answer, list(self.options), extra={
                    "category, positioning object": positioning, "category, orienting object": orienting,
                    "category, querying object": querying},
                    evidence=direction_evidence(box, positioning, orienting, querying, answer)))
        return out

    def answer(self, positioning, orienting, querying) -> str | None:
        origin = positioning.centroid[:2]
        forward = orienting.centroid[:2] - origin
        if np.linalg.norm(forward) < 1e-6 or np.linalg.norm(querying.centroid[:2] - origin) < 1e-6:
            return None
        angles = ccw_angles(origin, forward, np.vstack([querying.centroid[:2], querying.corners[:, :2]]))
        center_angle = angles[0]
        if np.min(np.abs(center_angle - np.array(self.boundaries))) < BOUNDARY_MARGIN:
            return None
        regions = self.region(angles)
        if np.count_nonzero(regions[1:] != regions[0]) > MAX_CORNERS_ELSEWHERE:
            return None
        return self.regions[regions[0]]


def direction_evidence(box: dict, positioning: str, orienting: str, querying: str, answer: str) -> Evidence:
    """The standing point and the forward and querying arrows of a question (see the module's docstring)."""
    height = box[positioning].centroid[2]
    standing, facing, queried = (np.array([*box[c].centroid[:2], height]) for c in (positioning, orienting, querying))
    return Evidence(objects=[(positioning, 0), (orienting, 0), (querying, 0)],
                    points=[(f"standing by the {positioning}", standing)],
                    arrows=[(f"facing the {orienting}", standing, facing),
                            (f"{querying}: {answer}", standing, queried)])


class ObjectRelDirectionEasy(_ObjectRelDirection):
    name = question_type = "object_rel_direction_easy"
    boundaries = (0.0, 135.0, 225.0, 360.0)
    regions = ("left", None, "right")
    options = ("left", "right")
    template = templates.OBJ_REL_DIRECTION_EASY


class ObjectRelDirectionMedium(_ObjectRelDirection):
    name = question_type = "object_rel_direction_medium"
    boundaries = (0.0, 135.0, 225.0, 360.0)
    regions = ("left", "back", "right")
    options = ("left", "right", "back")
    template = templates.OBJ_REL_DIRECTION_MEDIUM


class ObjectRelDirectionHard(_ObjectRelDirection):
    name = question_type = "object_rel_direction_hard"
    boundaries = (0.0, 90.0, 180.0, 270.0, 360.0)
    regions = ("front-left", "back-left", "back-right", "front-right")
    options = ("front-left", "front-right", "back-left", "back-right")
    template = templates.OBJ_REL_DIRECTION_HARD
