"""Furnishing a room: which objects, their sizes, their parts (a table is a top and four legs), and where they go.

Placement rules (docs/design.md, synthetic scenes): floor objects never overlap; ``wall`` objects stand with their
back (+y) against a wall; ``surface`` objects rest on a supporting object's top; ``wall_mounted`` objects hang on a
wall at their category's elevation (doors reach the floor and keep the floor in front of them clear). A placement
that fails after a bounded number of tries is skipped: a room simply has one object fewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm3r.datasets.synthetic.categories import CategorySpec, RoomType, SyntheticVocabulary
from vlm3r.datasets.synthetic.room import Room, Wall, sample_room, yaw_axes
from vlm3r.geometry import boxes_intersect

_TRIES = 60
_FLOOR_GAP = 0.08  # clearance between floor objects (m)
_WALL_GAP = 0.02  # gap between a wall object's back and the wall
_DOOR_CLEARANCE = 0.9  # floor kept free in front of a door
_MAX_FLOOR_FRACTION = 0.42  # floor objects cover at most this share of the floor, so the camera can walk


@dataclass(frozen=True)
class Part:
    """One box of an object, in world coordinates (axes as rows)."""

    center: np.ndarray
    lengths: np.ndarray
    axes: np.ndarray


@dataclass(frozen=True)
class SceneObject:
    """A placed object: its oriented bounding box (``centre``, ``size``, ``yaw``) and the boxes drawn for it."""

    instance_id: int
    category: str
    label: int
    center: np.ndarray  # [3], box centre
    size: np.ndarray  # [3], full lengths along the object's x, y, z
    yaw: float
    parts: tuple[Part, ...]
    support_id: int | None = None

    @property
    def axes(self) -> np.ndarray:
        return yaw_axes(self.yaw)

    @property
    def bottom(self) -> float:
        return float(self.center[2] - self.size[2] / 2)

    @property
    def top_surface(self) -> float:
        """Height things rest on: a sofa's seat, a bed's mattress, otherwise its top."""
        if self.category == "sofa":
            return self.bottom + 0.45
        if self.category == "bed":
            return self.bottom + self.size[2] - _HEADBOARD_EXTRA
        return self.bottom + float(self.size[2])


@dataclass(frozen=True)
class FurnishedRoom:
    room: Room
    room_type: str
    objects: tuple[SceneObject, ...]


_HEADBOARD_EXTRA = 0.35


def object_parts(shape: str, center: np.ndarray, size: np.ndarray, yaw: float) -> tuple[Part, ...]:
    """The boxes that draw an object of a shape, given its bounding box (local +y is its back)."""
    length, depth, height = size
    bottom = center[2] - height / 2
    axes = yaw_axes(yaw)

    def part(local_center, lengths):
        world = center + np.asarray(local_center, dtype=np.float64) @ axes
        return Part(world, np.asarray(lengths, dtype=np.float64), axes)

    def legs(top_height, leg=0.05):
        x, y = length / 2 - leg / 2, depth / 2 - leg / 2
        z = bottom + top_height / 2 - center[2]
        return [part([sx * x, sy * y, z], [leg, leg, top_height]) for sx in (-1, 1) for sy in (-1, 1)]

    local_bottom = -height / 2
    if shape == "table":
        thickness = min(0.04, height / 4)
        top = part([0, 0, height / 2 - thickness / 2], [length, depth, thickness])
        return (top, *legs(height - thickness, leg=min(0.05, length / 6, depth / 6)))
    if shape == "chair":
        seat_height, thickness = 0.45, 0.05
        seat = part([0, 0, local_bottom + seat_height - thickness / 2], [length, depth, thickness])
        back_height = height - seat_height
        back = part([0, depth / 2 - 0.03, local_bottom + seat_height + back_height / 2], [length, 0.06, back_height])
        return (seat, back, *legs(seat_height - thickness, leg=0.04))
    if shape == "bed":
        base_height = height - _HEADBOARD_EXTRA
        base = part([0, -0.04, local_bottom + base_height / 2], [length, depth - 0.08, base_height])
        headboard = part([0, depth / 2 - 0.04, 0], [length, 0.08, height])
        return (base, headboard)
    if shape == "sofa":
        arm, seat_height, back_depth = 0.15, 0.45, 0.2
        seat = part([0, -back_depth / 2, local_bottom + seat_height / 2], [length - 2 * arm, depth - back_depth,
                                                                            seat_height])
        back = part([0, depth / 2 - back_depth / 2, 0], [length, back_depth, height])
        arm_height = 0.62
        arms = [part([sx * (length / 2 - arm / 2), -back_depth / 2, local_bottom + arm_height / 2],
                     [arm, depth - back_depth, arm_height]) for sx in (-1, 1)]
        return (seat, back, *arms)
    return (Part(np.asarray(center, dtype=np.float64), np.asarray(size, dtype=np.float64), axes),)


def furnish(rng: np.random.Generator, vocabulary: SyntheticVocabulary) -> FurnishedRoom:
    """A random room of a random type, furnished by its type's rules."""
    room_type = vocabulary.room_types[int(rng.integers(len(vocabulary.room_types)))]
    area = rng.uniform(*room_type.area)
    l_shape = area >= 12 and rng.random() < 0.3
    if l_shape:
        area = min(area * 1.3, 60.0)
    room = sample_room(rng, area, height=rng.uniform(2.4, 3.0), l_shape=l_shape)
    placer = _Placer(rng, room)
    order = {"wall_mounted": 1, "wall": 2, "floor": 3, "surface": 4}
    wanted = _choose_objects(rng, room_type, vocabulary)
    # Doors first (they reserve floor), then large wall objects, free-standing ones, things on top, wall items.
    wanted.sort(key=lambda spec: (spec.name != "door", order[spec.placement], -np.prod([hi for _, hi in spec.size])))
    for spec in wanted:
        placer.place(spec)
    return FurnishedRoom(room, room_type.name, tuple(placer.objects))


def _choose_objects(rng, room_type: RoomType, vocabulary: SyntheticVocabulary) -> list[CategorySpec]:
    chosen = []
    for rule in room_type.objects:
        if rng.random() < rule.probability:
            count = int(rng.integers(rule.min_count, rule.max_count + 1))
            chosen += [vocabulary.by_name[rule.category]] * count
    return chosen


class _Placer:
    """Places objects one at a time, keeping the boxes placed so far for collision tests."""

    def __init__(self, rng: np.random.Generator, room: Room):
        self.rng, self.room = rng, room
        self.walls = room.walls()
        self.objects: list[SceneObject] = []
        self.reserved: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # keep-out boxes (door swings)
        self.floor_area_used = 0.0

    def place(self, spec: CategorySpec) -> SceneObject | None:
        size = np.array([self.rng.uniform(lo, hi) for lo, hi in spec.size])
        place = {"wall": self._on_floor_against_wall, "floor": self._on_floor, "surface": self._on_surface,
                 "wall_mounted": self._on_wall}[spec.placement]
        if spec.placement in ("wall", "floor"):
            footprint = size[0] * size[1]
            if self.floor_area_used + footprint > _MAX_FLOOR_FRACTION * self.room.area:
                return None
        for _ in range(_TRIES):
            pose = place(spec, size)
            if pose is None:
                continue
            center, yaw, support_id = pose
            if self._collides(center, size, yaw, support_id, spec):
                continue
            obj = SceneObject(len(self.objects) + 1, spec.name, spec.label, center, size, yaw,
                              object_parts(spec.shape, center, size, yaw), support_id)
            self.objects.append(obj)
            if spec.placement in ("wall", "floor"):
                self.floor_area_used += size[0] * size[1]
            if spec.name == "door":
                self._reserve_door_swing(obj)
            return obj
        return None

    def _random_wall(self, min_length: float) -> Wall | None:
        walls = [w for w in self.walls if w.length >= min_length]
        if not walls:
            return None
        lengths = np.array([w.length for w in walls])
        return walls[int(self.rng.choice(len(walls), p=lengths / lengths.sum()))]

    def _wall_pose(self, wall: Wall, size: np.ndarray, offset_from_wall: float, base_z: float):
        along = self.rng.uniform(size[0] / 2 + 0.05, wall.length - size[0] / 2 - 0.05)
        xy = wall.start + along * wall.direction + wall.inward_normal * offset_from_wall
        # Local +y (the back) points into the wall: -inward normal.
        yaw = float(np.arctan2(wall.inward_normal[0], -wall.inward_normal[1]))
        return np.array([xy[0], xy[1], base_z + size[2] / 2]), yaw

    def _on_floor_against_wall(self, spec, size):
        wall = self._random_wall(size[0] + 0.1)
        if wall is None:
            return None
        center, yaw = self._wall_pose(wall, size, _WALL_GAP + size[1] / 2, 0.0)
        return center, yaw, None

    def _on_wall(self, spec, size):
        wall = self._random_wall(size[0] + 0.1)
        if wall is None:
            return None
        base_z = self.rng.uniform(*spec.elevation)
        if base_z + size[2] > self.room.height - 0.05:
            return None
        center, yaw = self._wall_pose(wall, size, size[1] / 2, base_z)
        return center, yaw, None

    def _on_floor(self, spec, size):
        margin = 0.1
        x = self.rng.uniform(margin, self.room.width - margin)
        y = self.rng.uniform(margin, self.room.depth - margin)
        if spec.name == "chair":
            yaw = self.rng.uniform(-np.pi, np.pi)
        else:
            yaw = self.rng.integers(4) * np.pi / 2 + self.rng.normal(0, 0.08)
        return np.array([x, y, size[2] / 2]), float(yaw), None

    def _on_surface(self, spec, size):
        supports = [o for o in self.objects if o.category in spec.on]
        if not supports:
            return None
        support = supports[int(self.rng.integers(len(supports)))]
        usable = support.size[:2] - size[:2] - 0.04
        if support.category in ("bed", "sofa"):
            usable[1] -= 0.2  # stay in front of a headboard or backrest
        if np.any(usable < 0):
            return None
        local = self.rng.uniform(-usable / 2, usable / 2)
        if support.category in ("bed", "sofa"):
            local[1] -= 0.1
        xy = support.center[:2] + local @ support.axes[:2, :2]
        yaw = support.yaw + self.rng.normal(0, 0.1)
        return np.array([xy[0], xy[1], support.top_surface + size[2] / 2]), float(yaw), support.instance_id

    def _collides(self, center, size, yaw, support_id, spec) -> bool:
        if spec.placement in ("wall", "floor"):
            margin = 0.0 if spec.placement == "wall" else 0.05
            if not self.room.footprint_fits(center[:2], size[:2], yaw, margin=margin):
                return True
            for reserved in self.reserved:
                if boxes_intersect(center, size, yaw_axes(yaw), *reserved):
                    return True
        if spec.placement == "wall_mounted" and not self.room.footprint_fits(center[:2], size[:2], yaw, margin=-1e-6):
            return True
        grown = size + 2 * _FLOOR_GAP
        for other in self.objects:
            if other.instance_id == support_id:
                continue
            if boxes_intersect(center, grown, yaw_axes(yaw), other.center, other.size, other.axes):
                return True
        return False

    def _reserve_door_swing(self, door: SceneObject) -> None:
        """Keep the floor in front of a door free: a box as wide as the door, reaching into the room."""
        inward = -door.axes[1]
        center = door.center + inward * (door.size[1] / 2 + _DOOR_CLEARANCE / 2)
        self.reserved.append((center, np.array([door.size[0] + 0.2, _DOOR_CLEARANCE, door.size[2]]), door.axes))
