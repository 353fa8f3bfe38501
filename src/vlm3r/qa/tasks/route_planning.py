"""VSI-Bench route planning: fill in the turns of a route between two unique objects (docs/route-planning.md).

The reference never released its generator (docs/design.md, data §8), so vlm3r plans routes from the scene's boxes
alone: a 2D navigation grid of the floor (inside the convex hull of all box footprints, minus the footprints of
objects near the floor, inflated by an agent radius), shortest paths between unique objects with scipy's
Dijkstra on the 8-connected grid, line-of-sight simplification into collision-free straight segments, and
turns where the heading changes by more than 30 degrees (counter-clockwise seen from above, world z up, is
left). Turn points are named after their nearest unique object. The robot starts facing the first turn's object
(no blank before the first leg), or facing another object so that the first blank is the turn onto the first
leg (left, right or back), or, as in the seed paper's template for routes without a turn, halfway along the
first leg facing back to the start object ("Turn Back").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import ConvexHull, QhullError

from vlm3r.geometry import box_corners
from vlm3r.geometry.grid import NavGrid, grid_graph, path_from_predecessors, simplify_path
from vlm3r.geometry.polygon import footprint, inside_depth, polygon_distance
from vlm3r.qa import templates
from vlm3r.qa.geometry import SceneGeometry
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene

log = logging.getLogger(__name__)

RESOLUTION = 0.10  # m, grid cell side
AGENT_RADIUS = 0.20  # m, the robot's footprint radius: paths keep at least this far from obstacles and the hull
OBSTACLE_HEIGHT = 1.0  # m above the floor: boxes whose bottom is lower block the floor
OBSTACLE_MIN_TOP = 0.05  # m above the floor: boxes not rising higher (rugs, mats) can be walked over
MAX_CELLS = 400_000  # a floor region needing more cells than this is a metadata problem, not a room
MAX_REACH = 1.0  # m, farthest a route end may lie from its object's footprint
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


def build_nav_grid(geometry: SceneGeometry, resolution: float = RESOLUTION, radius: float = AGENT_RADIUS,
                   obstacle_height: float = OBSTACLE_HEIGHT) -> NavGrid:
    """The navigation grid of a scene from its boxes alone (no room polygon or mesh in the metadata).

    The floor height is the lowest box bottom; the floor region is the convex hull of every box's footprint;
    boxes whose bottom is less than ``obstacle_height`` above the floor (and whose top rises above a mat's) block.
    """
    if not geometry.boxes:
        raise SkipScene("scene has no object boxes")
    corners = box_corners(geometry.centers, geometry.lengths, geometry.axes)  # [N, 8, 3]
    bottoms, tops = corners[..., 2].min(axis=1), corners[..., 2].max(axis=1)
    floor = bottoms.min()
    obstacles = (bottoms - floor < obstacle_height) & (tops - floor > OBSTACLE_MIN_TOP)
    footprints = np.stack([footprint(c[:, :2]) for c in corners])
    all_xy = corners[..., :2].reshape(-1, 2)
    try:
        hull_polygon = all_xy[ConvexHull(all_xy).vertices]
    except (QhullError, ValueError) as exc:
        raise SkipScene("the box footprints span no floor area") from exc
    lo, hi = hull_polygon.min(axis=0), hull_polygon.max(axis=0)
    shape = tuple(np.floor((hi - lo) / resolution).astype(np.int64) + 1)
    if shape[0] * shape[1] > MAX_CELLS:
        raise SkipScene(f"floor region {np.round(hi - lo, 1).tolist()} m is too large for a {resolution} m grid")
    clearance = radius + resolution * (np.sqrt(0.5) + 0.125)  # + half a cell diagonal + half a sampling step
    cells = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), axis=-1)
    free = inside_depth(lo + cells.reshape(-1, 2) * resolution, hull_polygon).reshape(shape) >= clearance
    for k in np.flatnonzero(obstacles):  # only the cells near an obstacle can be too near it
        first = np.clip(np.ceil((footprints[k].min(axis=0) - clearance - lo) / resolution), 0, shape).astype(int)
        stop = np.clip(np.floor((footprints[k].max(axis=0) + clearance - lo) / resolution) + 1, 0, shape).astype(int)
        window = cells[first[0]:stop[0], first[1]:stop[1]]
        distance = polygon_distance(lo + window.reshape(-1, 2) * resolution, footprints[k:k + 1])
        free[first[0]:stop[0], first[1]:stop[1]] &= distance.reshape(window.shape[:2]) >= clearance
    return NavGrid(lo, resolution, radius, free, footprints, geometry.centers[:, :2], obstacles)


@dataclass(frozen=True, eq=False)
class Route:
    """A shortest collision-free route between two boxes (indices into SceneGeometry)."""

    start: int
    goal: int
    cells: np.ndarray  # [L, 2] grid cells of the shortest path
    waypoints: np.ndarray  # [M, 2] world x-y of its straight-line simplification


def plan_routes(grid: NavGrid, objects: list[int]) -> list[Route]:
    """Routes between every ordered pair of ``objects`` (box indices) that can be reached on the grid.

    Only the largest connected free region is used; each object's route end is the free cell of that region
    nearest to its footprint, within ``MAX_REACH`` (among cells at most a cell farther than the nearest, the one
    nearest the object's centre, so that a route leaves from the middle of a side rather than a corner).
    """
    graph, cells = grid_graph(grid.free, grid.resolution)
    if len(cells) == 0:
        return []
    _, labels = connected_components(graph, directed=False)
    region = np.flatnonzero(labels == np.argmax(np.bincount(labels)))
    centers = grid.cell_centers(cells[region])
    ends: dict[int, int] = {}
    for k in objects:
        near = np.flatnonzero(np.all((centers >= grid.footprints[k].min(axis=0) - MAX_REACH)
                                     & (centers <= grid.footprints[k].max(axis=0) + MAX_REACH), axis=1))
        if len(near) == 0:
            continue
        distance = polygon_distance(centers[near], grid.footprints[k:k + 1])[:, 0]
        if distance.min() > MAX_REACH:
            continue
        nearest = near[distance <= distance.min() + grid.resolution]
        ends[k] = int(region[nearest[np.argmin(np.linalg.norm(centers[nearest] - grid.box_centers[k], axis=1))]])
    reachable = [k for k in objects if k in ends]
    if len(reachable) < 2:
        return []
    _, predecessors = dijkstra(graph, directed=False, indices=[ends[k] for k in reachable], return_predecessors=True)
    routes = []
    for row, start in enumerate(reachable):
        for goal in reachable:
            node = ends[goal]
            if goal == start or node == ends[start] or predecessors[row, node] < 0:
                continue
            path_cells = cells[path_from_predecessors(predecessors[row], ends[start], node)]
            routes.append(Route(start, goal, path_cells, simplify_path(grid, grid.cell_centers(path_cells))))
    return routes


def signed_bend(d_in: np.ndarray, d_out: np.ndarray) -> np.ndarray:
    """Heading change in degrees from directions ``d_in`` to ``d_out`` [..., 2] (z up): positive = counter-clockwise."""
    d_in, d_out = np.asarray(d_in, dtype=np.float64), np.asarray(d_out, dtype=np.float64)
    cross = d_in[..., 0] * d_out[..., 1] - d_in[..., 1] * d_out[..., 0]
    return np.degrees(np.arctan2(cross, np.sum(d_in * d_out, axis=-1)))


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
    """The legs and turns of a simplified path; None when a turn is ambiguous or as sharp as a U-turn.

    Segments of at least ``MIN_LEG`` carry the headings; the shorter ones between two of them (a path wrapping
    round the corners of a thick obstacle) form one junction whose bend is the heading change from the long
    segment before to the long segment after. Short segments at the ends belong to the first or last leg.
    """
    steps = np.diff(waypoints, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    long = np.flatnonzero(lengths >= MIN_LEG)
    if len(long) == 0:
        return None
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    turn_points, turns, first_length = [], [], float(along[-1])
    for a, b, bend in zip(long[:-1], long[1:], signed_bend(steps[long[:-1]], steps[long[1:]])):
        action = classify_bend(bend)
        if action in (None, BACK):
            return None
        if action != AHEAD:
            if not turns:
                first_length = float(along[a + 1])
            turn_points.append(waypoints[a + 1:b + 1].mean(axis=0))
            turns.append(action)
    return Legs(np.reshape(turn_points, (-1, 2)), turns, steps[long[0]], first_length)


def point_along(waypoints: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The point at a path length ``distance`` along a polyline, and the direction of its segment there."""
    steps = np.diff(waypoints, axis=0)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(steps, axis=1))])
    k = int(np.clip(np.searchsorted(along, distance, side="right") - 1, 0, len(steps) - 1))
    fraction = (distance - along[k]) / max(along[k + 1] - along[k], 1e-12)
    return waypoints[k] + fraction * steps[k], steps[k]


@dataclass(frozen=True)
class RouteQuestion:
    """What one question says: where the robot stands and faces, the destination and the actions' objects."""

    start_object: str
    facing_object: str
    destination_object: str
    checkpoints: list[str]  # object ending each "Go forward" action, the destination last
    turns: list[str]  # the answer, one turn per blank
    mode: str  # "forward": facing the first turn's object; "reorient", "turn_back": a blank before the first leg

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
        return abs(float(signed_bend(self.centers[self.names.index(name)] - position, heading)))

    def facing_turns(self, position: np.ndarray, heading: np.ndarray) -> dict[str, str | None]:
        """Per object, the turn onto ``heading`` for a robot at ``position`` facing it (see ``classify_bend``).

        Decided by the footprint's centre; None when that is ambiguous or when a footprint vertex lies in another
        unambiguous direction, so that which way the robot faces is clear however one looks at the object.
        """
        points = np.concatenate([self.centers[:, None], self.footprints], axis=1) - position  # [U, 1 + K, 2]
        out = {}
        for name, bends in zip(self.names, signed_bend(points, heading).tolist()):
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
        out.append(RouteQuestion(start, anchors[0], goal, checkpoints, legs.turns, "forward"))
    facings = [(name, turn) for name, turn in at_start.items() if name not in named and turn in (LEFT, RIGHT, BACK)]
    if facings:
        facing, turn = facings[int(rng.integers(len(facings)))]
        out.append(RouteQuestion(start, facing, goal, checkpoints, [turn, *legs.turns], "reorient"))
    if legs.first_length >= 2 * MIN_LEG:
        position, heading = point_along(route.waypoints, legs.first_length / 2)
        middle = landmarks.nearest(position)
        if middle is not None and middle not in named and landmarks.facing_turns(position, heading)[start] == BACK:
            out.append(RouteQuestion(middle, start, goal, checkpoints, [BACK, *legs.turns], "turn_back"))
    return [q for q in out if q.num_actions <= MAX_ACTIONS]


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
    bench = "vsi"
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
        grid = build_nav_grid(geometry)
        landmarks = Landmarks(unique, grid.footprints[indices], grid.box_centers[indices])
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
                "route_mode": q.mode, "route_waypoints": np.round(route.waypoints, 3).tolist()}))
        log.debug("%s: %d route questions", ctx.scene.scene_name, len(out))
        return out
