"""Grids over the floor and shortest paths on them.

- The 8-connected graph of a boolean grid's free cells, paths out of shortest-path predecessors, the largest
  connected region and a path through given cells in order (the synthetic walkthrough's grid: square cells from
  the origin, ``cell_grid``, ``cells_at``).
- The path planner of route planning (docs/route-planning.md): a navigation grid built from boxes alone
  (``build_nav_grid``: clearance-checked cells and segments), shortest collision-free routes between boxes
  (``plan_routes``) and their line-of-sight simplification (``simplify_path``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import ConvexHull, QhullError

from vlm3r.errors import Vlm3rError
from vlm3r.geometry.boxes import box_corners
from vlm3r.geometry.polygon import footprint, inside_depth, polygon_distance

NEIGHBOR_STEPS = ((1, 0), (0, 1), (1, 1), (1, -1))  # each undirected 8-neighbour edge once
SAMPLES_PER_CELL = 4  # segments are checked every quarter cell

RESOLUTION = 0.10  # m, navigation grid cell side
AGENT_RADIUS = 0.20  # m, the robot's footprint radius: paths keep at least this far from obstacles and the hull
OBSTACLE_HEIGHT = 1.0  # m above the floor: boxes whose bottom is lower block the floor
OBSTACLE_MIN_TOP = 0.05  # m above the floor: boxes not rising higher (rugs, mats) can be walked over
MAX_CELLS = 400_000  # a floor region needing more cells than this is a metadata problem, not a room
MAX_REACH = 1.0  # m, farthest a route end may lie from its object's footprint


class NoFloorError(Vlm3rError):
    """Boxes that leave no floor region to plan routes on; the message says why."""


def grid_graph(free: np.ndarray, step: float = 1.0) -> tuple[csr_matrix, np.ndarray]:
    """The 8-connected graph of the ``free`` cells [nx, ny] (edge weight = ``step`` x the distance in cells,
    each undirected edge stored once) and the free cells [n, 2] in row-major order (the graph's node order)."""
    nx, ny = free.shape
    index = np.full(free.shape, -1, dtype=np.int64)
    cells = np.argwhere(free)
    index[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    sources, targets, weights = [], [], []
    for dx, dy in NEIGHBOR_STEPS:
        src = (slice(0, nx - dx), slice(max(0, -dy), ny - max(0, dy)))
        dst = (slice(dx, nx), slice(max(0, dy), ny - max(0, -dy)))
        both = free[src] & free[dst]
        sources.append(index[src][both])
        targets.append(index[dst][both])
        weights.append(np.full(np.count_nonzero(both), step * np.hypot(dx, dy)))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))),
                       shape=(len(cells), len(cells)))
    return graph.tocsr(), cells


def path_from_predecessors(predecessors: np.ndarray, source: int, target: int) -> list[int]:
    """The nodes from ``source`` to ``target`` of a shortest-path tree (scipy's ``return_predecessors`` row for
    ``source``); empty when ``target`` is not reachable."""
    path = [target]
    while path[-1] != source:
        previous = int(predecessors[path[-1]])
        if previous < 0:
            return []
        path.append(previous)
    return path[::-1]


def largest_region(free: np.ndarray) -> np.ndarray:
    """The free cells [nx, ny] of the largest 4-connected region of ``free`` (none when no cell is free)."""
    labels, count = ndimage.label(free)
    if count == 0:
        return np.zeros(free.shape, dtype=bool)
    return labels == 1 + int(np.argmax(ndimage.sum(free, labels, index=range(1, count + 1))))


def path_through(free: np.ndarray, stops: list[int]) -> list[int]:
    """The shortest 8-connected path visiting the free cells ``stops`` in order: node indices into the free cells
    in row-major order (``grid_graph``'s nodes); the cells must be connected."""
    graph, _ = grid_graph(free)
    route = [stops[0]]
    for a, b in zip(stops[:-1], stops[1:]):
        _, predecessors = dijkstra(graph, directed=False, indices=a, return_predecessors=True)
        route += path_from_predecessors(predecessors, a, b)[1:]
    return route


def cell_grid(width: float, depth: float, cell: float) -> np.ndarray:
    """Centres [nx, ny, 2] of the square cells of side ``cell`` that tile [0, width] x [0, depth] from the origin."""
    xs = np.arange(cell / 2, width, cell)
    ys = np.arange(cell / 2, depth, cell)
    return np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)


def cells_at(points: np.ndarray, cell: float, shape: tuple[int, int]) -> np.ndarray:
    """The cell [N, 2] of a ``cell_grid`` of ``shape`` that holds each point [N, 2] (clipped to the grid)."""
    return np.clip(np.floor(points / cell).astype(int), 0, np.array(shape) - 1)


@dataclass(frozen=True, eq=False)
class NavGrid:
    """The floor as a grid: cell (i, j) is centred at ``origin + (i, j) * resolution`` (world x, y).

    A cell is free when its centre is at least ``radius + margin`` (exactly) from every obstacle footprint and
    from the edge of the floor region, with the margin (0.83 of a cell) chosen so that every point within half a
    cell diagonal plus half a sampling step of a free centre is at least ``radius`` from them: hence grid steps
    between free cells, and sampled segments whose samples all fall in free cells, are collision-free for a disc
    of that radius.
    """

    origin: np.ndarray
    resolution: float
    radius: float
    free: np.ndarray  # [nx, ny] bool
    footprints: np.ndarray  # [N, K, 2] CCW footprint of every box, in the order of the boxes given
    box_centers: np.ndarray  # [N, 2] footprint centres
    obstacles: np.ndarray  # [N] bool, boxes that block the floor

    @property
    def sample_step(self) -> float:
        return self.resolution / SAMPLES_PER_CELL

    def cell_centers(self, cells: np.ndarray) -> np.ndarray:
        """World x-y of cells [..., 2]."""
        return self.origin + np.asarray(cells) * self.resolution

    def is_free(self, points: np.ndarray) -> np.ndarray:
        """Whether the cell nearest each world point [..., 2] is free (False outside the grid)."""
        cells = np.floor((np.asarray(points) - self.origin) / self.resolution + 0.5).astype(np.int64)
        inside = np.all((cells >= 0) & (cells < self.free.shape), axis=-1)
        cells = np.where(inside[..., None], cells, 0)
        return inside & self.free[cells[..., 0], cells[..., 1]]

    def segments_free(self, start: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Whether each segment from ``start`` [2] to ``ends`` [J, 2] is collision-free, sampled every quarter cell."""
        n = np.maximum(np.ceil(np.linalg.norm(ends - start, axis=1) / self.sample_step).astype(np.int64) + 1, 2)
        offsets = np.cumsum(n) - n
        fraction = (np.arange(n.sum()) - np.repeat(offsets, n)) / np.repeat(n - 1, n)
        points = start + fraction[:, None] * (np.repeat(ends, n, axis=0) - start)
        return np.logical_and.reduceat(self.is_free(points), offsets)


def build_nav_grid(centers: np.ndarray, lengths: np.ndarray, axes: np.ndarray, resolution: float = RESOLUTION,
                   radius: float = AGENT_RADIUS, obstacle_height: float = OBSTACLE_HEIGHT) -> NavGrid:
    """The navigation grid of a scene from its boxes alone [N, ...] (no room polygon or mesh in the metadata).

    The floor height is the lowest box bottom; the floor region is the convex hull of every box's footprint;
    boxes whose bottom is less than ``obstacle_height`` above the floor (and whose top rises above a mat's) block.
    Raises NoFloorError without boxes, when their footprints span no area or when the region needs more than
    ``MAX_CELLS`` cells.
    """
    if len(centers) == 0:
        raise NoFloorError("scene has no object boxes")
    corners = box_corners(centers, lengths, axes)  # [N, 8, 3]
    bottoms, tops = corners[..., 2].min(axis=1), corners[..., 2].max(axis=1)
    floor = bottoms.min()
    obstacles = (bottoms - floor < obstacle_height) & (tops - floor > OBSTACLE_MIN_TOP)
    footprints = np.stack([footprint(c[:, :2]) for c in corners])
    all_xy = corners[..., :2].reshape(-1, 2)
    try:
        hull_polygon = all_xy[ConvexHull(all_xy).vertices]
    except (QhullError, ValueError) as exc:
        raise NoFloorError("the box footprints span no floor area") from exc
    lo, hi = hull_polygon.min(axis=0), hull_polygon.max(axis=0)
    shape = tuple(np.floor((hi - lo) / resolution).astype(np.int64) + 1)
    if shape[0] * shape[1] > MAX_CELLS:
        raise NoFloorError(f"floor region {np.round(hi - lo, 1).tolist()} m is too large for a {resolution} m grid")
    clearance = radius + resolution * (np.sqrt(0.5) + 0.125)  # + half a cell diagonal + half a sampling step
    cells = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), axis=-1)
    free = inside_depth(lo + cells.reshape(-1, 2) * resolution, hull_polygon).reshape(shape) >= clearance
    for k in np.flatnonzero(obstacles):  # only the cells near an obstacle can be too near it
        first = np.clip(np.ceil((footprints[k].min(axis=0) - clearance - lo) / resolution), 0, shape).astype(int)
        stop = np.clip(np.floor((footprints[k].max(axis=0) + clearance - lo) / resolution) + 1, 0, shape).astype(int)
        window = cells[first[0]:stop[0], first[1]:stop[1]]
        distance = polygon_distance(lo + window.reshape(-1, 2) * resolution, footprints[k:k + 1])
        free[first[0]:stop[0], first[1]:stop[1]] &= distance.reshape(window.shape[:2]) >= clearance
    return NavGrid(lo, resolution, radius, free, footprints, centers[:, :2], obstacles)


def simplify_path(grid: NavGrid, points: np.ndarray, batch: int = 32) -> np.ndarray:
    """Line-of-sight simplification: from each kept point, follow the path while the straight segment to it stays
    free, and keep the last point so reached (segments are tested ``batch`` at a time)."""
    keep, i, last = [0], 0, len(points) - 1
    while i < last:
        j = i + 1  # a single grid step between free cells is always clear (see NavGrid)
        while j < last:
            ends = points[j + 1:j + 1 + batch]
            visible = grid.segments_free(points[i], ends)
            if not visible.all():
                j += int(np.argmin(visible))
                break
            j += len(ends)
        keep.append(j)
        i = j
    return points[keep]


@dataclass(frozen=True, eq=False)
class Route:
    """A shortest collision-free route between two boxes (indices into the boxes the grid was built from)."""

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
