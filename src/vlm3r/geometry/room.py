"""Room measures from points: floor area (alpha shape) and a gravity-aligned bounding rectangle.

Floor area follows the reference's method (an alpha shape with alpha 5 of up to 10,000 x-y points of the
room's points, z up) computed directly: the Delaunay triangles of the x-y points whose circumradius is below
1/alpha (0.2 m for alpha 5) form the alpha complex, and its area is the sum of their areas (Delaunay triangles
never overlap). The reference hands the same triangles to the ``alphashape`` library and measures the polygon
with shapely, which also fills holes fully enclosed by kept triangles; room point clouds from walls, floor and
furniture have no such holes, so the two agree there. The point subsample is drawn from a seeded generator, so
the area is reproducible (the reference's is not; docs/design.md B13).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, Delaunay, QhullError


def alpha_shape_area(points_xy: np.ndarray, alpha: float = 5.0, max_points: int | None = 10_000,
                     seed: int = 0) -> float:
    """Area (m^2) of the alpha shape of 2D points: Delaunay triangles with circumradius < 1/alpha, summed.

    ``max_points`` subsamples (with replacement, like the reference) when there are more points; ``None`` keeps all.
    """
    points = np.asarray(points_xy, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"alpha_shape_area needs points of shape [N, 2], got {points.shape}")
    points = points[np.all(np.isfinite(points), axis=1)]
    if max_points is not None and len(points) > max_points:
        points = points[np.random.default_rng(seed).choice(len(points), max_points, replace=True)]
    points = np.unique(points, axis=0)
    if len(points) < 3:
        return 0.0
    try:
        triangles = points[Delaunay(points).simplices]  # [T, 3, 2]
    except QhullError:  # all points collinear
        return 0.0
    a = np.linalg.norm(triangles[:, 1] - triangles[:, 2], axis=1)
    b = np.linalg.norm(triangles[:, 0] - triangles[:, 2], axis=1)
    c = np.linalg.norm(triangles[:, 0] - triangles[:, 1], axis=1)
    edge1, edge2 = triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    area = 0.5 * np.abs(edge1[:, 0] * edge2[:, 1] - edge1[:, 1] * edge2[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        circumradius = a * b * c / (4.0 * area)
    keep = (area > 0) & (circumradius < 1.0 / alpha)
    return float(area[keep].sum())


def polygon_area(vertices_xy: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula), vertices in order."""
    v = np.asarray(vertices_xy, dtype=np.float64)
    x, y = v[:, 0], v[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def min_area_rectangle(points_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smallest-area enclosing rectangle of 2D points, by rotating calipers over the convex hull edges.

    Returns (centre [2], side lengths [2], axes [2, 2] with row k the unit direction of side k).
    """
    points = np.asarray(points_xy, dtype=np.float64)
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) == 0:
        raise ValueError("min_area_rectangle needs at least one finite point")
    try:
        hull = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # fewer than 3 points or all collinear: the rectangle degenerates
        hull = points
    if len(hull) < 2:
        return hull[0].copy(), np.zeros(2), np.eye(2)
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # [A, 2]
    normals = np.stack([-directions[:, 1], directions[:, 0]], axis=1)
    along = hull @ directions.T  # [H, A]
    across = hull @ normals.T
    areas = np.ptp(along, axis=0) * np.ptp(across, axis=0)
    best = int(np.argmin(areas))
    axes = np.stack([directions[best], normals[best]])
    lo = np.array([along[:, best].min(), across[:, best].min()])
    hi = np.array([along[:, best].max(), across[:, best].max()])
    center = ((lo + hi) / 2) @ axes
    return center, hi - lo, axes


def gravity_aligned_box(points_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounding box with a vertical third axis and the minimum-area footprint: (centre, lengths, axes rows).

    Used for the room centre; the reference takes the centre of Open3D's minimal (fully 3D) oriented box,
    which for a room (a vertical prism) has the same centre up to the rectangle's tie-breaking.
    """
    points = np.asarray(points_xyz, dtype=np.float64)
    points = points[np.all(np.isfinite(points), axis=1)]
    center_xy, size_xy, axes_xy = min_area_rectangle(points[:, :2])
    z_lo, z_hi = points[:, 2].min(), points[:, 2].max()
    axes = np.zeros((3, 3))
    axes[:2, :2] = axes_xy
    axes[2, 2] = 1.0
    center = np.array([center_xy[0], center_xy[1], (z_lo + z_hi) / 2])
    return center, np.array([size_xy[0], size_xy[1], z_hi - z_lo]), axes
