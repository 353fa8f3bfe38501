"""Exact ray casting of a furnished room: colour, metric z-depth and instance ids per pixel.

Rays are built with camera-frame direction (x, y, 1), so a hit's ray parameter is its z-depth. The room shell
is the inside of its bounding prism minus the notch prism of an L; every object part is a slab test in the
part's own frame, restricted to the pixel rectangle its projected corners cover (parts entirely behind the
camera are skipped). Shading: per-instance colour, a directional light plus a head light, darkened box edges
and floor planks, so that the RGB carries the scene's structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm3r.datasets.synthetic.furnish import FurnishedRoom
from vlm3r.geometry import box_corners
from vlm3r.geometry.boxes import BOX_EDGES

_NEAR = 0.05
_LIGHT = np.array([0.35, 0.25, 0.9]) / np.linalg.norm([0.35, 0.25, 0.9])
_WALL, _FLOOR, _CEILING = 0, 1, 2


@dataclass(frozen=True)
class RenderedFrame:
    rgb: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] float32 metres (z-depth)
    instance: np.ndarray  # [H, W] int32, 0 = room structure, else the object's instance id


@dataclass(frozen=True)
class SceneGeometry:
    """Flat arrays of everything a frame is drawn from."""

    bounds: np.ndarray  # [3] room bounding prism size (x, y, height)
    notch: np.ndarray | None  # [2, 3] lower and upper corner of the removed prism
    part_centers: np.ndarray
    part_half: np.ndarray
    part_axes: np.ndarray
    part_corners: np.ndarray  # [P, 8, 3]
    part_instance: np.ndarray  # [P]
    colors: np.ndarray  # [3 + P, 3] in [0, 1]: wall, floor, ceiling, then one per part


def scene_geometry(furnished: FurnishedRoom, instance_colors: dict[int, np.ndarray],
                   structure_colors: np.ndarray) -> SceneGeometry:
    room = furnished.room
    parts = [(obj.instance_id, part) for obj in furnished.objects for part in obj.parts]
    centers = np.array([p.center for _, p in parts]).reshape(-1, 3)
    lengths = np.array([p.lengths for _, p in parts]).reshape(-1, 3)
    axes = np.array([p.axes for _, p in parts]).reshape(-1, 3, 3)
    corners = box_corners(centers, lengths, axes)
    notch = None
    if room.notch is not None:
        x0, y0, x1, y1 = room.notch
        notch = np.array([[x0, y0, -1.0], [x1, y1, room.height + 1.0]])
    colors = np.concatenate([structure_colors, np.array([instance_colors[i] for i, _ in parts]).reshape(-1, 3)])
    return SceneGeometry(np.array([room.width, room.depth, room.height]), notch, centers, lengths / 2, axes, corners,
                         np.array([i for i, _ in parts], dtype=np.int32), colors)


class Renderer:
    """Renders frames of one scene at one resolution.

    Work is done on per-component 2D float32 arrays with elementwise minimum/maximum (numpy's reductions over a
    trailing axis of length 3 are several times slower).
    """

    def __init__(self, geometry: SceneGeometry, intrinsics: np.ndarray, width: int, height: int):
        self.geometry, self.k, self.width, self.height = geometry, np.asarray(intrinsics, float), width, height
        # Camera-frame ray direction of pixel (u, v) is (x[u], y[v], 1).
        self.x = ((np.arange(width) - self.k[0, 2]) / self.k[0, 0]).astype(np.float32)
        self.y = ((np.arange(height) - self.k[1, 2]) / self.k[1, 1]).astype(np.float32)
        # Face normals (part p, axis a, sign s) -> row 6 * p + 2 * a + (s > 0); structure faces come after.
        normals = []
        for axes in geometry.part_axes:
            for a in range(3):
                normals += [-axes[a], axes[a]]
        for a in range(3):
            unit = np.eye(3)[a]
            normals += [-unit, unit]
        self.face_normals = np.array(normals).reshape(-1, 3)
        self.structure_face = 6 * len(geometry.part_axes)
        self.face_light = 0.45 + 0.5 * np.clip(self.face_normals @ _LIGHT, 0, None)

    def render(self, camera_to_world: np.ndarray) -> RenderedFrame:
        rotation, origin = camera_to_world[:3, :3], camera_to_world[:3, 3]
        r = rotation.astype(np.float32)
        dirs = [r[i, 0] * self.x[None, :] + (r[i, 1] * self.y[:, None] + r[i, 2]) for i in range(3)]  # world
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            depth, face, index = self._room(dirs, origin)
            instance = np.zeros(depth.shape, dtype=np.int32)
            edge = np.zeros(depth.shape, dtype=bool)
            for p, block in self._visible_parts(origin, rotation):
                self._draw_part(p, block, dirs, origin, depth, index, face, instance, edge)
        rgb = self._shade(dirs, origin, depth, index, face, edge)
        return RenderedFrame(rgb, depth, instance)

    def _room(self, dirs, origin):
        """Where each ray leaves the room shell: depth, face id and colour index (wall, floor or ceiling)."""
        g = self.geometry
        exits = []
        for a in range(3):
            # Leaving through the upper face when moving up the axis, else through the lower one. The camera is
            # inside, so finite exits are positive; a zero component gives +-inf, and abs makes that +inf.
            upper, lower = np.float32(g.bounds[a] - origin[a]), np.float32(-origin[a])
            exits.append(np.abs(np.where(dirs[a] > 0, upper, lower) / dirs[a]))
        depth = np.minimum(np.minimum(exits[0], exits[1]), exits[2])
        on_x, on_y = exits[0] == depth, exits[1] == depth
        upward = np.where(on_x, dirs[0] > 0, np.where(on_y, dirs[1] > 0, dirs[2] > 0))
        axis = np.where(on_x, np.int32(0), np.where(on_y, np.int32(1), np.int32(2)))
        face = (self.structure_face + 1) + 2 * axis - upward  # the face's normal points back into the room
        index = np.where(axis < 2, np.int32(_WALL), np.where(upward, np.int32(_CEILING), np.int32(_FLOOR)))
        if g.notch is not None:
            t_near, t_far, near_face = self._slab(dirs, g.notch[0] - origin, g.notch[1] - origin,
                                                  self.structure_face)
            hit = (t_near <= t_far) & (t_near > 0) & (t_near < depth)
            depth[hit] = t_near[hit]
            face[hit] = near_face[hit]
            index[hit] = _WALL
        return depth, face, index

    @staticmethod
    def _slab(dirs, lower, upper, face_base):
        """Entry and exit ray parameters of an axis-aligned box [lower, upper] (relative to the ray origin), and
        the id of the entry face (outward normal)."""
        t_near = t_far = near_face = None
        for a in range(3):
            t1, t2 = np.float32(lower[a]) / dirs[a], np.float32(upper[a]) / dirs[a]
            lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
            this_face = face_base + 2 * a + (dirs[a] < 0)  # entering against the direction of travel
            if t_near is None:
                t_near, t_far, near_face = lo, hi, this_face.astype(np.int32)
            else:
                later = lo > t_near
                t_near, near_face = np.where(later, lo, t_near), np.where(later, this_face, near_face)
                t_far = np.minimum(t_far, hi)
        return t_near, t_far, near_face

    def _draw_part(self, p, block, dirs, origin, depth, index, face, instance, edge):
        g = self.geometry
        axes = g.part_axes[p].astype(np.float32)
        world = [d[block] for d in dirs]
        local = [axes[a, 0] * world[0] + axes[a, 1] * world[1] + axes[a, 2] * world[2] for a in range(3)]
        o = g.part_axes[p] @ (origin - g.part_centers[p])
        half = g.part_half[p]
        t_near, t_far, near_face = self._slab(local, -half - o, half - o, 6 * p)
        depth_block = depth[block]
        hit = (t_near <= t_far) & (t_near > _NEAR) & (t_near < depth_block)
        if not hit.any():
            return
        t_hit = t_near[hit]
        depth_block[hit] = t_hit
        index[block][hit] = 3 + p
        face[block][hit] = near_face[hit]
        instance[block][hit] = g.part_instance[p]
        # Box edges: the hit lies within 1.2 cm of two faces at once.
        close = sum((np.abs(np.float32(half[a]) - np.abs(np.float32(o[a]) + t_hit * local[a][hit])) < 0.012)
                    .astype(np.int8) for a in range(3))
        edge[block][hit] = close >= 2

    def _visible_parts(self, origin, rotation):
        """(part, (rows, cols) pixel slices) for every part with something in front of the camera.

        The slices cover the projection of the part's corners in front of the near plane and of the points where
        its edges cross that plane (so a box reaching behind the camera is clipped, not drawn full frame).
        """
        camera = (self.geometry.part_corners - origin) @ rotation  # [P, 8, 3]
        front = camera[..., 2] > _NEAR
        any_front, all_front = front.any(axis=1), front.all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.k[0, 0] * camera[..., 0] / camera[..., 2] + self.k[0, 2]
            v = self.k[1, 1] * camera[..., 1] / camera[..., 2] + self.k[1, 2]
        u_lo, u_hi = np.where(front, u, np.inf).min(1), np.where(front, u, -np.inf).max(1)
        v_lo, v_hi = np.where(front, v, np.inf).min(1), np.where(front, v, -np.inf).max(1)
        for p in np.flatnonzero(any_front & ~all_front):
            a, b = camera[p, BOX_EDGES[:, 0]], camera[p, BOX_EDGES[:, 1]]
            crossing = (a[:, 2] > _NEAR) != (b[:, 2] > _NEAR)
            a, b = a[crossing], b[crossing]
            cut = a + ((_NEAR - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None] * (b - a)
            cu = self.k[0, 0] * cut[:, 0] / cut[:, 2] + self.k[0, 2]
            cv = self.k[1, 1] * cut[:, 1] / cut[:, 2] + self.k[1, 2]
            u_lo[p], u_hi[p] = min(u_lo[p], cu.min()), max(u_hi[p], cu.max())
            v_lo[p], v_hi[p] = min(v_lo[p], cv.min()), max(v_hi[p], cv.max())
        for p in np.flatnonzero(any_front):
            u0, u1 = max(int(np.floor(u_lo[p])), 0), min(int(np.ceil(u_hi[p])) + 1, self.width)
            v0, v1 = max(int(np.floor(v_lo[p])), 0), min(int(np.ceil(v_hi[p])) + 1, self.height)
            if u0 < u1 and v0 < v1:
                yield int(p), (slice(v0, v1), slice(u0, u1))

    def _shade(self, dirs, origin, depth, index, face, edge):
        g = self.geometry
        light = self.face_light[face].astype(np.float32)
        floor = index == _FLOOR
        if floor.any():
            y = origin[1] + depth[floor] * dirs[1][floor]
            plank = np.floor(y / 0.18)
            tone = 0.86 + 0.14 * np.modf(np.abs(np.sin(plank * 12.9898) * 43758.5453))[0]
            seam = (y / 0.18 - plank) < 0.05
            light[floor] *= np.where(seam, 0.72, tone).astype(np.float32)
        light[edge] *= 0.55
        light *= np.exp(np.float32(-0.025) * depth)
        np.minimum(light, np.float32(1.0 / g.colors.max()), out=light)  # keeps every channel <= 255
        palette = (g.colors * 255.0).astype(np.float32)
        rgb = np.empty(depth.shape + (3,), dtype=np.uint8)
        for c in range(3):
            rgb[..., c] = palette[:, c][index] * light
        return rgb
