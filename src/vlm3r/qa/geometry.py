"""Per-scene geometry the tasks share: exact box-box distances, boxes by instance, camera-to-box distances."""

from __future__ import annotations

import numpy as np

from vlm3r.geometry import box_box_distance, point_box_distance
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
        self._category_distances: dict[tuple[str, str], float] = {}

    def category_distance(self, a: str, b: str) -> float:
        """Closest distance between any instance of ``a`` and any of ``b`` (exact box-box distances; 0 for a
        category with itself), computed once per pair of categories."""
        key = (a, b) if a <= b else (b, a)
        if key not in self._category_distances:
            self._category_distances[key] = self._closest(self.indices_of_category[a], self.indices_of_category[b])
        return self._category_distances[key]

    def _closest(self, ia: np.ndarray, ib: np.ndarray) -> float:
        """The least box-box distance over the pairs of ``ia`` x ``ib``, taken ``PAIR_CHUNK`` pairs at a time.

        A pair's distance is at least its centres' distance less the two boxes' half diagonals; pairs are measured
        exactly in the order of that bound, ``EXACT_BATCH`` at a time, until the bound of the next exceeds the
        least distance found (plus ``BOUND_SLACK``): the rest cannot be closer. Each pair is measured with its
        lower box index first, as a distance over the scene's box order is defined.
        """
        if np.intersect1d(ia, ib).size:
            return 0.0
        rows = max(1, PAIR_CHUNK // len(ib))
        best = np.inf
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
                best = min(best, float(distances.min()))
        return best

    def camera_distances(self, frame: FrameMeta, indices: list[int]) -> np.ndarray:
        """Distance from the frame's camera centre (its pose translation; docs/design.md B1) to boxes ``indices``."""
        return point_box_distance(frame.camera_center, self.centers[indices], self.lengths[indices],
                                  self.axes[indices])

    def frame_unique(self, frame: FrameMeta) -> dict[int, str]:
        """Box index -> category for the instances visible in a frame whose category appears once in it."""
        visible = [self.index_of_instance[b.instance_id] for b in frame.bboxes_2d
                   if b.instance_id in self.index_of_instance]
        counts: dict[str, int] = {}
        for k in visible:
            counts[self.categories[k]] = counts.get(self.categories[k], 0) + 1
        return {k: self.categories[k] for k in visible if counts[self.categories[k]] == 1}
