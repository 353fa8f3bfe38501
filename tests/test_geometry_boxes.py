"""Oriented-box geometry against hand-worked cases, brute-force sampling and invariances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from scipy.spatial.transform import Rotation

from vlm3r.geometry import (
    box_aabb,
    box_box_distance,
    box_corners,
    boxes_intersect,
    point_box_distance,
    points_in_box,
    segment_segment_distance,
)

I3 = np.eye(3)
UNIT = np.ones(3)


def rows(rotation: Rotation) -> np.ndarray:
    """Box axes as rows from a scipy rotation (whose matrix has the axes as columns)."""
    return rotation.as_matrix().T


def surface_samples(center, lengths, axes, spacing):
    """Points on the six faces of a box, on a grid no coarser than ``spacing``."""
    center, lengths, axes = map(np.asarray, (center, lengths, axes))
    pieces = []
    for k in range(3):
        u, v = [j for j in range(3) if j != k]
        gu = np.linspace(-lengths[u] / 2, lengths[u] / 2, max(2, int(np.ceil(lengths[u] / spacing)) + 1))
        gv = np.linspace(-lengths[v] / 2, lengths[v] / 2, max(2, int(np.ceil(lengths[v] / spacing)) + 1))
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        for sign in (-1, 1):
            local = np.zeros((uu.size, 3))
            local[:, u], local[:, v], local[:, k] = uu.ravel(), vv.ravel(), sign * lengths[k] / 2
            pieces.append(local @ axes + center)
    return np.concatenate(pieces)


def volume_samples(center, lengths, axes, n=9):
    ticks = [np.linspace(-length / 2, length / 2, n) for length in lengths]
    grid = np.stack(np.meshgrid(*ticks, indexing="ij"), -1).reshape(-1, 3)
    return grid @ np.asarray(axes) + np.asarray(center)


class TestHandWorked:
    def test_separated_along_x(self):
        assert box_box_distance([0, 0, 0], UNIT, I3, [3, 0, 0], UNIT, I3) == pytest.approx(2.0)

    def test_edge_to_edge_diagonal(self):
        # Closest features are the parallel vertical edges at (0.5, 0.5) and (1.5, 1.5).
        assert box_box_distance([0, 0, 0], UNIT, I3, [2, 2, 0], UNIT, I3) == pytest.approx(np.sqrt(2))

    def test_corner_to_corner(self):
        assert box_box_distance([0, 0, 0], UNIT, I3, [2, 2, 2], UNIT, I3) == pytest.approx(np.sqrt(3))

    def test_touching_faces_is_zero(self):
        assert box_box_distance([0, 0, 0], UNIT, I3, [1, 0, 0], UNIT, I3) == 0.0

    def test_overlapping_and_contained_are_zero(self):
        assert box_box_distance([0, 0, 0], UNIT, I3, [0.5, 0.2, 0.1], UNIT, I3) == 0.0
        tilted = rows(Rotation.random(random_state=1))
        assert box_box_distance([0, 0, 0], [4, 4, 4], I3, [0.3, 0, 0], [0.1, 0.2, 0.3], tilted) == 0.0

    def test_rotated_corner_facing_a_face(self):
        # B turned 45 degrees about z: its corner points at A, sqrt(0.5) from B's centre.
        b_axes = rows(Rotation.from_euler("z", 45, degrees=True))
        expected = 2 - 0.5 - np.sqrt(0.5)
        assert box_box_distance([0, 0, 0], UNIT, I3, [2, 0, 0], UNIT, b_axes) == pytest.approx(expected)

    def test_crossed_ridges_edge_edge(self):
        # A turned 45 degrees about x has a ridge along x at z = +sqrt(0.5); B (centre z = 2) turned about y has a
        # ridge along y at z = 2 - sqrt(0.5). The ridges cross: the closest pair is edge interior to edge interior.
        a_axes = rows(Rotation.from_euler("x", 45, degrees=True))
        b_axes = rows(Rotation.from_euler("y", 45, degrees=True))
        expected = 2 - 2 * np.sqrt(0.5)
        assert box_box_distance([0, 0, 0], UNIT, a_axes, [0, 0, 2], UNIT, b_axes) == pytest.approx(expected)

    def test_flat_box_zero_thickness(self):
        # A picture of zero thickness 1 m in front of a cube face.
        assert box_box_distance([0, 0, 0], UNIT, I3, [0, 0, 1.5], [0.4, 0.4, 0.0], I3) == pytest.approx(1.0)

    def test_point_box_distance_regions(self):
        points = [[0, 0, 0], [2, 0, 0], [2, 2, 0], [2, 2, 2], [0.5, 0.1, 0.2]]
        expected = [0.0, 1.5, np.sqrt(2 * 1.5**2), np.sqrt(3 * 1.5**2), 0.0]
        np.testing.assert_allclose(point_box_distance(np.array(points), [0, 0, 0], UNIT, I3), expected)

    def test_corners_and_aabb(self):
        corners = box_corners([1, 2, 3], [2, 4, 6], I3)
        np.testing.assert_allclose(corners.min(0), [0, 0, 0])
        np.testing.assert_allclose(corners.max(0), [2, 4, 6])
        axes = rows(Rotation.from_euler("z", 30, degrees=True))
        corners = box_corners([0, 0, 0], [2, 1, 1], axes)
        lo, hi = box_aabb([0, 0, 0], [2, 1, 1], axes)
        np.testing.assert_allclose(lo, corners.min(0))
        np.testing.assert_allclose(hi, corners.max(0))
        # Half-extent along x by hand: cos30 * 1 + sin30 * 0.5.
        assert hi[0] == pytest.approx(np.cos(np.radians(30)) + 0.25)

    def test_reference_example_box_bounds(self):
        # A chair of scene0251_00 in the released VSI-Bench ScanNet metadata: the stored min/max are the bounds of
        # the corners when the 9 floats are read row-major with rows as axes (docs/design.md, data §2.2).
        axes = np.array([-0.483, 0.876, -0.004, 0.156, 0.090, 0.984, 0.862, 0.474, -0.180]).reshape(3, 3)
        lo, hi = box_aabb([1.666, -0.112, -0.313], [0.616, 0.885, 0.535], axes)
        np.testing.assert_allclose(lo, [1.218, -0.549, -0.797], atol=2e-3)
        np.testing.assert_allclose(hi, [2.114, 0.324, 0.172], atol=2e-3)


class TestSegments:
    def test_hand_cases(self):
        def d(*points):
            return segment_segment_distance(*(np.array(p, dtype=float) for p in points))

        assert d([0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]) == pytest.approx(np.sqrt(2))
        assert d([0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]) == pytest.approx(1.0)
        assert d([0, 0, 0], [2, 0, 0], [1, -1, 1], [1, 1, 1]) == pytest.approx(1.0)
        assert d([0, 0, 0], [0, 0, 0], [1, -1, 1], [1, 1, 1]) == pytest.approx(np.sqrt(2))
        assert d([3, 0, 0], [3, 0, 0], [0, 0, 0], [0, 0, 0]) == pytest.approx(3.0)

    def test_against_dense_sampling(self):
        rng = np.random.default_rng(0)
        p0, p1, q0, q1 = rng.normal(size=(4, 200, 3))
        exact = segment_segment_distance(p0, p1, q0, q1)
        s = np.linspace(0, 1, 401)
        a = p0[:, None] + s[None, :, None] * (p1 - p0)[:, None]
        b = q0[:, None] + s[None, :, None] * (q1 - q0)[:, None]
        brute = np.array([cdist(a[k], b[k]).min() for k in range(len(a))])  # 401 x 401 points per pair
        assert np.all(exact <= brute + 1e-12)
        step = np.maximum(np.linalg.norm(p1 - p0, axis=1), np.linalg.norm(q1 - q0, axis=1)) / 400
        assert np.all(brute - exact <= step + 1e-9)


def random_boxes(rng, n, spread=2.0):
    centers = rng.uniform(-spread, spread, size=(n, 3))
    lengths = rng.uniform(0.05, 1.5, size=(n, 3))
    axes = np.stack([rows(r) for r in Rotation.random(n, random_state=rng.integers(1 << 31))])
    return centers, lengths, axes


def test_box_box_distance_matches_dense_surface_sampling():
    rng = np.random.default_rng(7)
    n = 60
    ca, la, ra = random_boxes(rng, n, spread=1.2)
    cb, lb, rb = random_boxes(rng, n, spread=1.2)
    exact = box_box_distance(ca, la, ra, cb, lb, rb)
    spacing = 0.02
    checked_separated = checked_intersecting = 0
    for i in range(n):
        sa = surface_samples(ca[i], la[i], ra[i], spacing)
        sb = surface_samples(cb[i], lb[i], rb[i], spacing)
        brute = cKDTree(sb).query(sa)[0].min()
        if exact[i] > 0:
            checked_separated += 1
            # Samples lie on the surfaces, so they can only be farther apart than the exact minimum, and a grid
            # of this spacing puts a sample within spacing / sqrt(2) of every surface point on each box.
            assert exact[i] <= brute + 1e-9
            assert brute - exact[i] <= spacing * np.sqrt(2) + 1e-9
        else:
            checked_intersecting += 1
            inside = points_in_box(volume_samples(ca[i], la[i], ra[i]), cb[i], lb[i], rb[i]).any() or \
                points_in_box(volume_samples(cb[i], lb[i], rb[i]), ca[i], la[i], ra[i]).any()
            assert inside or brute <= spacing * np.sqrt(2)
    assert checked_separated > 10 and checked_intersecting > 5


def test_intersection_test_against_volume_sampling():
    rng = np.random.default_rng(3)
    ca, la, ra = random_boxes(rng, 300, spread=1.0)
    cb, lb, rb = random_boxes(rng, 300, spread=1.0)
    hit = boxes_intersect(ca, la, ra, cb, lb, rb)
    for i in range(300):
        sampled = points_in_box(volume_samples(ca[i], la[i], ra[i], 7), cb[i], lb[i], rb[i]).any()
        if sampled:  # sampling can only miss an intersection, never invent one
            assert hit[i]
    assert 0 < hit.sum() < 300


def test_broadcasting_one_box_against_many():
    rng = np.random.default_rng(5)
    cb, lb, rb = random_boxes(rng, 50)
    many = box_box_distance([0, 0, 0], UNIT, I3, cb, lb, rb)
    one_by_one = [box_box_distance([0, 0, 0], UNIT, I3, cb[i], lb[i], rb[i]) for i in range(50)]
    np.testing.assert_allclose(many, one_by_one)
    assert many.shape == (50,)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(9)
    a, b = random_boxes(rng, 100), random_boxes(rng, 100)
    np.testing.assert_array_equal(box_box_distance(*a, *b), box_box_distance(*a, *b, chunk_size=7))


_box = st.tuples(
    st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    st.lists(st.floats(0.01, 2), min_size=3, max_size=3),
    st.integers(0, 2**31 - 1),
)


def _unpack(box):
    center, lengths, seed = box
    return np.array(center), np.array(lengths), rows(Rotation.random(random_state=seed))


@settings(max_examples=60, deadline=None)
@given(_box, _box, st.integers(0, 2**31 - 1), st.lists(st.floats(-5, 5), min_size=3, max_size=3))
def test_distance_properties(box_a, box_b, motion_seed, shift):
    a, b = _unpack(box_a), _unpack(box_b)
    d_ab = float(box_box_distance(*a, *b))
    d_ba = float(box_box_distance(*b, *a))
    assert d_ab >= 0
    assert d_ab == pytest.approx(d_ba, abs=1e-9)
    # Never more than the distance between the closest corner pair, never more than the centre distance.
    corner_gap = np.linalg.norm(box_corners(*a)[:, None] - box_corners(*b)[None], axis=-1).min()
    assert d_ab <= corner_gap + 1e-9
    assert d_ab <= np.linalg.norm(a[0] - b[0]) + 1e-9
    # A common rigid motion changes nothing.
    rot = Rotation.random(random_state=motion_seed).as_matrix()
    moved = [(rot @ c + np.array(shift), lengths, axes @ rot.T) for c, lengths, axes in (a, b)]
    assert float(box_box_distance(*moved[0], *moved[1])) == pytest.approx(d_ab, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(_box, st.lists(st.floats(-4, 4), min_size=3, max_size=3))
def test_point_distance_is_a_degenerate_box_distance(box, point):
    center, lengths, axes = _unpack(box)
    as_box = float(box_box_distance(center, lengths, axes, np.array(point), np.zeros(3), I3))
    assert float(point_box_distance(np.array(point), center, lengths, axes)) == pytest.approx(as_box, abs=1e-9)
