"""Every task against hand-built scenes with known answers, and the reference bugs it fixes."""

import numpy as np
import pytest
from helpers import box, frames_of, looking_along_x, run, scene_of

from vlm3r.qa.choices import LetterBalancer, count_distractors, numeric_distractors
from vlm3r.qa.task import SkipScene
from vlm3r.qa.tasks.camera_movement_direction import movement_direction

# ------------------------------------------------------------------ shared machinery


def test_letter_balancer_uses_only_the_letters_a_question_has():
    balancer, rng = LetterBalancer(), np.random.default_rng(0)
    letters = [balancer.place(rng, ["left", "right"], "left")[1] for _ in range(10)]
    # Counting all four letters (the reference, B10) would leave C and D at the minimum forever and fall back to
    # shuffling; counting only A and B keeps the two letters exactly balanced.
    assert sorted(letters) == ["A"] * 5 + ["B"] * 5
    ordered, letter = balancer.place(rng, ["a", "b", "c", "d"], "c")
    assert ordered["ABCD".index(letter)] == "c" and sorted(ordered) == ["a", "b", "c", "d"]


def test_numeric_distractors():
    rng = np.random.default_rng(1)
    for answer in (0.5, 2.3, 7.9, 35.0):
        values = numeric_distractors(rng, answer)
        eps = np.ceil(answer * 0.2 * 10) / 10
        allv = [answer, *values]
        assert all(abs(a - b) >= eps - 1e-9 for i, a in enumerate(allv) for b in allv[i + 1:])
        assert all(answer * 0.25 - 0.05 <= v <= answer * 1.75 + 0.05 for v in values)
    sizes = numeric_distractors(rng, 120, lower=0.4, upper=1.8, decimals=0)
    assert all(isinstance(v, int) for v in sizes)
    # 0.1 m: the only values 0.1 apart in [0.025, 0.175] are 0.0 and 0.2, too few: the question is dropped.
    assert numeric_distractors(rng, 0.1) is None


def test_count_distractors():
    rng = np.random.default_rng(2)
    for answer in (1, 2, 5, 12):
        values = count_distractors(rng, answer)
        assert len(set(values)) == 3 and answer not in values and min(values) >= 1
        assert all(abs(v - answer) <= 5 for v in values)


# ------------------------------------------------------------------ VSI tasks


def test_counting():
    scene = scene_of({"chair": [box(0, 0), box(1, 0), box(2, 0)], "table": [box(0, 3)]})
    [c] = run("object_counting", scene)
    assert c.question == "How many chair(s) are in this room?" and c.answer == 3 and 3 in c.options
    assert len(set(c.options)) == 4


def test_abs_distance_exact_and_close_pairs_skipped():
    scene = scene_of({"sofa": [box(0, 0)], "tv": [box(2.4, 0)], "lamp": [box(0, 0.5)], "chair": [box(5, 5), box(6, 6)]})
    by_pair = {frozenset((c.extra["category, first object"], c.extra["category, second object"])): c.answer
               for c in run("object_abs_distance", scene)}
    assert by_pair[frozenset(("sofa", "tv"))] == 2.0  # 2.4 between centres minus two half sizes of 0.2
    assert frozenset(("sofa", "lamp")) not in by_pair  # 0.1 m apart: under 0.2 m
    assert by_pair[frozenset(("lamp", "tv"))] == round(float(np.hypot(2.0, 0.1)), 1)
    assert all("chair" not in pair for pair in by_pair)  # not unique


def test_size_and_room_size():
    scene = scene_of({"bed": [box(0, 0, size=(2.034, 1.6, 0.5))]}, room_size=23.46)
    [size] = run("object_size_estimation", scene)
    assert size.answer == 203 and size.extra == {"category": "bed"}
    [room] = run("room_size_estimation", scene)
    assert room.answer == 23.5
    with pytest.raises(SkipScene, match="room_size"):
        run("room_size_estimation", scene_of({"bed": [box(0, 0)]}, room_size=0.0))


def rel_distance_scene(room_size, gaps=(1.0, 1.25, 2.0, 3.0)):
    objects = {"sofa": [box(0, 0)]}
    for name, gap in zip(("tv", "lamp", "table", "bed"), gaps):
        objects[name] = [box(0.4 + gap, 0)]
    return scene_of(objects, room_size)


def test_rel_distance_answer_and_room_dependent_threshold():
    [c] = [c for c in run("object_rel_distance", rel_distance_scene(20.0)) if c.extra["category"] == "sofa"]
    assert c.answer == "tv" and sorted(c.options) == ["bed", "lamp", "table", "tv"]
    assert "which of these objects (bed, lamp, table, tv) is the closest to the sofa?" in c.question(sorted(c.options))
    # tv and lamp are 0.25 m apart: fine under the 0.15 m threshold of small rooms, ambiguous in a room over 40 m²
    # (the reference's 4-choice variant ignores the room size, B3).
    assert not [c for c in run("object_rel_distance", rel_distance_scene(45.0)) if c.extra["category"] == "sofa"]
    # The closest object may not touch the primary one.
    touching = rel_distance_scene(20.0, gaps=(0.1, 1.0, 2.0, 3.0))
    assert not [c for c in run("object_rel_distance", touching) if c.extra["category"] == "sofa"]


def test_rel_distance_uses_closest_instance_of_multi_instance_categories():
    scene = scene_of({"sofa": [box(0, 0)], "chair": [box(5.4, 0), box(0, 1.4)], "tv": [box(2.4, 0)],
                      "bed": [box(0, -3.4)]})
    [c] = [c for c in run("object_rel_distance_v3", scene) if c.extra["category"] == "sofa"
           and set(c.options) == {"chair", "tv"}]
    assert c.answer == "chair"  # the second chair is 1.0 m away, the tv 2.0 m


def direction_scene(querying_xy, size=(0.2, 0.2, 0.2)):
    # Standing by the bed at the origin, facing the door 3 m along +y.
    return scene_of({"bed": [box(0, 0, size=size)], "door": [box(0, 3, size=size)],
                     "lamp": [box(*querying_xy, size=size)]})


def direction_answer(task, querying_xy, **kw):
    found = [c.answer for c in run(task, direction_scene(querying_xy, **kw))
             if c.extra["category, positioning object"] == "bed" and c.extra["category, orienting object"] == "door"]
    return found[0] if found else None


@pytest.mark.parametrize("angle, hard, medium, easy", [
    (45, "front-left", "left", "left"),
    (120, "back-left", "left", "left"),
    (200, "back-right", "back", None),
    (300, "front-right", "right", "right"),
    (5, None, None, None),  # 5 degrees from straight ahead: too close to the 0/360 boundary
    (355, None, None, None),
    (85, None, "left", "left"),  # near the quadrant edge at 90: only the hard variant is ambiguous
    (140, "back-left", None, None),  # near 135: medium and easy drop it
])
def test_rel_direction_regions_and_symmetric_boundaries(angle, hard, medium, easy):
    # Angles counter-clockwise from the facing direction (+y); 2 m away.
    rad = np.radians(90 + angle)
    xy = (2 * np.cos(rad), 2 * np.sin(rad))
    assert direction_answer("object_rel_direction_hard", xy) == hard
    assert direction_answer("object_rel_direction_medium", xy) == medium
    assert direction_answer("object_rel_direction_easy", xy) == easy


def test_rel_direction_reference_boundary_bug_is_fixed():
    # 5 degrees left of straight ahead: the reference tests only the upper edge of each quadrant
    # (90 - 5 mod 90 = 85 >= 10) and would ask it; it is 5 degrees from the front-left/front-right edge.
    rad = np.radians(95)
    assert direction_answer("object_rel_direction_hard", (2 * np.cos(rad), 2 * np.sin(rad))) is None


def test_rel_direction_corner_rule_and_spacing():
    # A wide object straddling the straight-ahead line has many corners on the other side: dropped.
    rad = np.radians(90 + 20)
    assert direction_answer("object_rel_direction_hard", (2 * np.cos(rad), 2 * np.sin(rad)), size=(2.0, 0.2, 0.2)) \
        is None
    far = scene_of({"bed": [box(0, 0)], "door": [box(0, 3)], "lamp": [box(-6, 0)]})
    assert run("object_rel_direction_hard", far) == []  # lamp over 5 m from the door


def test_appearance_order():
    objects = {c: [box(i, 0, iid=i + 1)] for i, c in enumerate(["bed", "tv", "lamp", "door", "sofa"])}
    scene = scene_of(objects)
    # At 24 fps: bed 0 s, tv 2 s, lamp 4 s, door 6 s, sofa 6.5 s (too close to the door).
    frames = frames_of([np.eye(4)] * 5, [[1], [1, 2], [3], [4], [5]], frame_ids=[0, 48, 96, 144, 156])
    candidates = run("obj_appearance_order", scene, frames)
    # Any four with first appearances more than 1 s apart: never the door and the sofa together.
    assert sorted(c.answer for c in candidates) == ["bed, tv, lamp, door", "bed, tv, lamp, sofa"]
    c = candidates[0]
    assert len(set(c.options)) == 4 and sorted(c.extra["categories_involved"]) == ["bed", "door", "lamp", "tv"]
    with pytest.raises(SkipScene, match="no frame metadata"):
        run("obj_appearance_order", scene, None)


# ------------------------------------------------------------------ VSTI tasks


def test_camera_obj_abs_dist_uses_the_camera_center():
    scene = scene_of({"tv": [box(3, 0, 1.5, size=(1, 1, 1), iid=1)], "chair": [box(0, 3, iid=2), box(1, 3, iid=3)]})
    # A camera turned 90 degrees: the reference's -R^T t (B1) is (0, 0, -1.5)-ish, not the centre (0, 0, 1.5).
    pose = looking_along_x([0.0, 0.0, 1.5], yaw=0.3)
    frames = frames_of([pose, pose], [[1, 2, 3], [1]])
    candidates = run("camera_obj_abs_dist", scene, frames)
    assert [(c.answer, c.frame_indices) for c in candidates] == [(2.5, [0]), (2.5, [1])]
    assert "the tv in frame 1 of 2?" in candidates[0].question
    assert not candidates[0].lettered  # raw numbers, as VSTI-Bench stores them


def test_camera_obj_rel_dist_and_too_close_nearest_object():
    names = ["tv", "lamp", "table", "bed"]
    offsets = (1.0, 1.5, 2.0, 2.6)
    scene = scene_of({n: [box(0.2 + d, 0, 1.5, iid=i + 1)] for i, (n, d) in enumerate(zip(names, offsets))})
    frames = frames_of([looking_along_x([0, 0, 1.5])], [[1, 2, 3, 4]])
    [c] = run("camera_obj_rel_dist_v1", scene, frames)
    assert c.answer == "tv" and sorted(c.options) == sorted(names)
    assert "closest to the camera in frame 1 of 1?" in c.question(c.options)
    # The tv 0.4 m from the camera: the true nearest object is too close, so no question (B11) rather than one
    # whose answer ignores it.
    near = scene_of({n: [box(0.2 + d, 0, 1.5, iid=i + 1)] for i, (n, d) in enumerate(zip(names, (0.4, 1.5, 2.0, 2.6)))})
    assert run("camera_obj_rel_dist_v1", near, frames) == []
    assert run("camera_obj_rel_dist_v3", near, frames) == []


def test_obj_obj_relative_position():
    # Camera at the origin looking along +x: camera x (right) = world -y, camera y (down) = world -z.
    scene = scene_of({"sofa": [box(2, 1, 0.0, iid=1)], "tv": [box(2, -1, 0.0, iid=2)], "lamp": [box(4, 1, 0, iid=3)],
                      "clock": [box(2, 1, 2.0, iid=4)]})
    frames = frames_of([looking_along_x([0, 0, 0])], [[1, 2, 3, 4]])
    expected = {  # (axis task, A, B) -> answer, worked by hand
        ("lr", "sofa", "tv"): "Left", ("lr", "tv", "sofa"): "Right",
        ("nf", "sofa", "lamp"): "Near", ("nf", "lamp", "sofa"): "Far",
        ("ud", "clock", "sofa"): "Up", ("ud", "sofa", "clock"): "Down",
    }
    seen = set()
    for axis in ("nf", "lr", "ud"):
        for c in run(f"obj_obj_relative_pos_{axis}", scene, frames, seed=3):
            words = c.question.replace("?", "").split()
            a = words[words.index("is") + 1]
            b = words[-1] if axis == "nf" else words[words.index("to") + 1].rstrip(",")
            if (axis, a, b) in expected:
                assert c.answer == expected[(axis, a, b)], c.question
                seen.add(frozenset((axis, a, b)))
            assert c.frame_indices == [0]
    assert len(seen) == 3  # each axis asked about its hand-worked pair in one order or the other


def test_frame_numbering_counts_every_sampled_frame():
    scene = scene_of({"tv": [box(3, 0, 1.5, iid=1)]})
    pose = looking_along_x([0, 0, 1.5])
    # Frames 2 and 3 show nothing; the tv question in the 4th frame must say "frame 4 of 5" (B21).
    frames = frames_of([pose] * 5, [[1], [], [], [1], [1]], frame_ids=[0, 10, 20, 30, 40])
    descriptions = sorted(c.question.split(" in ")[-1] for c in run("camera_obj_abs_dist", scene, frames))
    assert descriptions == ["frame 1 of 5?", "frame 4 of 5?", "frame 5 of 5?"]


def test_camera_displacement():
    scene = scene_of({"tv": [box(3, 0, iid=1)]})
    # Seven frames 0.5 m apart along a line, each camera turned differently (B1 would change the answer).
    poses = [looking_along_x([0.5 * k, 0.3 * k, 1.5], yaw=0.4 * k) for k in range(7)]
    candidates = run("camera_displacement", scene, frames_of(poses, [[1]] * 7))
    step = np.hypot(0.5, 0.3)
    by_pair = {tuple(c.frame_indices): c.answer for c in candidates}
    assert by_pair == {(0, 5): round(5 * step, 1), (0, 6): round(6 * step, 1), (1, 6): round(5 * step, 1)}
    assert "between frame 1 and frame 6 of 7?" in next(c.question for c in candidates if c.frame_indices == [0, 5])
    with pytest.raises(SkipScene):
        run("camera_displacement", scene, frames_of(poses[:4], [[1]] * 4))


def test_camera_movement_direction():
    start = looking_along_x([0, 0, 1.5])
    assert movement_direction(start, looking_along_x([2, 0, 1.5]), 1.0) == "Forward"
    assert movement_direction(start, looking_along_x([-2, 0.5, 1.5]), 1.0) == "Backward"
    assert movement_direction(start, looking_along_x([0.5, -2, 1.5]), 1.0) == "Right"  # world -y is camera right
    assert movement_direction(start, looking_along_x([0.5, 2, 1.5]), 1.0) == "Left"
    assert movement_direction(start, looking_along_x([0.7, 0, 1.5]), 1.0) is None
    assert movement_direction(start, looking_along_x([0.7, 0, 1.5]), 0.5) == "Forward"
    assert movement_direction(start, looking_along_x([1.2, 1.2, 1.5]), 1.0) == "Forward"  # tie: forward wins
    turned = looking_along_x([0, 0, 1.5], yaw=np.pi / 2)  # facing +y: moving +x is to its right
    assert movement_direction(turned, looking_along_x([2, 0, 1.5]), 1.0) == "Right"
    scene = scene_of({"tv": [box(3, 0, iid=1)]})
    frames = frames_of([start, looking_along_x([2, 0, 1.5])], [[1], [1]])
    [c] = run("camera_movement_direction", scene, frames)
    assert c.answer == "Forward" and len(c.options) == 4
    text = c.question(["Left", "Forward", "Right", "Backward"])
    assert text.endswith("The options are Left, Forward, Right, and Backward.")
    [c3] = run("camera_movement_direction_v3", scene, frames)
    assert len(c3.options) == 2 and c3.question(c3.options).endswith(f"{c3.options[0]} and {c3.options[1]}.")


def test_camera_obj_dist_change():
    scene = scene_of({"tv": [box(4.2, 0, 1.5, iid=1)]})
    poses = [looking_along_x([0.3 * k, 0, 1.5]) for k in range(6)]
    candidates = run("camera_obj_dist_change", scene, frames_of(poses, [[1]] * 6))
    assert [(c.frame_indices, c.answer) for c in candidates] == [([0, 5], 1.5)]
    assert "change between frame 1 and frame 6 of 6?" in candidates[0].question
