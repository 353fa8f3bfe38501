"""Camera transforms and room measures against hand-worked values."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vlm3r.geometry import (
    alpha_shape_area,
    camera_center,
    camera_to_world,
    gravity_aligned_box,
    intrinsic_matrix,
    invert_pose,
    min_area_rectangle,
    polygon_area,
    project,
    unproject,
    viewing_direction,
    world_to_camera,
)


def looking_along_world_x(position):
    """Camera-to-world pose of an upright camera at ``position`` looking along world +x (OpenCV axes:
    camera x (right) = world -y, camera y (down) = world -z, camera z (forward) = world +x)."""
    pose = np.eye(4)
    pose[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    pose[:3, 3] = position
    return pose


def test_camera_center_is_the_translation():
    pose = looking_along_world_x([1.0, 2.0, 1.5])
    np.testing.assert_allclose(camera_center(pose), [1.0, 2.0, 1.5])
    # The reference's -R^T t (docs/design.md B1) is a different point for any rotated camera.
    assert not np.allclose(-pose[:3, :3].T @ pose[:3, 3], [1.0, 2.0, 1.5])
    np.testing.assert_allclose(viewing_direction(pose), [1, 0, 0])


def test_world_to_camera_by_hand():
    pose = looking_along_world_x([1.0, 2.0, 1.5])
    # 2 m straight ahead; 1 m to the camera's right (world -y); 0.5 m above (world +z = camera -y).
    world = np.array([[3.0, 2.0, 1.5], [3.0, 1.0, 1.5], [3.0, 2.0, 2.0]])
    np.testing.assert_allclose(world_to_camera(world, pose), [[0, 0, 2], [1, 0, 2], [0, -0.5, 2]], atol=1e-12)
    np.testing.assert_allclose(camera_to_world(world_to_camera(world, pose), pose), world)


def test_round_trips_and_inverse():
    rng = np.random.default_rng(0)
    poses = np.tile(np.eye(4), (20, 1, 1))
    poses[:, :3, :3] = Rotation.random(20, random_state=1).as_matrix()
    poses[:, :3, 3] = rng.normal(size=(20, 3))
    points = rng.normal(size=(20, 3))
    np.testing.assert_allclose(camera_to_world(world_to_camera(points, poses), poses), points, atol=1e-12)
    np.testing.assert_allclose(invert_pose(poses) @ poses, np.tile(np.eye(4), (20, 1, 1)), atol=1e-12)


def test_project_unproject():
    k = intrinsic_matrix(500.0, 510.0, 320.0, 240.0)
    points = np.array([[0.0, 0.0, 2.0], [0.4, -0.2, 2.0]])
    pixels = project(points, k)
    np.testing.assert_allclose(pixels, [[320, 240], [320 + 500 * 0.2, 240 - 510 * 0.1]])
    np.testing.assert_allclose(unproject(pixels, points[:, 2], k), points)


def grid(x0, x1, y0, y1, step=0.05):
    xs = np.arange(x0, x1 + step / 2, step)
    ys = np.arange(y0, y1 + step / 2, step)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


def test_alpha_shape_area_rectangle_and_l_shape():
    rect = grid(0, 4, 0, 3)
    assert alpha_shape_area(rect, max_points=None) == pytest.approx(12.0, rel=1e-9)
    # An L: 4x3 minus the 2x1.5 corner. The alpha shape (alpha 5 = 0.2 m circumradius) does not bridge the notch,
    # unlike a convex hull (area 12 - 1.5) would; it only rounds the concave corner, with triangles of
    # circumradius < 0.2 m, so it adds less than a 0.2 m quarter disc there.
    l_shape = np.concatenate([grid(0, 4, 0, 1.5), grid(0, 2, 1.55, 3)])
    area = alpha_shape_area(l_shape, max_points=None)
    assert 9.0 <= area <= 9.0 + np.pi * 0.2**2 / 4


def test_alpha_shape_subsampling_is_seeded():
    rng = np.random.default_rng(1)
    points = rng.uniform([0, 0], [5, 4], size=(50_000, 2))
    a = alpha_shape_area(points, seed=3)
    assert a == alpha_shape_area(points, seed=3)
    assert a == pytest.approx(20.0, rel=0.05)
    assert alpha_shape_area(np.zeros((2, 2))) == 0.0
    assert alpha_shape_area(np.array([[0, 0], [1, 1], [2, 2.0]])) == 0.0


def test_min_area_rectangle_recovers_a_rotated_rectangle():
    rot = Rotation.from_euler("z", 27, degrees=True).as_matrix()[:2, :2]
    local = grid(-2, 2, -0.75, 0.75, step=0.25)
    points = local @ rot.T + np.array([3.0, -1.0])
    center, size, axes = min_area_rectangle(points)
    np.testing.assert_allclose(center, [3.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(sorted(size), [1.5, 4.0], atol=1e-9)
    assert polygon_area(np.array([[0, 0], [4, 0], [4, 3], [0, 3]])) == 12.0
    box_center, lengths, box_axes = gravity_aligned_box(np.column_stack([points, np.linspace(0, 2.5, len(points))]))
    np.testing.assert_allclose(box_center, [3.0, -1.0, 1.25], atol=1e-9)
    assert lengths[2] == pytest.approx(2.5)
    np.testing.assert_allclose(box_axes[2], [0, 0, 1])
