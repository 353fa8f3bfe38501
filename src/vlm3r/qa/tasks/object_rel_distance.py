"""VSI-Bench relative distance: which of K objects is closest to a unique object (K = 4, 3 or 2).

One rule for all variants (docs/design.md B3, B12): exact distances, the closest option must be at least 0.15 m
away, and no two options may be within the room-size-dependent ambiguity threshold (0.30 m in rooms over
40 m², else 0.15 m). For a category with several instances the distance is to its closest instance.
Evidence: the object, each option's closest instance, and a segment between the closest points of the object and
each option, labelled with the option and its distance (to the centimetre).
"""

from __future__ import annotations

from functools import partial
from itertools import combinations

import numpy as np

from vlm3r.qa import templates
from vlm3r.qa.benchmarks import VSIBENCH
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.task import Candidate, QATask, SceneContext, SkipScene

MIN_CLOSEST = 0.15  # m: least distance from the object to the closest option


def ambiguity_threshold(room_size: float) -> float:
    return 0.30 if room_size > 40 else 0.15


class _ObjectRelDistance(QATask):
    bench, kind = VSIBENCH.name, "mca"
    num_choices: int

    def candidates(self, ctx: SceneContext) -> list[Candidate]:
        categories = list(ctx.scene.objects)
        unique = ctx.scene.unique_categories()
        if len(categories) < self.num_choices + 1 or not unique:
            raise SkipScene(f"needs {self.num_choices + 1} categories with one of them unique, has "
                            f"{len(categories)} categories, {len(unique)} unique")
        tau = ambiguity_threshold(ctx.scene.room_size)
        g = ctx.geometry
        out = []
        for primary in unique:
            others = [c for c in categories if c != primary]
            pairs = {c: g.closest_pair(primary, c) for c in others}  # (distance, box of primary, box of c)
            distance = {c: pairs[c][0] for c in others}
            for choice in combinations(others, self.num_choices):
                d = np.array([distance[c] for c in choice])
                gaps = np.abs(d[:, None] - d[None, :])[np.triu_indices(len(d), k=1)]
                if d.min() < MIN_CLOSEST or np.any(gaps <= tau):
                    continue
                answer = choice[int(np.argmin(d))]
                evidence = partial(options_evidence, g, [pairs[c] for c in choice], choice)
                out.append(Candidate(templates.listing_choices(templates.OBJ_REL_DISTANCE, category=primary),
                                     answer, list(choice), extra={"category": primary}, evidence=evidence))
        return out


def options_evidence(g, pairs: list[tuple[float, int, int]], choice: tuple[str, ...]) -> Evidence:
    """The object, each option's closest instance and the segment to it, from the options' (distance, box of the
    object, box of the option) in a ``SceneGeometry``."""
    return Evidence(objects=[g.object_ref(pairs[0][1]), *(g.object_ref(j) for _, _, j in pairs)],
                    segments=[(f"{c} {d:.2f} m", *g.closest_points(i, j)) for c, (d, i, j) in zip(choice, pairs)])


class ObjectRelDistance(_ObjectRelDistance):
    name = question_type = "object_rel_distance"
    num_choices = 4


class ObjectRelDistanceV2(_ObjectRelDistance):
    """Three-choice training variant."""

    name = question_type = "object_rel_distance_v2"
    num_choices, in_benchmark = 3, False


class ObjectRelDistanceV3(_ObjectRelDistance):
    """Two-choice training variant."""

    name = question_type = "object_rel_distance_v3"
    num_choices, in_benchmark = 2, False
