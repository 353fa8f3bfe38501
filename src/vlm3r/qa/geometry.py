"""Per-scene geometry the tasks share: exact box-box distances (and the pair and points that give them), boxes by
instance, camera-to-box distances (and the box points they reach)."""

from __future__ import annotations

import numpy as np

from vlm3r.geometry import box_box_closest_points, box_box_distance, closest_point_in_box, point_box_distance
from vlm3r.scene import FrameMeta, SceneMeta, stack_boxes

#: A box is degenerate when its longest side is under a centimetre or when it is flat along two axes.
MIN_SIDE = 1e-3
#: Box pairs whose distance bounds ``SceneGeometry.category_distance`` holds at a time (bounds its memory).
PAIR_CHUNK = 4096
#: Box pairs measured exactly at a time, nearest bound first (box_box_distance holds ~29 KB per pair it measures).
EXACT_BATCH = 64
#: m: a pair is skipped only when its lower bound exceeds the least distance found by more than this (rounding).
BOUND_SLACK = 1e-6


def scene_problem(scene: SceneMeta) -> str | None:
    """Why the scene's objects cannot be asked about, or None: no boxes, a category without boxes, counts that
    disagree with the boxes (a counting question would get a wrong answer), a degenerate box."""
    if not scene.objects or scene.num_objects == 0:
        return "scene has no object boxes"
    empty = [c for c, boxes in scene.objects.items() if not boxes]
    if empty:
        return f"categories without boxes: {', '.join(map(repr, empty))}"
    disagree = [f"object_counts[{c!r}] is {scene.object_counts.get(c)} but it has {len(boxes)} box(es)"
                for c, boxes in scene.objects.items() if scene.object_counts.get(c) != len(boxes)]
    disagree += [f"object_counts[{c!r}] is {n} but it has no boxes" for c, n in scene.object_counts.items()
                 if c not in scene.objects and n]
    if disagree:
        return "; ".join(disagree)
    for category, boxes in scene.objects.items():
        for i, box in enumerate(boxes):
            lengths = box.axes_lengths
            if lengths.max() < 10 * MIN_SIDE or np.count_nonzero(lengths < MIN_SIDE) >= 2:
                return f"degenerate box {category!r}[{i}] (side lengths {np.round(lengths, 4).tolist()} m)"
    return None


class SceneGeometry:
    """Boxes of one scene as arrays, with the distances the tasks ask for computed once and reused by every task.

    Only the box pairs a question needs are measured: the closest distance between two categories takes the
    pairs of their instances (one instance times N for a unique object against a category of N), never every
    pair of the scene, so that time and memory grow linearly with a category's box count.
    """

    def __init__(self, scene: SceneMeta):
        self.scene = scene
        self.categories = [c for c, boxes in scene.objects.items() for _ in boxes]
        self.boxes = [b for boxes in scene.objects.values() for b in boxes]
        self.centers, self.lengths, self.axes = stack_boxes(self.boxes)
        self.radii = 0.5 * np.linalg.norm(self.lengths, axis=1)  # half diagonals: no box point is farther out
        self.index_of_instance = {b.instance_id: i for i, b in enumerate(self.boxes) if b.instance_id is not None}
        by_category: dict[str, list[int]] = {}
        for k, category in enumerate(self.categories):
            by_category.setdefault(category, []).append(k)
        self.indices_of_category = {c: np.array(ks, dtype=np.intp) for c, ks in by_category.items()}
        # each box's position in its category's list of the scene metadata (how evidence names objects)
        self.index_in_category = [k - int(self.indices_of_category[c][0]) for k, c in enumerate(self.categories)]
        self._category_distances: dict[tuple[str, str], tuple[float, int, int]] = {}
        self._closest_points: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def category_distance(self, a: str, b: str) -> float:
        """Closest distance between any instance of ``a`` and any of ``b`` (exact box-box distances; 0 for a
        category with itself), computed once per pair of categories."""
        return self.closest_pair(a, b)[0]

    def closest_pair(self, a: str, b: str) -> tuple[float, int, int]:
        """(distance, box index of an ``a``, box index of a ``b``) of the pair ``category_distance`` found closest
        (the first found on a tie; a category with itself: its first box twice)."""
        key = (a, b) if a <= b else (b, a)
        if key not in self._category_distances:
            self._category_distances[key] = self._closest(self.indices_of_category[key[0]],
                                                          self.indices_of_category[key[1]])
        distance, i, j = self._category_distances[key]
        return (distance, i, j) if key == (a, b) else (distance, j, i)

    def closest_points(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """The closest points (on box ``i``, on box ``j``) whose distance ``category_distance`` measured (the pair
        taken with its lower box index first, as measured; ``box_box_closest_points``), computed once per pair."""
        lo, hi = min(i, j), max(i, j)
        if (lo, hi) not in self._closest_points:
            self._closest_points[lo, hi] = box_box_closest_points(self.centers[lo], self.lengths[lo], self.axes[lo],
                                                                  self.centers[hi], self.lengths[hi], self.axes[hi])
        p, q = self._closest_points[lo, hi]
        return (p, q) if i == lo else (q, p)

    def object_ref(self, k: int) -> tuple[str, int]:
        """(category, position in the scene metadata's ``objects[category]``) of box ``k``."""
        return self.categories[k], self.index_in_category[k]

    def _closest(self, ia: np.ndarray, ib: np.ndarray) -> tuple[float, int, int]:
        """The least box-box distance over the pairs of ``ia`` x ``ib``, taken ``PAIR_CHUNK`` pairs at a time, with
        the pair (of ``ia``, of ``ib``) giving it.

        A pair's distance is at least its centres' distance less the two boxes' half diagonals; pairs are measured
        exactly in the order of that bound, ``EXACT_BATCH`` at a time, until the bound of the next exceeds the
        least distance found (plus ``BOUND_SLACK``): the rest cannot be closer. Each pair is measured with its
        lower box index first, as a distance over the scene's box order is defined.
        """
        shared = np.intersect1d(ia, ib)
        if shared.size:
            return 0.0, int(shared[0]), int(shared[0])
        rows = max(1, PAIR_CHUNK // len(ib))
        best, pair = np.inf, (-1, -1)
        for start in range(0, len(ia), rows):
            p = np.repeat(ia[start:start + rows], len(ib))
            q = np.tile(ib, len(p) // len(ib))
            bound = np.linalg.norm(self.centers[p] - self.centers[q], axis=1) - self.radii[p] - self.radii[q]
            order = np.argsort(bound, kind="stable")
            for begin in range(0, len(order), EXACT_BATCH):
                batch = order[begin:begin + EXACT_BATCH]
                batch = batch[bound[batch] <= best + BOUND_SLACK]
                if not len(batch):
                    break  # in bound order: no later pair can be closer either
                i, j = np.minimum(p[batch], q[batch]), np.maximum(p[batch], q[batch])
                distances = box_box_distance(self.centers[i], self.lengths[i], self.axes[i], self.centers[j],
                                             self.lengths[j], self.axes[j])
                k = int(np.argmin(distances))
                if distances[k] < best:
                    best, pair = float(distances[k]), (int(p[batch[k]]), int(q[batch[k]]))
        return best, *pair

    def camera_distances(self, frame: FrameMeta, indices: list[int]) -> np.ndarray:
        """Distance from the frame's camera centre (its pose translation; docs/design.md B1) to boxes ``indices``."""
        return point_box_distance(frame.camera_center, self.centers[indices], self.lengths[indices],
                                  self.axes[indices])

    def camera_closest_points(self, frame: FrameMeta, indices: list[int]) -> np.ndarray:
        """The point [n, 3] of each box ``indices`` nearest the frame's camera centre, at the distance of
        ``camera_distances`` (the centre clamped in the box frame; the centre itself when inside)."""
        return closest_point_in_box(frame.camera_center, self.centers[indices], self.lengths[indices],
                                    self.axes[indices])

    def frame_unique(self, frame: FrameMeta) -> dict[int, str]:
        """Box index -> category for the instances visible in a frame whose category appears once in it."""
        visible = [self.index_of_instance[b.instance_id] for b in frame.bboxes_2d
                   if b.instance_id in self.index_of_instance]
        counts: dict[str, int] = {}
        for k in visible:
            counts[self.categories[k]] = counts.get(self.categories[k], 0) + 1
        return {k: self.categories[k] for k in visible if counts[self.categories[k]] == 1}
