"""Per-scene geometry the tasks share: exact box-box distances, boxes by instance, camera-to-box distances."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from vlm3r.geometry import box_box_distance, point_box_distance
from vlm3r.scene import FrameMeta, SceneMeta, stack_boxes

#: A box is degenerate when its longest side is under a centimetre or when it is flat along two axes.
MIN_SIDE = 1e-3


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
    """Boxes of one scene as arrays, with distances computed once and reused by every task."""

    def __init__(self, scene: SceneMeta):
        self.scene = scene
        self.categories = [c for c, boxes in scene.objects.items() for _ in boxes]
        self.boxes = [b for boxes in scene.objects.values() for b in boxes]
        self.centers, self.lengths, self.axes = stack_boxes(self.boxes)
        self.index_of_instance = {b.instance_id: i for i, b in enumerate(self.boxes) if b.instance_id is not None}

    @cached_property
    def box_distances(self) -> np.ndarray:
        """[N, N] exact minimum distances between all boxes."""
        n = len(self.boxes)
        i, j = np.triu_indices(n, k=1)
        d = box_box_distance(self.centers[i], self.lengths[i], self.axes[i], self.centers[j], self.lengths[j],
                             self.axes[j])
        out = np.zeros((n, n))
        out[i, j] = out[j, i] = d
        return out

    def category_distance(self, a: str, b: str) -> float:
        """Closest distance between any instance of ``a`` and any of ``b``."""
        ia = [k for k, c in enumerate(self.categories) if c == a]
        ib = [k for k, c in enumerate(self.categories) if c == b]
        return float(self.box_distances[np.ix_(ia, ib)].min())

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
