"""The evidence of generated questions (issue #27): closest points of two boxes, the Evidence format and, per task,
the geometry each question's answer was computed from, worked by hand on tiny scenes."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vlm3r.geometry import box_box_closest_points, box_box_distance, points_in_box
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.record import QAFileError

I3 = np.eye(3)

# ------------------------------------------------------------------ closest points of two boxes


def test_closest_points_of_two_axis_aligned_boxes_lie_on_the_facing_faces():
    # A: x in [-0.5, 0.5], y in [-0.5, 0.5], z in [0, 1]; B: x in [2.5, 3.5], y in [0.2, 0.6], z in [0.5, 2.5].
    # The gap is along x only (2 m); the overlap of the faces' y-z ranges is y [0.2, 0.5], z [0.5, 1]: every pair
    # of points there facing each other is closest, and the vertex candidates come first: A's corner
    # (0.5, 0.5, 1) (corner 7, the first of A's corners in the overlap) with its clamp into B.
    p, q = box_box_closest_points([0, 0, 0.5], [1, 1, 1], I3, [3, 0.4, 1.5], [1, 0.4, 2], I3)
    assert p.tolist() == [0.5, 0.5, 1.0] and q.tolist() == [2.5, 0.5, 1.0]


def test_closest_points_of_an_edge_against_an_edge():
    # Two crossed bars: A along x (x in [-2, 2], y and z in [-0.1, 0.1]), B along y above it (x in [0.9, 1.1],
    # z in [0.9, 1.1]). No vertex is nearest; A's top edges along x (y = +-0.1, z = 0.1) pass 0.8 m under B's
    # bottom edges along y (x = 0.9 or 1.1, z = 0.9), and the first such edge pair is A's edge y = -0.1 against
    # B's edge x = 0.9 (corner order: the minus side first).
    p, q = box_box_closest_points([0, 0, 0], [4, 0.2, 0.2], I3, [1, 0, 1], [0.2, 4, 0.2], I3)
    assert np.allclose(p, [0.9, -0.1, 0.1], atol=1e-12) and np.allclose(q, [0.9, -0.1, 0.9], atol=1e-12)


def test_intersecting_boxes_give_one_common_point():
    # A thin rod through the corner of a cube, its centre outside the cube: the point of the cube nearest the
    # rod's centre is not in the rod, but the returned point is in both.
    # The rod runs along (1, -1, 0) / sqrt(2) through (0.45, 0.45, 0), a point of the cube near its corner.
    axes = Rotation.from_euler("z", -45, degrees=True).as_matrix().T
    rod = ([1.45, -0.55, 0], [4.0, 0.02, 0.02], axes)
    assert box_box_distance([0, 0, 0], [1, 1, 1], I3, *rod) == 0.0
    assert not points_in_box([0.5, -0.5, 0], *rod)  # the cube's point nearest the rod's centre
    p, q = box_box_closest_points([0, 0, 0], [1, 1, 1], I3, *rod)
    assert p.tolist() == q.tolist()
    assert points_in_box(p, [0, 0, 0], [1, 1, 1], I3) and points_in_box(p, *rod)


def test_closest_points_match_the_exact_distance_on_random_boxes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = (rng.uniform(-1, 1, 3), rng.uniform(0.05, 1.5, 3), Rotation.random(random_state=rng).as_matrix().T)
        b = (rng.uniform(-1, 1, 3), rng.uniform(0.05, 1.5, 3), Rotation.random(random_state=rng).as_matrix().T)
        p, q = box_box_closest_points(*a, *b)
        assert abs(np.linalg.norm(p - q) - box_box_distance(*a, *b)) <= 1e-9
        assert points_in_box(p, *a) and points_in_box(q, *b)


# ------------------------------------------------------------------ the Evidence format


def test_evidence_writes_only_what_it_has_rounded_to_millimetres_and_reads_back():
    evidence = Evidence(objects=[("sofa", 0)], segments=[("2.0 m", np.array([0.12345, -0.00001, 1]), [2, 0, 1])],
                        frames=[np.int64(12), "DSC01"])
    written = evidence.to_dict()
    assert written == {"objects": [["sofa", 0]], "segments": [{"label": "2.0 m", "from": [0.123, 0.0, 1.0],
                                                               "to": [2.0, 0.0, 1.0]}], "frames": [12, "DSC01"]}
    assert json.dumps(written) == ('{"objects": [["sofa", 0]], "segments": [{"label": "2.0 m", "from": [0.123, 0.0, '
                                   '1.0], "to": [2.0, 0.0, 1.0]}], "frames": [12, "DSC01"]}')  # no -0.0, no numpy
    assert Evidence.from_dict(written, "q.jsonl: line 1").to_dict() == written
    assert Evidence().to_dict() == {}


@pytest.mark.parametrize(("raw", "message"), [
    ([1, 2], "q.jsonl: line 3: evidence must be an object"),
    ({"segment": []}, r"q.jsonl: line 3: unknown evidence field\(s\) segment"),
    ({"objects": {"sofa": 0}}, "q.jsonl: line 3: evidence.objects must be a list"),
    ({"objects": [["sofa", -1]]}, r"q.jsonl: line 3: evidence.objects\[0\] must be \[category, index\]"),
    ({"path": [[0, 0, 0], [1, 0]]}, r"q.jsonl: line 3: evidence.path\[1\] must be a point"),
    ({"segments": [{"label": "1 m", "from": [0, 0, 0], "to": [1, 0, "x"]}]},
     r"q.jsonl: line 3: evidence.segments\[0\].to must be a point"),
    ({"arrows": [{"label": "left", "from": [0, 0, 0]}]},
     r"q.jsonl: line 3: evidence.arrows\[0\] must be an object with exactly the keys label, from, to"),
    ({"points": [{"label": 3, "at": [0, 0, 0]}]}, r"q.jsonl: line 3: evidence.points\[0\].label must be a string"),
    ({"frames": [True]}, r"q.jsonl: line 3: evidence.frames\[0\] must be a frame id"),
])
def test_malformed_evidence_names_the_field(raw, message):
    with pytest.raises(QAFileError, match=message):
        Evidence.from_dict(raw, "q.jsonl: line 3")
