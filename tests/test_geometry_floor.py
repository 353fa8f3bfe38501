"""The floor plane and grids against hand-worked values: headings, bends, rectangles, regions, paths."""

import numpy as np
import pytest

from vlm3r.geometry.grid import (NoFloorError, build_nav_grid, cell_grid, cells_at, grid_graph, largest_region,
                                 path_through)
from vlm3r.geometry.polygon import point_along, polyline_bends, rectangle_distance, signed_angle


def test_signed_angle_is_counter_clockwise_and_broadcasts():
    east = np.array([1.0, 0.0])
    directions = np.array([[0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    np.testing.assert_allclose(signed_angle(east, directions), [90, 180, -90, 45])
    np.testing.assert_allclose(np.abs(signed_angle(directions, east)), [90, 180, 90, 45])
    np.testing.assert_allclose(signed_angle(directions, east)[[0, 2, 3]], [-90, 90, -45])


def test_polyline_bends_join_short_segments():
    # East 2 m, two short diagonal steps round a corner, north 2 m: one bend of 90 degrees at their mean.
    points = np.array([[0, 0], [2, 0], [2.2, 0.2], [2.2, 2.2]], dtype=float)
    bends = polyline_bends(points, min_length=0.5)
    np.testing.assert_allclose(bends.heading, [2, 0])
    np.testing.assert_allclose(bends.points, [[2.1, 0.1]])
    np.testing.assert_allclose(bends.angles, [90])
    np.testing.assert_allclose(bends.along, [2.0])
    assert bends.length == pytest.approx(2 + np.hypot(0.2, 0.2) + 2)
    assert polyline_bends(points[:2] * 0.1, min_length=0.5) is None  # no segment long enough
    position, direction = point_along(points, 1.5)
    np.testing.assert_allclose(position, [1.5, 0])
    np.testing.assert_allclose(direction, [2, 0])


def test_rectangle_distance():
    yaw = np.pi / 2  # a 2 x 1 rectangle turned to lie along y
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    points = np.array([[0.0, 0.0], [0.0, 1.0], [0.5, 0.0], [1.5, 0.0], [0.0, 3.0], [3.5, 5.0]])
    np.testing.assert_allclose(rectangle_distance(points, np.zeros(2), np.array([2.0, 1.0]), axes),
                               [0, 0, 0, 1, 2, 5], atol=1e-12)


def test_largest_region_and_a_path_through_stops():
    free = np.zeros((6, 5), dtype=bool)
    free[0:2, 0:2] = True  # a region of 4 cells
    free[3:6, 0:5] = True
    free[3, 4] = False  # the largest region: 14 cells
    free[2, 4] = True  # touches it only diagonally, at (3, 3): a region of its own (regions are 4-connected)
    region = largest_region(free)
    assert region.sum() == 14 and not region[:3].any()
    assert not largest_region(np.zeros((3, 3), dtype=bool)).any()
    _, cells = grid_graph(region)
    stops = [0, 13, 3]  # cells (3, 0), (5, 4), (3, 3) in row-major order
    path = cells[path_through(region, stops)]
    assert path[0].tolist() == [3, 0] and path[-1].tolist() == [3, 3] and [5, 4] in path.tolist()
    assert np.all(np.abs(np.diff(path, axis=0)).max(axis=1) == 1)  # 8-connected steps
    assert len(path) == 1 + 4 + 2  # four steps (two diagonal) to (5, 4), then two back up


def test_cell_grid_and_lookup():
    centers = cell_grid(1.0, 0.5, 0.25)
    assert centers.shape == (4, 2, 2)
    np.testing.assert_allclose(centers[1, 1], [0.375, 0.375])
    assert cells_at(np.array([[0.3, 0.1], [5.0, -1.0]]), 0.25, (4, 2)).tolist() == [[1, 0], [3, 0]]


def test_nav_grid_needs_floor():
    with pytest.raises(NoFloorError, match="no object boxes"):
        build_nav_grid(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3, 3)))
    flat = np.eye(3)
    with pytest.raises(NoFloorError, match="no floor area"):  # a box without extent on the floor
        build_nav_grid(np.array([[0.0, 0.0, 0.5]]), np.array([[0.0, 0.0, 1.0]]), flat[None])
