"""Grids over the floor: the 8-connected graph of a boolean grid's free cells, paths out of shortest-path
predecessors, and the navigation grid route planning walks on (clearance-checked cells and segments). The
synthetic walkthrough and route planning share the graph and path code."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

NEIGHBOR_STEPS = ((1, 0), (0, 1), (1, 1), (1, -1))  # each undirected 8-neighbour edge once
SAMPLES_PER_CELL = 4  # segments are checked every quarter cell


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
    footprints: np.ndarray  # [N, K, 2] CCW footprint of every box, in SceneGeometry order
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
