"""VSI-Bench route planning: fill in the turns of a route between two unique objects (docs/route-planning.md).

The reference never released its generator (docs/design.md, data §8), so vlm3r plans routes from the scene's boxes
alone, with the path planner of ``vlm3r.geometry.grid``: a navigation grid of the floor, shortest collision-free
routes between unique objects, simplified into straight segments. This task reads a route as legs and turns
(a heading change of more than 30 degrees, counter-clockwise seen from above is left; ``signed_angle``), names
the turn points after their nearest unique object and writes the question: the robot starts facing the first
turn's object (no blank before the first leg), or facing another object so that the first blank is the turn onto
the first leg (left, right or back), or, as in the seed paper's template for routes without a turn, halfway along
the first leg facing back to the start object ("Turn Back").

Evidence: the path the robot walks (the route from where it starts, on the floor: the lowest box bottom, as the
grid's), the objects the question names, an arrow from the start towards the object it faces, and each turn of
the answer as a point where it is made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import product

import numpy as np

from vlm3r.geometry import box_corners
from vlm3r.geometry.grid import NoFloorError, Route, build_nav_grid, plan_routes
from vlm3r.geometry.polygon import point_along, polygon_distance, polyline_bends, signed_angle
from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene

log = logging.getLogger(__name__)

ANCHOR_MAX_DISTANCE = 1.5  # m, farthest a turn point (or the turn-back start) may lie from the object naming it
MIN_LEG = 0.5  # m, shortest segment that sets a heading (and shortest half of the first leg of a turn-back route)
TURN_THRESHOLD = 30.0  # degrees: a larger change of heading is a turn
AMBIGUOUS_BAND = 10.0  # degrees: routes with a bend this close to the threshold are dropped
MAX_SIDE_TURN = 135.0  # degrees: sharper is no longer a left or right turn
BACK_MIN = 150.0  # degrees: from here a heading change is "Turn Back" (135-150 is ambiguous)
MAX_ACTIONS = 5  # numbered actions per question, as in VSI-Bench's 2-5 movements
NUM_OPTIONS = 4

LEFT, RIGHT, BACK = "Turn Left", "Turn Right", "Turn Back"
AHEAD = "ahead"  # no turn: keep going forward
TURNS = (LEFT, RIGHT, BACK)
BLANK = "[please fill in]"


def classify_bend(bend: float, margin: float = AMBIGUOUS_BAND) -> str | None:
    """The action for a heading change of ``bend`` degrees (counter-clockwise positive, so left).

    AHEAD up to ``TURN_THRESHOLD``, a left or right turn above it and below ``MAX_SIDE_TURN``, BACK from
    ``BACK_MIN``; None (ambiguous) within ``margin`` of the threshold and between the side and back ranges.
    """
    size = abs(bend)
    if size <= TURN_THRESHOLD - margin:
        return AHEAD
    if size < TURN_THRESHOLD + margin:
        return None
    if size < MAX_SIDE_TURN:
        return LEFT if bend > 0 else RIGHT
    return BACK if size >= BACK_MIN else None


@dataclass(frozen=True, eq=False)
class Legs:
    """A simplified path read as straight legs joined by turns."""

    turn_points: np.ndarray  # [n, 2] where the robot turns (each named after its nearest unique object)
    turns: list[str]  # LEFT or RIGHT per turn point
    heading: np.ndarray  # [2] direction of the first leg
    first_length: float  # path length before the first turn (the whole path without one)


def split_legs(waypoints: np.ndarray) -> Legs | None:
    """The legs and turns of a simplified path (the bends between its segments of at least ``MIN_LEG``,
    ``polyline_bends``); None when a bend is ambiguous or as sharp as a U-turn. Bends that go ahead are no turns."""
    bends = polyline_bends(waypoints, MIN_LEG)
    if bends is None:
        return None
    turn_points, turns, first_length = [], [], bends.length
    for point, bend, along in zip(bends.points, bends.angles, bends.along):
        action = classify_bend(bend)
        if action in (None, BACK):
            return None
        if action != AHEAD:
            if not turns:
                first_length = float(along)
            turn_points.append(point)
            turns.append(action)
    return Legs(np.reshape(turn_points, (-1, 2)), turns, bends.heading, first_length)


@dataclass(frozen=True, eq=False)
class RouteQuestion:
    """What one question says: where the robot stands and faces, the destination and the actions' objects; and
    where on the route it starts and makes each turn (its evidence)."""

    start_object: str
    facing_object: str
    destination_object: str
    checkpoints: list[str]  # object ending each "Go forward" action, the destination last
    turns: list[str]  # the answer, one turn per blank
    mode: str  # "forward": facing the first turn's object; "reorient", "turn_back": a blank before the first leg
    turn_at: np.ndarray  # [len(turns), 2] world x-y where each turn is made (a turn before the first leg: the start)
    start_along: float = 0.0  # path length along the route where the robot starts (turn_back: half the first leg)

    @property
    def actions(self) -> str:
        """The numbered actions: an optional leading blank, then "Go forward until ..." and blanks alternately."""
        steps = [] if self.mode == "forward" else [BLANK]
        for k, checkpoint in enumerate(self.checkpoints):
            if k:
                steps.append(BLANK)
            steps.append(f"Go forward until the {checkpoint}")
        return " ".join(f"{i}. {step}" for i, step in enumerate(steps, 1)) + ". You have reached the final destination."

    @property
    def num_actions(self) -> int:
        return 2 * len(self.checkpoints) - (self.mode == "forward")


class Landmarks:
    """The unique objects: names, footprints [U, K, 2] and footprint centres [U, 2], to name points and facings."""

    def __init__(self, names: list[str], footprints: np.ndarray, centers: np.ndarray):
        self.names = names
        self.footprints = footprints
        self.centers = centers

    def nearest(self, point: np.ndarray) -> str | None:
        """The unique object whose footprint is nearest a point, if within ``ANCHOR_MAX_DISTANCE``."""
        distances = polygon_distance(point[None], self.footprints)[0]
        best = int(np.argmin(distances))
        return self.names[best] if distances[best] <= ANCHOR_MAX_DISTANCE else None

    def facing_bend(self, position: np.ndarray, heading: np.ndarray, name: str) -> float:
        """Angle in degrees between ``heading`` and the direction from ``position`` to an object's centre."""
        return abs(float(signed_angle(self.centers[self.names.index(name)] - position, heading)))

    def facing_turns(self, position: np.ndarray, heading: np.ndarray) -> dict[str, str | None]:
        """Per object, the turn onto ``heading`` for a robot at ``position`` facing it (see ``classify_bend``).

        Decided by the footprint's centre; None when that is ambiguous or when a footprint vertex lies in another
        unambiguous direction, so that which way the robot faces is clear however one looks at the object.
        """
        points = np.concatenate([self.centers[:, None], self.footprints], axis=1) - position  # [U, 1 + K, 2]
        out = {}
        for name, bends in zip(self.names, signed_angle(points, heading).tolist()):
            actions = [classify_bend(b) for b in bends]
            out[name] = actions[0] if all(a in (actions[0], None) for a in actions[1:]) else None
        return out


def describe_route(route: Route, names: dict[int, str], landmarks: Landmarks,
                   rng: np.random.Generator) -> list[RouteQuestion]:
    """The questions a route supports (at most one per mode), none when it is ambiguous or too long.

    - forward (the route has a turn): the robot starts at the start object facing the object that names the
      first turn point (the seed paper's first template), whose centre must lie within ``TURN_THRESHOLD`` of the
      first leg's heading (no turn needed);
    - reorient: it starts at the start object facing another unique object (drawn from those to its left, right
      or back relative to the first leg), so the first blank is the turn onto the first leg;
    - turn_back: it starts at the object nearest the middle of the first leg, facing the start object, so the
      first blank is "Turn Back" (the seed paper's second template).

    Every object named in a question must be a different one.
    """
    legs = split_legs(route.waypoints)
    if legs is None:
        return []
    anchors = [landmarks.nearest(point) for point in legs.turn_points]
    if None in anchors:
        return []
    start, goal = names[route.start], names[route.goal]
    checkpoints = [*anchors, goal]
    named = {start, *checkpoints}
    if len(named) != len(checkpoints) + 1:
        return []
    out = []
    at_start = landmarks.facing_turns(route.waypoints[0], legs.heading)
    if legs.turns and landmarks.facing_bend(route.waypoints[0], legs.heading, anchors[0]) <= TURN_THRESHOLD:
        out.append(RouteQuestion(start, anchors[0], goal, checkpoints, legs.turns, "forward", legs.turn_points))
    facings = [(name, turn) for name, turn in at_start.items() if name not in named and turn in (LEFT, RIGHT, BACK)]
    if facings:
        facing, turn = facings[int(rng.integers(len(facings)))]
        out.append(RouteQuestion(start, facing, goal, checkpoints, [turn, *legs.turns], "reorient",
                                 np.vstack([route.waypoints[0], legs.turn_points])))
    if legs.first_length >= 2 * MIN_LEG:
        position, heading = point_along(route.waypoints, legs.first_length / 2)
        middle = landmarks.nearest(position)
        if middle is not None and middle not in named and landmarks.facing_turns(position, heading)[start] == BACK:
            out.append(RouteQuestion(middle, start, goal, checkpoints, [BACK, *legs.turns], "turn_back",
                                     np.vstack([position, legs.turn_points]), legs.first_length / 2))
    return [q for q in out if q.num_actions <= MAX_ACTIONS]


def walked_path(waypoints: np.ndarray, start_along: float) -> np.ndarray:
    """The part [M', 2] of a route [M, 2] from path length ``start_along`` on: where the robot starts, then the
    later waypoints."""
    if start_along <= 0:
        return waypoints
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(waypoints, axis=0), axis=1))])
    return np.vstack([point_along(waypoints, start_along)[0], waypoints[along > start_along]])


def route_evidence(q: RouteQuestion, route: Route, landmarks: Landmarks, floor: float) -> Evidence:
    """The walked path, the named objects, the facing arrow and the turns of a question, at floor height."""
    def lift(xy):
        return np.append(xy, floor)

    path = [lift(p) for p in walked_path(route.waypoints, q.start_along)]
    named = dict.fromkeys([q.start_object, q.facing_object, *q.checkpoints])  # in order, each once
    facing = lift(landmarks.centers[landmarks.names.index(q.facing_object)])
    return Evidence(objects=[(name, 0) for name in named], path=path,
                    arrows=[(f"facing the {q.facing_object}", path[0], facing)],
                    points=[(turn, lift(at)) for turn, at in zip(q.turns, q.turn_at)])


def turn_options(answer: list[str], rng: np.random.Generator) -> list[str]:
    """The answer and up to ``NUM_OPTIONS - 1`` distinct other turn sequences of the same length, comma-joined."""
    correct = ", ".join(answer)
    others = [", ".join(seq) for seq in product(TURNS, repeat=len(answer)) if ", ".join(seq) != correct]
    chosen = rng.choice(len(others), size=min(NUM_OPTIONS - 1, len(others)), replace=False)
    return [correct, *(others[i] for i in chosen)]


class RoutePlanning(QATask):
    """Multiple choice: the turn sequence that completes a route between two unique objects."""

    name = "route_planning"
    question_type = "route_planning"
    bench = VSIBENCH.name
    kind = "mca"
    default_per_scene = 4

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        """One question per route between ordered pairs of unique objects (a random mode where several fit),
        without repeating a question text.

        Raises SkipScene when the scene has fewer than two unique objects or no usable floor region.
        """
        unique = ctx.scene.unique_categories()
        if len(unique) < 2:
            raise SkipScene(f"needs 2 unique categories, has {len(unique)}")
        geometry = ctx.geometry
        indices = [geometry.categories.index(c) for c in unique]
        names = dict(zip(indices, unique))
        try:
            grid = build_nav_grid(geometry.centers, geometry.lengths, geometry.axes)
        except NoFloorError as exc:
            raise SkipScene(str(exc)) from exc
        landmarks = Landmarks(unique, grid.footprints[indices], grid.box_centers[indices])
        floor = float(box_corners(geometry.centers, geometry.lengths, geometry.axes)[..., 2].min())  # as the grid's
        out, asked = [], set()
        for route in plan_routes(grid, indices):
            questions = describe_route(route, names, landmarks, ctx.rng)
            if not questions:
                continue
            q = questions[int(ctx.rng.integers(len(questions)))]
            text = templates.ROUTE_PLAN.format(start_object=q.start_object, facing_object=q.facing_object,
                                               destination_object=q.destination_object, actions=q.actions)
            if text in asked:  # two routes can read the same (a turn-back start and a route from that object)
                continue
            asked.add(text)
            options = turn_options(q.turns, ctx.rng)
            out.append(Candidate(text, options[0], options, extra={
                "route_mode": q.mode, "route_waypoints": np.round(route.waypoints, 3).tolist()},
                evidence=route_evidence(q, route, landmarks, floor)))
        log.debug("%s: %d route questions", ctx.scene.scene_name, len(out))
        return out
