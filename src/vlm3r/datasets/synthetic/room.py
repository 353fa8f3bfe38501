"""Room shells: a rectangle, optionally with one corner rectangle removed (an L), walls on its outline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm3r.geometry import boxes_intersect


@dataclass(frozen=True)
class Wall:
    start: np.ndarray  # [2]
    end: np.ndarray  # [2]
    inward_normal: np.ndarray  # [2], unit, pointing into the room

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.end - self.start))

    @property
    def direction(self) -> np.ndarray:
        return (self.end - self.start) / self.length


@dataclass(frozen=True)
class Room:
    """Floor [0, width] x [0, depth] minus ``notch`` (x0, y0, x1, y1) if any; floor at z 0, ceiling at ``height``."""

    width: float
    depth: float
    height: float
    notch: tuple[float, float, float, float] | None = None

    @property
    def area(self) -> float:
        area = self.width * self.depth
        if self.notch is not None:
            x0, y0, x1, y1 = self.notch
            area -= (x1 - x0) * (y1 - y0)
        return area

    def outline(self) -> np.ndarray:
        """Floor polygon vertices [V, 2], counter-clockwise."""
        w, d = self.width, self.depth
        if self.notch is None:
            return np.array([[0, 0], [w, 0], [w, d], [0, d]], dtype=np.float64)
        x0, y0, x1, y1 = self.notch
        corners = [(0, 0), (w, 0), (w, d), (0, d)]
        # The notch touches exactly one corner of the bounding rectangle; replace that corner by three vertices.
        corner = (x0 if x0 > 0 else x1, y0 if y0 > 0 else y1)  # the notch's inner (re-entrant) corner
        touching = (w if x0 > 0 else 0, d if y0 > 0 else 0)
        index = corners.index(touching)
        prev_corner, next_corner = corners[index - 1], corners[(index + 1) % 4]
        # Walk counter-clockwise: from the previous corner to the notch edge on its side, the re-entrant corner,
        # then the notch edge on the next corner's side.
        def towards(a):
            return (corner[0], a[1]) if a[1] == touching[1] else (a[0], corner[1])
        replacement = [towards(prev_corner), corner, towards(next_corner)]
        polygon = corners[:index] + replacement + corners[index + 1:]
        return np.array(polygon, dtype=np.float64)

    def walls(self) -> list[Wall]:
        outline = self.outline()
        walls = []
        for start, end in zip(outline, np.roll(outline, -1, axis=0)):
            direction = (end - start) / np.linalg.norm(end - start)
            walls.append(Wall(start.copy(), end.copy(), np.array([-direction[1], direction[0]])))
        return walls

    def contains(self, points_xy: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Whether points lie on the floor at least ``margin`` from every wall."""
        p = np.asarray(points_xy, dtype=np.float64)
        inside = ((p[..., 0] >= margin) & (p[..., 0] <= self.width - margin)
                  & (p[..., 1] >= margin) & (p[..., 1] <= self.depth - margin))
        if self.notch is not None:
            x0, y0, x1, y1 = self.notch
            in_notch = ((p[..., 0] > x0 - margin) & (p[..., 0] < x1 + margin)
                        & (p[..., 1] > y0 - margin) & (p[..., 1] < y1 + margin))
            inside &= ~in_notch
        return inside

    def footprint_fits(self, center_xy, size_xy, yaw: float, margin: float = 0.0) -> bool:
        """Whether a rotated rectangle (full sizes) lies on the floor, ``margin`` away from the walls."""
        corners = footprint_corners(center_xy, size_xy, yaw)
        if not np.all(self.contains(corners, margin)):
            return False
        if self.notch is None:
            return True
        x0, y0, x1, y1 = self.notch
        notch_center = [(x0 + x1) / 2, (y0 + y1) / 2, 0.0]
        notch_size = [x1 - x0 + 2 * margin, y1 - y0 + 2 * margin, 1.0]
        return not bool(boxes_intersect([*center_xy, 0.0], [*size_xy, 1.0], yaw_axes(yaw),
                                        notch_center, notch_size, np.eye(3), tol=-1e-9))


def yaw_axes(yaw: float) -> np.ndarray:
    """Box axes (rows) of an upright box turned by ``yaw`` radians about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def footprint_corners(center_xy, size_xy, yaw: float) -> np.ndarray:
    """The 4 floor corners [4, 2] of a rectangle of full sizes ``size_xy`` turned by ``yaw``."""
    axes = yaw_axes(yaw)[:2, :2]
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    return np.asarray(center_xy, dtype=np.float64) + (signs * (np.asarray(size_xy) / 2)) @ axes


def sample_room(rng: np.random.Generator, area: float, height: float, l_shape: bool) -> Room:
    """A room of floor area ``area``: aspect ratio 1-1.8; for an L, a corner notch of 20-35 % of the rectangle."""
    aspect = rng.uniform(1.0, 1.8)
    if not l_shape:
        width = np.sqrt(area * aspect)
        return Room(float(width), float(area / width), float(height))
    notch_fraction_x, notch_fraction_y = rng.uniform(0.4, 0.6), rng.uniform(0.45, 0.6)
    kept = 1.0 - notch_fraction_x * notch_fraction_y
    width = np.sqrt(area / kept * aspect)
    depth = area / kept / width
    nx, ny = notch_fraction_x * width, notch_fraction_y * depth
    corner = int(rng.integers(4))
    x0 = 0.0 if corner in (0, 3) else width - nx
    y0 = 0.0 if corner in (0, 1) else depth - ny
    return Room(float(width), float(depth), float(height), (float(x0), float(y0), float(x0 + nx), float(y0 + ny)))
