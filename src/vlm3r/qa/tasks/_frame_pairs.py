"""Pairs of sampled frames for the sequence tasks, with their "frame i" ... "frame j of N" descriptions."""

from __future__ import annotations

from collections.abc import Iterator

from vlm3r.qa import templates
from vlm3r.qa.task import SceneContext, SkipScene
from vlm3r.scene import FrameMeta

MIN_SPAN, MAX_SPAN = 5, 30  # frames apart, among the sampled frames


def span_frames(ctx: SceneContext) -> list[FrameMeta]:
    """The scene's sampled frames, for a task about frames MIN_SPAN or more apart (SkipScene when too few)."""
    frames = ctx.require_frames().frames
    if len(frames) <= MIN_SPAN:
        raise SkipScene(f"needs more than {MIN_SPAN} sampled frames, has {len(frames)}")
    return frames


def frame_pairs(frames: list[FrameMeta], min_span: int = MIN_SPAN, max_span: int | None = MAX_SPAN
                ) -> Iterator[tuple[int, int]]:
    """Rank pairs (i, j), i < j, whose distance in sampled frames is within [min_span, max_span]."""
    for i in range(len(frames)):
        stop = len(frames) if max_span is None else min(len(frames), i + max_span + 1)
        for j in range(i + min_span, stop):
            yield i, j


def pair_descriptions(i: int, j: int, total: int) -> dict[str, str]:
    return {"start_frame_description": f"frame {i + 1}",
            "end_frame_description": templates.frame_description(j, total)}
