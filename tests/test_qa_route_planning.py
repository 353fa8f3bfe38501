"""Route planning questions: navigation grid, shortest collision-free routes, turn classification, question text."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.spatial import ConvexHull
from helpers import l_corridor, make_scene, standing_box, straight_room, synthetic_scene, walls, yaw_axes

from vlm3r.geometry import box_corners, point_box_distance
from vlm3r.geometry.grid import build_nav_grid, plan_routes
from vlm3r.geometry.polygon import footprint, polygon_distance, signed_angle
from vlm3r.qa import templates
from vlm3r.qa.generate import SceneInput, generate_scene
from vlm3r.qa.geometry import SceneGeometry
from vlm3r.qa.task import SceneContext, SkipScene
from vlm3r.qa.tasks.route_planning import (
    AHEAD,
    BACK,
    BLANK,
    LEFT,
    RIGHT,
    RoutePlanning,
    classify_bend,
    split_legs,
    turn_options,
)
from vlm3r.scene import OrientedBox, SceneMeta

PREFIX = templates.ROUTE_PLAN.split("{start_object}")[0]


def context(scene: SceneMeta, seed: int = 0) -> SceneContext:
    return SceneContext(scene, None, SceneGeometry(scene), np.random.default_rng(seed))


def parse(question: str) -> tuple[str, str, str, list[str]]:
    """(start, facing, destination, numbered actions) of a route question."""
    match = re.match(r"You are a robot beginning at the (.+?) facing the (.+?)\. You want to navigate to the (.+?)\. "
                     r"You will perform the following actions \(.*?\): (.*)$", question)
    assert match, question
    actions = re.split(r"\s*\d+\. ", match.group(4))[1:]
    return match.group(1), match.group(2), match.group(3), actions


def question_for(candidates, start: str, facing: str, destination: str):
    found = [c for c in candidates if parse(c.question)[:3] == (start, facing, destination)]
    assert len(found) == 1, [c.question for c in candidates]
    return found[0]


def asked(candidates, start: str, facing: str, destination: str, actions: str):
    """The route question from ``start`` facing ``facing`` to ``destination``, checked to read exactly
    ``actions`` and to offer the three turns."""
    found = question_for(candidates, start, facing, destination)
    assert found.question == templates.ROUTE_PLAN.format(start_object=start, facing_object=facing,
                                                         destination_object=destination, actions=actions)
    assert sorted(found.options) == sorted([LEFT, RIGHT, BACK])
    return found


# ---------------------------------------------------------------- hand-built scenes with known answers


def test_l_corridor_turns_left_at_the_tv():
    candidates = RoutePlanning().candidates(context(l_corridor()))
    # sofa <-> toilet, and sofa <-> tv (the tv is reached below it, at the inside corner); tv <-> toilet routes turn
    # at the tv itself, so the turn cannot be named after another object and they are dropped.
    assert len(candidates) == 4
    there = asked(candidates, "sofa", "tv", "toilet", "1. Go forward until the tv 2. [please fill in] 3. Go forward "
                  "until the toilet. You have reached the final destination.")
    assert there.answer == LEFT
    assert there.extra["route_mode"] == "forward"
    back = question_for(candidates, "toilet", "tv", "sofa")
    assert parse(back.question)[3] == [
        "Go forward until the tv", BLANK, "Go forward until the sofa. You have reached the final destination."]
    assert back.answer == RIGHT
    # From the sofa, facing the toilet (north-east, beyond the block), the corridor east is to the right.
    assert question_for(candidates, "sofa", "toilet", "tv").answer == RIGHT


def test_l_corridor_route_geometry():
    scene = l_corridor()
    geometry = SceneGeometry(scene)
    grid = build_nav_grid(geometry.centers, geometry.lengths, geometry.axes)
    sofa, toilet = geometry.categories.index("sofa"), geometry.categories.index("toilet")
    route = next(r for r in plan_routes(grid, [sofa, toilet]) if r.start == sofa)
    legs = split_legs(route.waypoints)
    assert legs.turns == [LEFT]
    # The turn is at the inside corner of the L (4.8, 1.2), offset into the corridor by the clearance.
    assert np.all(np.abs(legs.turn_points[0] - [5.1, 0.9]) < 0.15)
    assert abs(float(signed_angle(legs.heading, [1.0, 0.0]))) < 10  # first leg runs east
    # Ends: the free cells nearest each object, on the corridor side.
    assert route.waypoints[0][0] == pytest.approx(1.0, abs=0.1)
    assert route.waypoints[-1][1] == pytest.approx(5.0, abs=0.1)


def test_straight_route_is_asked_with_turn_back():
    candidates = RoutePlanning().candidates(context(straight_room()))
    assert len(candidates) == 2
    # No turn on the way: the robot starts halfway along the route (by the lamp) facing the sofa behind it.
    there = asked(candidates, "lamp", "sofa", "toilet",
                  "1. [please fill in] 2. Go forward until the toilet. You have reached the final destination.")
    assert there.answer == BACK
    assert there.extra["route_mode"] == "turn_back"
    assert len(there.extra["route_waypoints"]) == 2  # one straight segment
    assert question_for(candidates, "lamp", "toilet", "sofa").answer == BACK


def test_facing_a_side_object_asks_the_turn_onto_the_first_leg():
    # Without the lamp nothing lies halfway; a plant against the south wall right beside the sofa is to the
    # robot's right when it sets off east, so facing it the robot must turn left onto the route.
    scene = make_scene({"wall": walls(8, 2), "sofa": [standing_box(0.4, 1.0, 0.6, 0.8, 0.8)],
                        "toilet": [standing_box(7.6, 1.0, 0.6, 0.6, 0.7)],
                        "plant": [standing_box(1.1, 0.2, 0.3, 0.3, 0.9)]})
    candidates = RoutePlanning().candidates(context(scene))
    there = question_for(candidates, "sofa", "plant", "toilet")
    assert parse(there.question)[3] == [BLANK, "Go forward until the toilet. You have reached the final destination."]
    assert there.answer == LEFT
    assert there.extra["route_mode"] == "reorient"
    # Coming back from the toilet the plant is ahead and nothing lies halfway: no question that way.
    assert not [c for c in candidates if parse(c.question)[0] == "toilet" and parse(c.question)[2] == "sofa"]


# ---------------------------------------------------------------- collision freedom


def collision_scenes() -> list[SceneMeta]:
    rng = np.random.default_rng(3)
    clutter = {f"thing{k}": [standing_box(*rng.uniform(1, 7, 2), *rng.uniform(0.3, 1.2, 2), rng.uniform(0.4, 1.5),
                                 yaw=rng.uniform(0, np.pi))] for k in range(12)}
    clutter["wall"] = walls(8, 8)
    return [l_corridor(), straight_room(), make_scene(clutter, "clutter"), *(synthetic_scene(s) for s in range(3))]


@pytest.mark.parametrize("scene", collision_scenes(), ids=lambda s: s.scene_name)
def test_routes_are_collision_free(scene):
    geometry = SceneGeometry(scene)
    grid = build_nav_grid(geometry.centers, geometry.lengths, geometry.axes)
    unique = [geometry.categories.index(c) for c in scene.unique_categories()]
    routes = plan_routes(grid, unique)
    assert routes
    obstacles = np.flatnonzero(grid.obstacles)
    corners = box_corners(geometry.centers, geometry.lengths, geometry.axes)
    hull = ConvexHull(corners[..., :2].reshape(-1, 2))
    for route in routes:
        cells = route.cells
        assert np.all(grid.free[cells[:, 0], cells[:, 1]])
        assert np.all(np.abs(np.diff(cells, axis=0)).max(axis=1) == 1)  # 8-connected steps
        centers = grid.cell_centers(cells)
        assert np.allclose(route.waypoints[[0, -1]], centers[[0, -1]])
        assert all(np.any(np.all(np.isclose(centers, w), axis=1)) for w in route.waypoints)  # on the path
        # Dense samples along the straight segments keep the agent radius from every obstacle (exact distance
        # to the upright boxes at their mid-height) and from the edge of the floor region.
        t = np.linspace(0, 1, 200)[:, None]
        samples = np.concatenate([a + t * (b - a) for a, b in zip(route.waypoints[:-1], route.waypoints[1:])])
        points = np.concatenate([np.repeat(samples[:, None], len(obstacles), axis=1),
                                 np.broadcast_to(geometry.centers[obstacles, 2][None, :, None],
                                                 (len(samples), len(obstacles), 1))], axis=-1)
        distance = point_box_distance(points, geometry.centers[obstacles], geometry.lengths[obstacles],
                                      geometry.axes[obstacles])
        assert distance.min() >= grid.radius - 1e-9
        depth = -(samples @ hull.equations[:, :2].T + hull.equations[:, 2]).max(axis=1)
        assert depth.min() >= grid.radius - 1e-9


def test_high_and_flat_objects_do_not_block():
    scene = make_scene({"wall": walls(4, 4), "tv": [standing_box(2, 2, 1.0, 1.0, 0.5, bottom=1.2)],
                        "rug": [standing_box(2, 3, 1.0, 0.6, 0.01)], "table": [standing_box(1, 1, 0.8, 0.8, 0.75)]})
    geometry = SceneGeometry(scene)
    grid = build_nav_grid(geometry.centers, geometry.lengths, geometry.axes)
    blocking = dict(zip(geometry.categories, grid.obstacles))
    assert blocking == {"wall": True, "tv": False, "rug": False, "table": True}
    assert grid.is_free(np.array([[2.0, 2.0], [2.0, 3.0]])).all()
    assert not grid.is_free(np.array([[1.0, 1.0], [1.3, 1.0]])).any()


# ---------------------------------------------------------------- turn classification


def test_bend_sign_is_counter_clockwise_left():
    east = np.array([1.0, 0.0])
    assert signed_angle(east, [0.0, 1.0]) == pytest.approx(90)  # east to north: left, seen from above (z up)
    assert signed_angle(east, [0.0, -1.0]) == pytest.approx(-90)
    assert classify_bend(90) == LEFT and classify_bend(-90) == RIGHT


@pytest.mark.parametrize("angle, rule, generator", [
    (0, AHEAD, AHEAD), (15, AHEAD, AHEAD), (25, AHEAD, None), (-25, AHEAD, None), (30, AHEAD, None),
    (31, LEFT, None), (40, LEFT, LEFT), (-40, RIGHT, RIGHT), (120, LEFT, LEFT), (-120, RIGHT, RIGHT),
    (140, None, None), (170, BACK, BACK), (-180, BACK, BACK),
])
def test_classify_bend_threshold(angle, rule, generator):
    d = np.radians(angle)
    bend = float(signed_angle([1.0, 0.0], [np.cos(d), np.sin(d)]))
    assert classify_bend(bend, margin=0.0) == rule  # the plain rule: more than 30 degrees is a turn
    assert classify_bend(bend) == generator  # the generator drops bends within 10 degrees of the threshold


def polyline(*bends: float, leg: float = 2.0) -> np.ndarray:
    points, heading = [np.zeros(2)], 0.0
    for bend in (0.0, *bends):
        heading += np.radians(bend)
        points.append(points[-1] + leg * np.array([np.cos(heading), np.sin(heading)]))
    return np.array(points)


def test_split_legs_near_the_threshold():
    assert split_legs(polyline(10)).turns == []
    assert split_legs(polyline(25)) is None  # within the ambiguous band: the route is dropped
    legs = split_legs(polyline(40))
    assert legs.turns == [LEFT] and np.allclose(legs.turn_points[0], [2, 0])
    assert legs.first_length == pytest.approx(2.0)
    assert split_legs(polyline(-45)).turns == [RIGHT]
    assert split_legs(polyline(90, -90)).turns == [LEFT, RIGHT]
    assert split_legs(polyline(160)) is None  # a U-turn is neither left nor right


def test_short_segments_join_one_turn():
    # Wrapping round a thick obstacle: two 45-degree bends 0.3 m apart are one left turn of 90 degrees.
    points = np.array([[0, 0], [2, 0], [2.2, 0.2], [2.2, 2.2]], dtype=float)
    legs = split_legs(points)
    assert legs.turns == [LEFT]
    assert np.allclose(legs.turn_points[0], [2.1, 0.1])
    assert split_legs(np.array([[0, 0], [2, 0], [2.2, 0.05], [4.2, 0.0]])).turns == []


# ---------------------------------------------------------------- footprints of tilted (real-data) boxes


def test_footprint_of_tilted_box_contains_its_corners():
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    axes = q.T * np.sign(np.linalg.det(q))
    tilted = OrientedBox.from_geometry([1, 2, 0.5], [0.8, 0.5, 0.3], axes)
    polygon = footprint(tilted.corners[:, :2])
    assert polygon.shape == (8, 2)
    assert np.allclose(polygon_distance(tilted.corners[:, :2], polygon[None]), 0, atol=1e-9)
    assert polygon_distance(np.array([[10.0, 2.0]]), polygon[None])[0, 0] > 8
    flat = OrientedBox.from_geometry([0, 0, 1], [1.0, 0.0, 0.5], np.eye(3))  # no thickness: a segment
    segment = footprint(flat.corners[:, :2])
    assert polygon_distance(np.array([[0.2, 0.0], [0.0, 0.3], [1.5, 0.0]]), segment[None])[:, 0] == \
        pytest.approx([0.0, 0.3, 1.0], abs=1e-5)


def test_tilted_boxes_scene_gives_questions():
    rng = np.random.default_rng(0)
    objects = {"wall": walls(6, 6)}
    for k, (x, y) in enumerate([(1, 1), (5, 1), (5, 5), (1, 5), (3, 3)]):
        tilt = OrientedBox.from_geometry([x, y, 0.4], [0.6, 0.5, 0.8],
                                         yaw_axes(rng.uniform(0, np.pi)) @ _tilt(rng.uniform(-0.1, 0.1)))
        objects[f"object{k}"] = [tilt]
    candidates = RoutePlanning().candidates(context(make_scene(objects)))
    assert candidates
    for c in candidates:
        assert c.answer in c.options


def _tilt(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


# ---------------------------------------------------------------- options, determinism, skipping


def test_turn_options():
    rng = np.random.default_rng(0)
    two = turn_options([BACK, LEFT], rng)
    assert len(two) == 4 and len(set(two)) == 4 and two[0] == "Turn Back, Turn Left"
    assert all(len(o.split(", ")) == 2 and set(o.split(", ")) <= {LEFT, RIGHT, BACK} for o in two)
    one = turn_options([RIGHT], rng)
    assert one[0] == RIGHT and sorted(one) == sorted([LEFT, RIGHT, BACK])


def test_deterministic():
    scene = synthetic_scene(8)
    first = RoutePlanning().candidates(context(scene, seed=4))
    second = RoutePlanning().candidates(context(scene, seed=4))
    assert first
    assert [(c.question, c.answer, c.options, c.extra) for c in first] == \
        [(c.question, c.answer, c.options, c.extra) for c in second]


@pytest.mark.parametrize("objects", [
    {"chair": [standing_box(1, 1, 0.5, 0.5, 0.9), standing_box(3, 1, 0.5, 0.5, 0.9)],
     "table": [standing_box(2, 3, 1, 1, 0.7)]},
    {"chair": [standing_box(1, 1, 0.5, 0.5, 0.9), standing_box(3, 1, 0.5, 0.5, 0.9)]},
])
def test_fewer_than_two_unique_objects_skip_the_scene(objects):
    with pytest.raises(SkipScene, match="unique"):
        RoutePlanning().candidates(context(make_scene(objects)))


def test_unreachable_objects_give_no_questions():
    # A full-height wall splits the room: the sofa and the toilet can never be joined.
    scene = make_scene({"wall": [*walls(6, 3), standing_box(3, 1.5, 0.2, 3.1, 2.5)],
                        "sofa": [standing_box(0.5, 1.5, 0.6, 0.8, 0.8)],
                        "toilet": [standing_box(5.5, 1.5, 0.5, 0.6, 0.7)]})
    assert RoutePlanning().candidates(context(scene)) == []


# ---------------------------------------------------------------- synthetic scenes and the runner


def test_synthetic_scenes_give_valid_questions():
    total = 0
    for seed in range(5):
        scene = synthetic_scene(seed)
        unique = set(scene.unique_categories())
        for c in RoutePlanning().candidates(context(scene, seed)):
            total += 1
            assert c.question.startswith(PREFIX)
            assert c.answer in c.options and len(set(c.options)) == len(c.options)
            assert 2 <= len(c.options) <= 4
            start, facing, destination, actions = parse(c.question)
            assert {start, facing, destination} <= unique
            assert 2 <= len(actions) <= 5
            assert actions[-1].endswith(f"until the {destination}. You have reached the final destination.")
            assert actions.count(BLANK) == len(c.answer.split(", "))
            assert all(set(o.split(", ")) <= {LEFT, RIGHT, BACK} and o.count(",") == c.answer.count(",")
                       for o in c.options)
            checkpoints = [a.removeprefix("Go forward until the ").split(".")[0] for a in actions if a != BLANK]
            assert set(checkpoints) <= unique and len(set(checkpoints)) == len(checkpoints)
            assert start not in checkpoints
    assert total == 101  # the questions of these five seeded scenes, each checked above


def test_runner_writes_lettered_records():
    records, skips = generate_scene(SceneInput(l_corridor(), None), ["route_planning"], seed=0, per_scene=10)
    assert not skips and len(records) == 4
    for record in records:
        assert record.question_type == "route_planning"
        letters = [o.split(". ", 1)[0] for o in record.options]
        assert letters == ["A", "B", "C"]
        assert record.options[letters.index(record.mc_answer)] == f"{record.mc_answer}. {record.ground_truth}"
