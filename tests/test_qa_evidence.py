"""The evidence of generated questions (issue #27): closest points of two boxes, the Evidence format and, per task,
the geometry each question's answer was computed from, worked by hand on tiny scenes."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.spatial.transform import Rotation
from helpers import box, frames_of, l_corridor, looking_along_x, run, scene_of, straight_room, synthetic_scene

from vlm3r.geometry import box_box_closest_points, box_box_distance, point_box_distance, points_in_box
from vlm3r.qa.choices import python_round
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.export import to_llava, write_parquet
from vlm3r.qa.generate import SceneInput, generate
from vlm3r.qa.record import QAFileError, read_qa_jsonl, write_qa_jsonl
from vlm3r.qa.tasks import BY_NAME, select_tasks

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


# ------------------------------------------------------------------ per task, worked by hand


def written(candidate) -> dict:
    """A candidate's evidence as a record writes it."""
    evidence = candidate.evidence() if callable(candidate.evidence) else candidate.evidence
    return evidence.to_dict()


def records_of(scene, task_names, frames=None, seed=0):
    return generate([SceneInput(scene, frames)], [BY_NAME[name] for name in task_names], seed=seed)[0]


def test_counting_lists_every_instance():
    scene = scene_of({"chair": [box(0, 0), box(1, 0), box(2, 0)], "table": [box(0, 3)]})
    [record] = records_of(scene, ["object_counting"])
    assert record.extra["evidence"] == {"objects": [["chair", 0], ["chair", 1], ["chair", 2]]}


def test_abs_distance_segment_joins_the_facing_faces():
    # sofa: x, y in [-0.2, 0.2], z in [0.3, 0.7]; tv 2.4 m east: x in [2.2, 2.6]. The question asks about the tv
    # (listed second) and the sofa; the nearest candidate pair is the sofa's first corner on its east face,
    # (0.2, -0.2, 0.3), with its clamp onto the tv's west face.
    scene = scene_of({"sofa": [box(0, 0)], "tv": [box(2.4, 0)]})
    [record] = records_of(scene, ["object_abs_distance"])
    assert record.ground_truth == 2.0
    assert record.extra["evidence"] == {"objects": [["tv", 0], ["sofa", 0]], "segments": [
        {"label": "2.0 m", "from": [2.2, -0.2, 0.3], "to": [0.2, -0.2, 0.3]}]}
    assert list(record.to_dict())[-1] == "evidence"  # after the standard fields and the task's own


def test_abs_distance_segments_measure_the_answer_on_a_synthetic_scene():
    scene = synthetic_scene(0)
    records = records_of(scene, ["object_abs_distance"])
    assert len(records) == 6
    for record in records:
        [(a, i), (b, j)] = record.extra["evidence"]["objects"]
        assert (a, b) == (record.extra["category, first object"], record.extra["category, second object"])
        boxes = [scene.objects[a][i], scene.objects[b][j]]
        exact = box_box_distance(*(x for bx in boxes for x in (bx.centroid, bx.axes_lengths, bx.normalized_axes)))
        [segment] = record.extra["evidence"]["segments"]
        start, end = np.array(segment["from"]), np.array(segment["to"])
        assert segment["label"] == f"{record.ground_truth} m" and python_round(exact, 1) == record.ground_truth
        # each end on its box and the length exact, up to the millimetre rounding of the written coordinates
        mm = 0.5e-3 * np.sqrt(3)
        assert point_box_distance(start, boxes[0].centroid, boxes[0].axes_lengths, boxes[0].normalized_axes) <= mm
        assert point_box_distance(end, boxes[1].centroid, boxes[1].axes_lengths, boxes[1].normalized_axes) <= mm
        assert abs(np.linalg.norm(end - start) - exact) <= 2 * mm


def test_size_segment_is_the_lowest_edge_along_the_longest_side():
    # 0.4 x 1.2 x 0.3 m at (1, 2, 0.5): the longest side runs along y; its lowest edges are at z = 0.35, the first
    # of them at x = 0.8 (corners 0 and 2 of BOX_EDGES' y edges).
    scene = scene_of({"bed": [box(1, 2, size=(0.4, 1.2, 0.3))], "chair": [box(4, 4), box(5, 4)]})
    [candidate] = run("object_size_estimation", scene)
    assert candidate.answer == 120
    assert written(candidate) == {"objects": [["bed", 0]], "segments": [
        {"label": "120 cm", "from": [0.8, 1.4, 0.35], "to": [0.8, 2.6, 0.35]}]}


def test_relative_distance_draws_each_option_from_its_closest_instance():
    # sofa x, y in [-0.2, 0.2]; the second chair (x in [-0.2, 0.2], y in [0.8, 1.2]) is 0.6 m north, the first
    # 3.6 m east; the tv 2.1 m south. Closest points: the sofa's first corner on the facing face, clamped.
    scene = scene_of({"sofa": [box(0, 0)], "chair": [box(4, 0), box(0, 1.0)], "tv": [box(0, -2.5)]})
    [candidate] = [c for c in run("object_rel_distance_v3", scene) if c.extra["category"] == "sofa"]
    assert candidate.answer == "chair" and candidate.options == ["chair", "tv"]
    assert written(candidate) == {"objects": [["sofa", 0], ["chair", 1], ["tv", 0]], "segments": [
        {"label": "chair 0.60 m", "from": [-0.2, 0.2, 0.3], "to": [-0.2, 0.8, 0.3]},
        {"label": "tv 2.10 m", "from": [-0.2, -0.2, 0.3], "to": [-0.2, -2.3, 0.3]}]}


def test_relative_direction_stands_faces_and_points_at_the_standing_height():
    # Standing by the sofa (0, 0, 0.5) facing the tv due east: the lamp due north is on the left. The tv hangs
    # higher and the lamp stands lower; the arrows stay at the sofa's height, the floor-plane geometry asked.
    scene = scene_of({"sofa": [box(0, 0)], "tv": [box(2, 0, z=1.2)], "lamp": [box(0, 2, z=0.3)]})
    [candidate] = [c for c in run("object_rel_direction_easy", scene) if c.extra["category, positioning object"]
                   == "sofa" and c.extra["category, orienting object"] == "tv"]
    assert candidate.answer == "left"
    assert written(candidate) == {
        "objects": [["sofa", 0], ["tv", 0], ["lamp", 0]],
        "arrows": [{"label": "facing the tv", "from": [0.0, 0.0, 0.5], "to": [2.0, 0.0, 0.5]},
                   {"label": "lamp: left", "from": [0.0, 0.0, 0.5], "to": [0.0, 2.0, 0.5]}],
        "points": [{"label": "standing by the sofa", "at": [0.0, 0.0, 0.5]}]}


def test_turn_back_route_starts_halfway_along_the_first_leg():
    # straight_room: the sofa-toilet route is one straight leg; the robot stands by the lamp halfway along it,
    # facing the sofa behind it; it turns back there and walks to the toilet's route end. The floor is at z 0.
    [record] = [r for r in records_of(straight_room(), ["route_planning"])
                if r.question.startswith("You are a robot beginning at the lamp facing the sofa")]
    start, end = np.array(record.extra["route_waypoints"])
    middle = [*((start + end) / 2), 0.0]
    evidence = record.extra["evidence"]
    assert evidence["objects"] == [["lamp", 0], ["sofa", 0], ["toilet", 0]]
    assert np.allclose(evidence["path"], [middle, [*end, 0.0]], atol=1e-3)
    assert [p["label"] for p in evidence["points"]] == ["Turn Back"] == [record.ground_truth]
    assert np.allclose(evidence["points"][0]["at"], middle, atol=1e-3)
    [arrow] = evidence["arrows"]
    assert arrow["label"] == "facing the sofa" and arrow["from"] == evidence["path"][0]
    assert arrow["to"] == [0.4, 1.0, 0.0]  # the sofa's footprint centre


def test_forward_route_path_is_the_planned_route_with_its_turn():
    [record] = [r for r in records_of(l_corridor(), ["route_planning"])
                if r.question.startswith("You are a robot beginning at the sofa facing the tv. You want to navigate "
                                         "to the toilet")]
    evidence = record.extra["evidence"]
    route = np.array(record.extra["route_waypoints"])
    assert np.allclose(evidence["path"], np.column_stack([route, np.zeros(len(route))]), atol=1e-3)
    assert evidence["objects"] == [["sofa", 0], ["tv", 0], ["toilet", 0]]
    [turn] = evidence["points"]
    assert turn["label"] == record.ground_truth == "Turn Left"
    assert np.all(np.abs(np.array(turn["at"]) - [5.1, 0.9, 0.0]) < 0.15)  # the L's inside corner (route tests)


def test_appearance_order_names_the_first_frames_and_what_showed_there():
    # At 24 frames/s the categories first appear 2 s apart: the second chair (instance 2) in frame 0, the table in
    # frame 48, the sofa in 96 (with the first chair again), the tv in 144.
    scene = scene_of({"chair": [box(0, 0, iid=1), box(1, 0, iid=2)], "table": [box(0, 3, iid=3)],
                      "sofa": [box(3, 3, iid=4)], "tv": [box(3, 0, iid=5)]})
    frames = frames_of([np.eye(4)] * 4, [[2], [3], [4, 1], [5]], frame_ids=[0, 48, 96, 144])
    [candidate] = run("obj_appearance_order", scene, frames)
    assert candidate.answer == "chair, table, sofa, tv"
    assert written(candidate) == {"objects": [["chair", 1], ["table", 0], ["sofa", 0], ["tv", 0]],
                                  "frames": [0, 48, 96, 144]}


def test_camera_object_distance_runs_from_the_camera_centre_to_the_box():
    # Camera at (0, 0, 1.5); box x in [2.8, 3.2], z in [0.3, 0.7]: nearest point (2.8, 0, 0.7), sqrt(2.8² + 0.8²).
    scene = scene_of({"tv": [box(3, 0, iid=7)], "sofa": [box(0, 5, iid=8)]})
    frames = frames_of([looking_along_x([0, 0, 1.5])], [[7]], frame_ids=[12])
    [candidate] = run("camera_obj_abs_dist", scene, frames)
    assert candidate.answer == python_round(np.hypot(2.8, 0.8), 1) == 2.9
    assert written(candidate) == {
        "objects": [["tv", 0]], "segments": [{"label": "2.9 m", "from": [0.0, 0.0, 1.5], "to": [2.8, 0.0, 0.7]}],
        "frames": [12], "points": [{"label": "camera, frame 1 of 1", "at": [0.0, 0.0, 1.5]}]}


def test_camera_distance_change_draws_both_distances():
    # Six frames 0.5 m apart along x at z 0.5, the tv's west face at x = 5.8: 5.8 m from the first, 3.3 m from the
    # sixth, the only pair 5 frames apart.
    scene = scene_of({"tv": [box(6, 0, iid=7)]})
    frames = frames_of([looking_along_x([0.5 * k, 0, 0.5]) for k in range(6)], [[7]] * 6,
                       frame_ids=[10 * k for k in range(6)])
    [candidate] = run("camera_obj_dist_change", scene, frames)
    assert candidate.answer == 2.5
    assert written(candidate) == {
        "objects": [["tv", 0]],
        "segments": [{"label": "5.80 m", "from": [0.0, 0.0, 0.5], "to": [5.8, 0.0, 0.5]},
                     {"label": "3.30 m", "from": [2.5, 0.0, 0.5], "to": [5.8, 0.0, 0.5]}],
        "frames": [0, 50],
        "points": [{"label": "camera, frame 1 of 6", "at": [0.0, 0.0, 0.5]},
                   {"label": "camera, frame 6 of 6", "at": [2.5, 0.0, 0.5]}]}


def test_camera_displacement_segment_joins_the_two_camera_centres():
    scene = scene_of({"tv": [box(6, 0, iid=7)]})
    frames = frames_of([looking_along_x([0.5 * k, 0.1 * k, 1.5]) for k in range(6)], [[]] * 6,
                       frame_ids=[10 * k for k in range(6)])
    [candidate] = run("camera_displacement", scene, frames)
    assert candidate.answer == python_round(np.hypot(2.5, 0.5), 1) == 2.5
    assert written(candidate) == {
        "segments": [{"label": "2.5 m", "from": [0.0, 0.0, 1.5], "to": [2.5, 0.5, 1.5]}], "frames": [0, 50],
        "points": [{"label": "camera, frame 1 of 6", "at": [0.0, 0.0, 1.5]},
                   {"label": "camera, frame 6 of 6", "at": [2.5, 0.5, 1.5]}]}


def test_camera_movement_arrow_runs_from_the_start_centre_to_the_end_centre():
    scene = scene_of({"tv": [box(6, 0, iid=7)]})
    frames = frames_of([looking_along_x([0, 0, 1.5]), looking_along_x([2, 0, 1.5])], [[], []], frame_ids=[3, 9])
    [candidate] = run("camera_movement_direction", scene, frames)
    assert candidate.answer == "Forward"
    assert written(candidate) == {"arrows": [{"label": "Forward", "from": [0.0, 0.0, 1.5], "to": [2.0, 0.0, 1.5]}],
                                  "frames": [3, 9]}


def test_object_pair_position_names_both_boxes_the_frame_and_the_camera():
    scene = scene_of({"tv": [box(3, 0, iid=7)], "sofa": [box(6, 0, iid=8)]})
    frames = frames_of([looking_along_x([0, 0, 1.5])], [[7, 8]], frame_ids=[4])
    [candidate] = run("obj_obj_relative_pos_nf", scene, frames)
    a, b = ("tv", "sofa") if candidate.answer == "Near" else ("sofa", "tv")  # A, drawn at random, is asked first
    assert candidate.question.endswith(f"is {a} [Near/Far] compared to {b}?")
    assert written(candidate) == {"objects": [[a, 0], [b, 0]], "frames": [4],
                                  "points": [{"label": "camera, frame 1 of 1", "at": [0.0, 0.0, 1.5]}]}


# ------------------------------------------------------------------ records, files and exports


def test_generated_evidence_reads_back_and_stays_out_of_the_exports(tmp_path):
    scene = synthetic_scene(0)
    records = records_of(scene, [t.name for t in select_tasks("vsi")])
    assert {r.question_type for r in records if "evidence" not in r.extra} == {"room_size_estimation"}
    assert len({r.question_type for r in records}) == 9  # VSI's 10 but appearance order (no frames)
    write_qa_jsonl(tmp_path / "qa.jsonl", records)
    again = read_qa_jsonl(tmp_path / "qa.jsonl")
    assert [r.to_dict() for r in again] == [r.to_dict() for r in records]
    for record in again:
        if "evidence" in record.extra:
            raw = record.extra["evidence"]
            assert Evidence.from_dict(raw, f"id {record.id}").to_dict() == raw
    stripped = read_qa_jsonl(tmp_path / "qa.jsonl")
    for record in stripped:
        record.extra.pop("evidence", None)
    assert to_llava(again) == to_llava(stripped)
    write_parquet(tmp_path / "with.parquet", again, bench="vsi")
    write_parquet(tmp_path / "without.parquet", stripped, bench="vsi")
    assert pq.read_table(tmp_path / "with.parquet").equals(pq.read_table(tmp_path / "without.parquet"))
    assert pq.read_table(tmp_path / "with.parquet").column_names == [
        "id", "dataset", "scene_name", "video_path", "question_type", "question", "options", "ground_truth"]
