"""Oriented 3D boxes: corners, bounds, and exact distances (numpy, vectorised over leading dimensions).

A box is three arrays: ``centers`` [..., 3], ``lengths`` [..., 3] (FULL side lengths) and ``axes`` [..., 3, 3]
whose ROW k is the unit world direction of box axis k (the reference metadata's ``normalizedAxes`` reshaped
row-major). A world point p has box coordinates ``axes @ (p - center)``.

Distances are exact (the reference samples points every 5 cm instead, so its values can be a few centimetres
larger): the minimum distance between two disjoint convex polytopes is attained either at a vertex of one and
the solid other, or between two edges, so checking 8+8 vertex-to-box and 12x12 edge-to-edge distances is exact;
intersecting or touching boxes (separating-axis test) are at distance 0.
"""

from __future__ import annotations

import numpy as np

# Corner signs in binary order: corner i has sign bit k set -> +half along axis k.
_CORNER_SIGNS = np.array([[1 if (i >> k) & 1 else -1 for k in range(3)] for i in range(8)], dtype=np.float64)
# The 12 edges as pairs of corner indices (of ``box_corners``) that differ in exactly one sign bit.
BOX_EDGES = np.array([(i, i | (1 << k)) for k in range(3) for i in range(8) if not (i >> k) & 1], dtype=np.intp)

_DEFAULT_CHUNK = 4096


def box_corners(centers: np.ndarray, lengths: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """The 8 corners [..., 8, 3] of each box; corner i is offset by +-half length along axis k per bit k of i."""
    centers, lengths, axes = _as_boxes(centers, lengths, axes)
    offsets = (_CORNER_SIGNS * (0.5 * lengths)[..., None, :]) @ axes  # [..., 8, 3]
    return centers[..., None, :] + offsets


def box_aabb(centers: np.ndarray, lengths: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (min [..., 3], max [..., 3]) of each oriented box."""
    centers, lengths, axes = _as_boxes(centers, lengths, axes)
    half_extent = np.einsum("...kj,...k->...j", np.abs(axes), 0.5 * lengths)
    return centers - half_extent, centers + half_extent


def box_volume(lengths: np.ndarray) -> np.ndarray:
    """Volume of each box (product of its side lengths)."""
    return np.prod(np.asarray(lengths, dtype=np.float64), axis=-1)


def to_box_frame(points: np.ndarray, centers: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Coordinates of ``points`` [..., 3] in the frame of boxes broadcast against them."""
    points = np.asarray(points, dtype=np.float64)
    return np.einsum("...ij,...j->...i", np.asarray(axes, dtype=np.float64), points - centers)


def point_box_distance(points: np.ndarray, centers: np.ndarray, lengths: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Euclidean distance from points to solid boxes (0 inside), broadcasting points [..., 3] against boxes."""
    local = to_box_frame(points, centers, axes)
    outside = np.maximum(np.abs(local) - 0.5 * np.asarray(lengths, dtype=np.float64), 0.0)
    return np.linalg.norm(outside, axis=-1)


def closest_point_in_box(points: np.ndarray, centers: np.ndarray, lengths: np.ndarray, axes: np.ndarray
                         ) -> np.ndarray:
    """The point of a solid box nearest each point (the point itself inside), broadcasting points [..., 3]
    against boxes: the point clamped in the box frame, at ``point_box_distance`` from it."""
    half = 0.5 * np.asarray(lengths, dtype=np.float64)
    local = np.clip(to_box_frame(points, centers, axes), -half, half)
    return centers + np.einsum("...k,...kj->...j", local, np.asarray(axes, dtype=np.float64))


def points_in_box(points: np.ndarray, centers: np.ndarray, lengths: np.ndarray, axes: np.ndarray,
                  tol: float = 1e-9) -> np.ndarray:
    """Whether each point lies in the (closed) box, with a small tolerance in metres."""
    local = to_box_frame(points, centers, axes)
    return np.all(np.abs(local) <= 0.5 * np.asarray(lengths, dtype=np.float64) + tol, axis=-1)


def boxes_intersect(centers_a, lengths_a, axes_a, centers_b, lengths_b, axes_b, tol: float = 1e-9) -> np.ndarray:
    """Separating-axis test for pairs of oriented boxes (touching counts as intersecting), broadcast over pairs."""
    ca, la, ra = _as_boxes(centers_a, lengths_a, axes_a)
    cb, lb, rb = _as_boxes(centers_b, lengths_b, axes_b)
    ra, rb = np.broadcast_arrays(ra, rb)
    # Candidate axes: 3 + 3 face normals and 9 edge-edge cross products, all [..., 15, 3].
    cross = np.cross(ra[..., :, None, :], rb[..., None, :, :]).reshape(*ra.shape[:-2], 9, 3)
    candidates = np.concatenate([ra, rb, cross], axis=-2)
    norms = np.linalg.norm(candidates, axis=-1)
    usable = norms > 1e-9  # near-parallel edge pairs give no axis; the face normals cover that case
    candidates = candidates / np.where(usable, norms, 1.0)[..., None]
    radius_a = np.abs(candidates @ np.swapaxes(ra, -1, -2)) @ (0.5 * la)[..., None]
    radius_b = np.abs(candidates @ np.swapaxes(rb, -1, -2)) @ (0.5 * lb)[..., None]
    gap = np.abs(np.einsum("...kj,...j->...k", candidates, cb - ca)) - radius_a[..., 0] - radius_b[..., 0]
    separated = usable & (gap > tol)
    return ~np.any(separated, axis=-1)


def segment_segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Minimum distance between segments [p0, p1] and [q0, q1] (arrays [..., 3]); handles parallel and
    zero-length segments (closest-point parameters clamped to [0, 1], as in Ericson's Real-Time Collision
    Detection, section 5.1.9)."""
    closest_p, closest_q = _segment_segment_closest(p0, p1, q0, q1)
    return np.linalg.norm(closest_p - closest_q, axis=-1)


def _segment_segment_closest(p0, p1, q0, q1) -> tuple[np.ndarray, np.ndarray]:
    """The closest points (on [p0, p1], on [q0, q1]) of ``segment_segment_distance``."""
    d1, d2 = p1 - p0, q1 - q0
    r = p0 - q0
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.einsum("...i,...i->...", d2, d2)
    b = np.einsum("...i,...i->...", d1, d2)
    c = np.einsum("...i,...i->...", d1, r)
    f = np.einsum("...i,...i->...", d2, r)
    tiny = 1e-12
    a_ok, e_ok = a > tiny, e > tiny
    safe_a, safe_e = np.where(a_ok, a, 1.0), np.where(e_ok, e, 1.0)
    denom = a * e - b * b
    skew = denom > tiny * np.maximum(a * e, tiny)
    # General case: closest parameters of the infinite lines (s = 0 for parallel ones), then clamp t and
    # recompute s for the clamped t.
    s = np.where(skew, np.clip((b * f - c * e) / np.where(skew, denom, 1.0), 0.0, 1.0), 0.0)
    t = (b * s + f) / safe_e
    s = np.where(t < 0.0, np.clip(-c / safe_a, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / safe_a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    # Zero-length segments are points: project the other end onto the remaining segment.
    s = np.where(a_ok, np.where(e_ok, s, np.clip(-c / safe_a, 0.0, 1.0)), 0.0)
    t = np.where(e_ok, np.where(a_ok, t, np.clip(f / safe_e, 0.0, 1.0)), 0.0)
    return p0 + s[..., None] * d1, q0 + t[..., None] * d2


def box_box_distance(centers_a, lengths_a, axes_a, centers_b, lengths_b, axes_b,
                     chunk_size: int = _DEFAULT_CHUNK) -> np.ndarray:
    """Exact minimum Euclidean distance between pairs of solid oriented boxes (0 when they intersect or touch).

    Inputs broadcast against each other over leading dimensions; work proceeds in chunks of ``chunk_size``
    pairs to bound memory (the edge-edge step holds 144 segment pairs per box pair).
    """
    ca, la, ra = _as_boxes(centers_a, lengths_a, axes_a)
    cb, lb, rb = _as_boxes(centers_b, lengths_b, axes_b)
    batch = np.broadcast_shapes(ca.shape[:-1], la.shape[:-1], ra.shape[:-2], cb.shape[:-1], lb.shape[:-1],
                                rb.shape[:-2])
    flat = [np.broadcast_to(x, batch + x.shape[-k:]).reshape(-1, *x.shape[-k:])
            for x, k in ((ca, 1), (la, 1), (ra, 2), (cb, 1), (lb, 1), (rb, 2))]
    n = flat[0].shape[0]
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, chunk_size):
        part = [x[start:start + chunk_size] for x in flat]
        out[start:start + chunk_size] = _box_box_distance_flat(*part)
    return out.reshape(batch)


def _box_box_distance_flat(ca, la, ra, cb, lb, rb) -> np.ndarray:
    corners_a = box_corners(ca, la, ra)  # [n, 8, 3]
    corners_b = box_corners(cb, lb, rb)
    vertex_a_to_b = point_box_distance(corners_a, cb[:, None], lb[:, None], rb[:, None]).min(axis=1)
    vertex_b_to_a = point_box_distance(corners_b, ca[:, None], la[:, None], ra[:, None]).min(axis=1)
    edges_a = corners_a[:, BOX_EDGES]  # [n, 12, 2, 3]
    edges_b = corners_b[:, BOX_EDGES]
    edge_edge = segment_segment_distance(
        edges_a[:, :, None, 0], edges_a[:, :, None, 1], edges_b[:, None, :, 0], edges_b[:, None, :, 1]
    ).reshape(len(ca), -1).min(axis=1)
    distance = np.minimum(np.minimum(vertex_a_to_b, vertex_b_to_a), edge_edge)
    return np.where(boxes_intersect(ca, la, ra, cb, lb, rb), 0.0, distance)


def box_box_closest_points(center_a, lengths_a, axes_a, center_b, lengths_b, axes_b
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Closest points (p on box A, q on box B), world [3] each, of ONE pair of solid oriented boxes, so that
    ``|p - q|`` is their ``box_box_distance`` (to rounding): what a distance is drawn as.

    Disjoint boxes: the same candidates as the distance, each as a pair of points: every vertex of one box with
    its closest point of the other (clamped in that box's frame), every edge pair's closest points; the nearest
    pair wins (the first in that order on a tie). Intersecting or touching boxes (the separating-axis test of
    ``boxes_intersect``): one common point, returned as both p and q: the midpoint of the part of the first edge
    of A, else of B, that lies in the other box (the intersection of two convex polytopes has a vertex, and every
    such vertex is on an edge of one of them, so some edge reaches into the other box).
    """
    ca, la, ra = _as_boxes(center_a, lengths_a, axes_a)
    cb, lb, rb = _as_boxes(center_b, lengths_b, axes_b)
    if ca.shape != (3,) or cb.shape != (3,) or la.shape != (3,) or lb.shape != (3,):
        raise ValueError(f"box_box_closest_points takes one box each; got centres {ca.shape} and {cb.shape}")
    corners_a, corners_b = box_corners(ca, la, ra), box_corners(cb, lb, rb)
    edges_a, edges_b = corners_a[BOX_EDGES], corners_b[BOX_EDGES]  # [12, 2, 3]
    if boxes_intersect(ca, la, ra, cb, lb, rb):
        for edges, center, lengths, axes in ((edges_a, cb, lb, rb), (edges_b, ca, la, ra)):
            inside = _clip_segments(edges, center, lengths, axes)
            if inside is not None:
                return inside, inside.copy()
        # Touching within the test's tolerance without an edge reaching in: the nearest pair's midpoint.
        p, q = _nearest_pair(corners_a, corners_b, edges_a, edges_b, ca, la, ra, cb, lb, rb)
        middle = 0.5 * (p + q)
        return middle, middle.copy()
    return _nearest_pair(corners_a, corners_b, edges_a, edges_b, ca, la, ra, cb, lb, rb)




def _nearest_pair(corners_a, corners_b, edges_a, edges_b, ca, la, ra, cb, lb, rb) -> tuple[np.ndarray, np.ndarray]:
    """The nearest of the candidate point pairs of two disjoint boxes (see ``box_box_closest_points``)."""
    edge_p, edge_q = _segment_segment_closest(edges_a[:, None, 0], edges_a[:, None, 1], edges_b[None, :, 0],
                                              edges_b[None, :, 1])
    p = np.concatenate([corners_a, closest_point_in_box(corners_b, ca, la, ra), edge_p.reshape(-1, 3)])
    q = np.concatenate([closest_point_in_box(corners_a, cb, lb, rb), corners_b, edge_q.reshape(-1, 3)])
    best = int(np.argmin(np.linalg.norm(p - q, axis=1)))
    return p[best], q[best]


def _clip_segments(edges, center, lengths, axes, tol: float = 1e-9) -> np.ndarray | None:
    """The midpoint of the part inside a box (grown by ``tol``) of the first of ``edges`` [E, 2, 3] reaching into
    it (slab clipping in the box frame), or None when none does."""
    start, end = to_box_frame(edges[:, 0], center, axes), to_box_frame(edges[:, 1], center, axes)
    step, half = end - start, 0.5 * lengths + tol
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (-half - start) / step, (half - start) / step
    moving = np.abs(step) > 1e-15
    low = np.where(moving, np.minimum(t0, t1), np.where(np.abs(start) <= half, -np.inf, np.inf))
    high = np.where(moving, np.maximum(t0, t1), np.where(np.abs(start) <= half, np.inf, -np.inf))
    enter, leave = np.maximum(low.max(axis=1), 0.0), np.minimum(high.min(axis=1), 1.0)
    reaching = np.flatnonzero(enter <= leave)
    if not len(reaching):
        return None
    k = reaching[0]
    return edges[k, 0] + 0.5 * (enter[k] + leave[k]) * (edges[k, 1] - edges[k, 0])


def _as_boxes(centers, lengths, axes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centers = np.asarray(centers, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    axes = np.asarray(axes, dtype=np.float64)
    if centers.shape[-1:] != (3,) or lengths.shape[-1:] != (3,) or axes.shape[-2:] != (3, 3):
        raise ValueError(
            f"boxes need centers [...,3], lengths [...,3] and axes [...,3,3]; got {centers.shape}, "
            f"{lengths.shape}, {axes.shape}"
        )
    return centers, lengths, axes
