"""Cameras: camera-to-world poses in OpenCV axes (+x right, +y down, +z forward) and pinhole intrinsics.

A pose is a 4x4 camera-to-world matrix ``[[R, t], [0, 1]]``: a camera point p maps to world ``R p + t``, so the
camera centre is ``t`` (the reference computes ``-R^T t`` in several VSTI tasks, which is wrong unless R = I;
docs/design.md B1). All functions broadcast over leading dimensions.
"""

from __future__ import annotations

import numpy as np

ROTATION_TOLERANCE = 1e-3  # largest |R R^T - I| accepted in a rotation read from a file (float32 noise is ~1e-7)


def camera_center(camera_to_world: np.ndarray) -> np.ndarray:
    """World position [..., 3] of the camera centre: the pose's translation column."""
    return np.asarray(camera_to_world, dtype=np.float64)[..., :3, 3]


def viewing_direction(camera_to_world: np.ndarray) -> np.ndarray:
    """Unit world direction [..., 3] the camera looks along (its +z axis)."""
    return np.asarray(camera_to_world, dtype=np.float64)[..., :3, 2]


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid 4x4 transforms, using R^T rather than a general matrix inverse."""
    pose = np.asarray(pose, dtype=np.float64)
    rotation_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    inverse = np.zeros_like(pose)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, pose[..., :3, 3])
    inverse[..., 3, 3] = 1.0
    return inverse


def camera_to_world(points_camera: np.ndarray, camera_to_world_pose: np.ndarray) -> np.ndarray:
    """Map camera-frame points [..., 3] to world coordinates."""
    pose = np.asarray(camera_to_world_pose, dtype=np.float64)
    points = np.asarray(points_camera, dtype=np.float64)
    return np.einsum("...ij,...j->...i", pose[..., :3, :3], points) + pose[..., :3, 3]


def world_to_camera(points_world: np.ndarray, camera_to_world_pose: np.ndarray) -> np.ndarray:
    """Map world points [..., 3] into the camera frame: ``R^T (p - t)``."""
    pose = np.asarray(camera_to_world_pose, dtype=np.float64)
    offset = np.asarray(points_world, dtype=np.float64) - pose[..., :3, 3]
    return np.einsum("...ji,...j->...i", pose[..., :3, :3], offset)


def intrinsic_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """The 3x3 pinhole matrix."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def project(points_camera: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixel coordinates [..., 2] of camera-frame points (u right, v down); points must have z > 0."""
    points_camera = np.asarray(points_camera, dtype=np.float64)
    homogeneous = np.einsum("ij,...j->...i", np.asarray(intrinsics, dtype=np.float64), points_camera)
    return homogeneous[..., :2] / homogeneous[..., 2:3]


def unproject(pixels: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Camera-frame points [..., 3] of pixels [..., 2] at metric z-depth [...]."""
    pixels = np.asarray(pixels, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    x = (pixels[..., 0] - k[0, 2]) / k[0, 0] * depth
    y = (pixels[..., 1] - k[1, 2]) / k[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


# An OpenCV camera frame (x right, y down, z forward) turned so that its up (-y) is world z: x stays, z forward
# becomes y, y down becomes -z. A reconstruction in its first camera's frame, turned by this, stands upright.
OPENCV_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# A view frustum's 8 edges between its 5 points (``frustum_points``): the centre to each image corner, then the rim.
FRUSTUM_EDGES = np.array([(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (4, 1)], dtype=np.intp)


def frustum_points(camera_to_world_pose: np.ndarray, intrinsics: np.ndarray, width: float, height: float,
                   depth: float) -> np.ndarray:
    """World points [5, 3] of a camera's view frustum cut at z-depth ``depth`` (metres): the camera centre, then the
    image's outer corners (0, 0), (width, 0), (width, height), (0, height) in pixels, unprojected to that depth."""
    pixels = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])
    rim = unproject(pixels, np.full(4, float(depth)), intrinsics)
    return camera_to_world(np.vstack([np.zeros(3), rim]), np.asarray(camera_to_world_pose, dtype=np.float64))


def rotation_error(rotation: np.ndarray) -> np.ndarray:
    """Largest absolute entry of ``R R^T - I``: 0 for an orthonormal matrix."""
    rotation = np.asarray(rotation, dtype=np.float64)
    gram = rotation @ np.swapaxes(rotation, -1, -2)
    return np.abs(gram - np.eye(3)).max(axis=(-1, -2))


def rotation_problem(rotation: np.ndarray, proper: bool = True) -> str | None:
    """Why a 3x3 matrix from a file is not a rotation, or None: not orthonormal within ``ROTATION_TOLERANCE``,
    or (``proper``) a reflection. Box axes may be left-handed (``proper=False``); camera poses may not."""
    error = float(rotation_error(rotation))
    if error > ROTATION_TOLERANCE:
        return f"not orthonormal (max |R R^T - I| = {error:.3g})"
    if proper and np.linalg.det(np.asarray(rotation, dtype=np.float64)) <= 0:
        return "a reflection (determinant <= 0)"
    return None
