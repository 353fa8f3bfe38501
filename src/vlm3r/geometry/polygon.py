"""Convex 2D polygons (counter-clockwise, world x-y seen from above): box footprints, distances to them, depth
inside them. Used by route planning's navigation grid."""

from __future__ import annotations

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
