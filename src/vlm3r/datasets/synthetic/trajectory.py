"""A smooth handheld walkthrough of a furnished room.

The walkable floor is a grid (cells inside the room, away from walls and object footprints); the path visits
waypoints spread around the room, in angular order, along grid shortest paths (``vlm3r.geometry.grid``), and is
then smoothed (checked again against a stricter clearance). The camera holds a fixed eye height with a small bob,
looks across the room towards its far side, pans left and right, tilts down a little and shakes slightly.
Poses are camera-to-world in OpenCV axes (+x right, +y down, +z forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vlm3r.datasets.synthetic.furnish import FurnishedRoom
from vlm3r.geometry.grid import cell_grid, cells_at, largest_region, path_through
from vlm3r.geometry.polygon import rectangle_distance

CELL = 0.05  # walkable-grid resolution (m)
WALL_MARGIN = 0.45  # path keeps this far from walls ...
OBJECT_MARGIN = 0.4  # ... and from object footprints
SMOOTH_MARGIN = 0.3  # after smoothing, points must still be this far from walls and objects
MAX_SPEED = 0.8  # m/s: a short video walks only the start of a long path


class NoWalkableFloor(RuntimeError):
    """The furnished room leaves no floor to walk on."""


@dataclass(frozen=True)
class Trajectory:
    poses: np.ndarray  # [T, 4, 4] camera-to-world
    path_xy: np.ndarray  # [T, 2] camera floor positions


def walkable_grid(furnished: FurnishedRoom, wall_margin: float, object_margin: float):
    """Boolean grid [nx, ny] of cells whose centres are walkable, and the cell centre coordinates."""
    room = furnished.room
    centers = cell_grid(room.width, room.depth, CELL)
    free = room.contains(centers, margin=wall_margin)
    for obj in furnished.objects:
        if obj.bottom > 1.0:  # things hanging high on walls do not block walking (the wall margin covers them)
            continue
        free &= rectangle_distance(centers, obj.center[:2], obj.size[:2], obj.axes[:2, :2]) > object_margin
    return free, centers


def plan_path(rng: np.random.Generator, furnished: FurnishedRoom, num_waypoints: int = 5) -> np.ndarray:
    """A smooth collision-free floor path [N, 2] through waypoints spread around the room."""
    free, centers = walkable_grid(furnished, WALL_MARGIN, OBJECT_MARGIN)
    free = largest_region(free)
    if not free.any():
        raise NoWalkableFloor("no walkable floor left between the furniture")
    cells = centers[free]
    if len(cells) < 20:
        raise NoWalkableFloor("the walkable floor is too small for a walkthrough")
    clearance = ndimage.distance_transform_edt(free)[free] * CELL
    middle = cells.mean(axis=0)
    offset = cells - middle
    radius = np.linalg.norm(offset, axis=1)
    angle = np.arctan2(offset[:, 1], offset[:, 0])
    start = rng.uniform(-np.pi, np.pi)
    direction = rng.choice([-1.0, 1.0])
    waypoints = []
    for k in range(num_waypoints):
        center_angle = start + direction * 2 * np.pi * k / num_waypoints
        in_sector = np.abs(np.angle(np.exp(1j * (angle - center_angle)))) < np.pi / num_waypoints
        if not in_sector.any():
            continue
        score = (radius / max(radius.max(), 1e-6) + np.minimum(clearance, 0.3) + rng.uniform(0, 0.2, len(cells)))
        waypoints.append(int(np.flatnonzero(in_sector)[np.argmax(score[in_sector])]))
    if len(waypoints) < 2:
        waypoints = [int(np.argmax(radius)), int(np.argmin(radius))]
    raw = cells[np.array(path_through(free, waypoints))]  # the grid's nodes are in the order of ``cells``
    return _smooth(raw, furnished)


def _smooth(raw: np.ndarray, furnished: FurnishedRoom) -> np.ndarray:
    """Resample by arc length and smooth; fall back to less smoothing where it would cut a corner."""
    step = np.linalg.norm(np.diff(raw, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    if arc[-1] < 1e-6:
        return raw[:1]
    samples = np.linspace(0, arc[-1], max(2, int(arc[-1] / 0.02)))
    resampled = np.stack([np.interp(samples, arc, raw[:, k]) for k in range(2)], axis=1)
    strict, centers = walkable_grid(furnished, SMOOTH_MARGIN, SMOOTH_MARGIN)
    for sigma_m in (0.5, 0.3, 0.15, 0.0):
        sigma = sigma_m / 0.02
        smooth = ndimage.gaussian_filter1d(resampled, sigma, axis=0, mode="nearest") if sigma > 0 else resampled
        cell = cells_at(smooth, CELL, strict.shape)
        if np.all(strict[cell[:, 0], cell[:, 1]]):
            return smooth
    return resampled


def look_at_pose(position: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world pose (OpenCV axes) at ``position`` looking along ``yaw`` (about z from +x), tilted by
    ``pitch`` (positive up) and rolled by ``roll`` about the viewing direction (radians)."""
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


def walkthrough(rng: np.random.Generator, furnished: FurnishedRoom, num_frames: int, fps: float = 24.0
                ) -> Trajectory:
    """Camera poses for ``num_frames`` video frames along a planned path."""
    path = plan_path(rng, furnished)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    t = np.linspace(0.0, 1.0, num_frames)
    eased = t + 0.025 * np.sin(2 * np.pi * t * rng.uniform(1.5, 3.0))  # uneven walking speed, still monotonic
    eased = (eased - eased.min()) / (eased.max() - eased.min())
    # Walk the whole path, or only its start where that would exceed MAX_SPEED at the fastest moment.
    fastest_step = np.diff(eased).max() if num_frames > 1 else 1.0
    s = eased * min(arc[-1], MAX_SPEED / fps / fastest_step)
    xy = np.stack([np.interp(s, arc, path[:, k]) for k in range(2)], axis=1)
    seconds = np.arange(num_frames) / fps
    eye = rng.uniform(1.2, 1.8) + 0.015 * np.sin(2 * np.pi * 1.8 * seconds + rng.uniform(0, 2 * np.pi))
    # Look towards the far side of the room (the middle of the walkable floor, mirrored), panning around it.
    room_middle = furnished.room.outline().mean(axis=0)
    to_middle = room_middle - xy
    far = np.linalg.norm(to_middle, axis=1) > 0.6
    heading = np.arctan2(*np.gradient(xy, axis=0)[:, ::-1].T)
    base_yaw = np.where(far, np.arctan2(to_middle[:, 1], to_middle[:, 0]), heading)
    pan_period = rng.uniform(3.0, 5.0)
    yaw = np.unwrap(base_yaw) + np.radians(35) * np.sin(2 * np.pi * seconds / pan_period + rng.uniform(0, 2 * np.pi))
    yaw = ndimage.gaussian_filter1d(yaw, sigma=6, mode="nearest")
    pitch = np.radians(-rng.uniform(12, 22)) + _shake(rng, seconds, np.radians(2.0))
    roll = _shake(rng, seconds, np.radians(1.5))
    poses = np.stack([look_at_pose(np.array([x, y, z]), a, p, r)
                      for (x, y), z, a, p, r in zip(xy, eye, yaw, pitch, roll)])
    return Trajectory(poses, xy)


def _shake(rng: np.random.Generator, seconds: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth small jitter: a sum of three sinusoids of random frequency and phase."""
    out = np.zeros_like(seconds)
    for _ in range(3):
        out += np.sin(2 * np.pi * rng.uniform(0.2, 1.2) * seconds + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 3
