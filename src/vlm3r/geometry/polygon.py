"""The floor plane (world x-y seen from above, world z up): convex polygons (box footprints, distances to them,
depth inside them), rectangles, signed heading changes (counter-clockwise positive, so left) and polylines read
as headings and bends. Route planning and relative direction measure their angles here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

FOOTPRINT_VERTICES = 8  # a box's 8 corners project to at most a hexagon: footprints are padded to 8 vertices
DEGENERATE_THICKNESS = 1e-6  # m: a footprint without area is thickened by this, so it stays a solid polygon


def footprint(corners_xy: np.ndarray) -> np.ndarray:
    """The counter-clockwise convex footprint [FOOTPRINT_VERTICES, 2] of a box's projected corners [8, 2].

    Padded by repeating its last vertex (a zero-length edge changes no distance); a footprint without area
    (collinear corners) is thickened by a micrometre so that every footprint is a solid polygon.
    """
    try:
        hull = corners_xy[ConvexHull(corners_xy).vertices]
    except (QhullError, ValueError):
        a = corners_xy[0]
        b = corners_xy[np.argmax(np.linalg.norm(corners_xy - a, axis=1))]
        length = np.linalg.norm(b - a)
        u = (b - a) / length * DEGENERATE_THICKNESS if length > 0 else np.array([DEGENERATE_THICKNESS, 0.0])
        n = np.array([-u[1], u[0]])
        hull = np.array([a - u - n, b + u - n, b + u + n, a - u + n])
    return np.vstack([hull, np.repeat(hull[-1:], FOOTPRINT_VERTICES - len(hull), axis=0)])


def polygon_distance(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Distance from 2D points [M, 2] to solid convex CCW polygons [P, K, 2] (0 inside): [M, P]."""
    edges = np.roll(polygons, -1, axis=1) - polygons  # [P, K, 2]
    rel = points[:, None, None, :] - polygons[None]  # [M, P, K, 2]
    t = np.einsum("mpkj,pkj->mpk", rel, edges) / np.maximum(np.einsum("pkj,pkj->pk", edges, edges), 1e-18)
    distance = np.linalg.norm(rel - np.clip(t, 0, 1)[..., None] * edges, axis=-1).min(axis=-1)
    inside = np.all(edges[..., 0] * rel[..., 1] - edges[..., 1] * rel[..., 0] >= 0, axis=-1)
    return np.where(inside, 0.0, distance)


def inside_depth(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Signed distance of 2D points to the boundary of a convex CCW polygon: positive inside, <= 0 outside."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    rel = points[:, None, :] - polygon[None]
    cross = edges[:, 0] * rel[..., 1] - edges[:, 1] * rel[..., 0]
    return (cross / np.linalg.norm(edges, axis=1)).min(axis=1)


def rectangle_distance(points: np.ndarray, center: np.ndarray, size: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Distance from 2D points [..., 2] to a solid rectangle (0 inside) of full side lengths ``size`` [2] whose
    row k of ``axes`` [2, 2] is the direction of side k."""
    local = (points - center) @ axes.T
    outside = np.maximum(np.abs(local) - size / 2, 0.0)
    return np.linalg.norm(outside, axis=-1)


def signed_angle(d_in: np.ndarray, d_out: np.ndarray) -> np.ndarray:
    """Heading change in degrees, [-180, 180], from directions ``d_in`` to ``d_out`` [..., 2]: positive is
    counter-clockwise seen from above (a left turn), the sign of the 2D cross product."""
    d_in, d_out = np.asarray(d_in, dtype=np.float64), np.asarray(d_out, dtype=np.float64)
    cross = d_in[..., 0] * d_out[..., 1] - d_in[..., 1] * d_out[..., 0]
    return np.degrees(np.arctan2(cross, np.sum(d_in * d_out, axis=-1)))


def point_along(points: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The point at a path length ``distance`` along a polyline [M, 2], and the direction of its segment there."""
    steps = np.diff(points, axis=0)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(steps, axis=1))])
    k = int(np.clip(np.searchsorted(along, distance, side="right") - 1, 0, len(steps) - 1))
    fraction = (distance - along[k]) / max(along[k + 1] - along[k], 1e-12)
    return points[k] + fraction * steps[k], steps[k]


@dataclass(frozen=True, eq=False)
class Bends:
    """A polyline read as its long segments joined by bends."""

    heading: np.ndarray  # [2] direction of the first long segment
    points: np.ndarray  # [n, 2] each bend: the mean of the vertices between two consecutive long segments
    angles: np.ndarray  # [n] heading change at each bend (``signed_angle``, degrees)
    along: np.ndarray  # [n] path length from the start to each bend's first vertex
    length: float  # path length of the whole polyline


def polyline_bends(points: np.ndarray, min_length: float) -> Bends | None:
    """The bends of a polyline [M, 2] between its segments of at least ``min_length``; None without such a segment.

    The shorter segments between two long ones (a path wrapping round the corners of a thick obstacle) form one
    bend whose angle is the heading change from the long segment before to the long segment after; short
    segments at the ends belong to the first or last long one.
    """
    steps = np.diff(points, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    long = np.flatnonzero(lengths >= min_length)
    if len(long) == 0:
        return None
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    bend_points = np.reshape([points[a + 1:b + 1].mean(axis=0) for a, b in zip(long[:-1], long[1:])], (-1, 2))
    return Bends(steps[long[0]], bend_points, signed_angle(steps[long[:-1]], steps[long[1:]]), along[long[:-1] + 1],
                 float(along[-1]))
