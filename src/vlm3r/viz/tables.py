"""What the commands print, as rich renderables: the overview of a scene or frame metadata file, the distances
between a scene's unique objects, a score report's tables. The commands print them and hold no logic of their
own."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from vlm3r.eval.report import fmt
from vlm3r.scene import MetadataError, SceneMeta, category_totals, read_frame_metadata, read_scene_metadata


def _only(scenes: dict, file: Path, only_scene: str | None) -> dict:
    if only_scene is None:
        return scenes
    if only_scene not in scenes:
        raise MetadataError(file, f"no scene named {only_scene!r} (it has {len(scenes)} scenes)")
    return {only_scene: scenes[only_scene]}


def _more(scenes: dict, shown: int) -> list[str]:
    return [f"... and {len(scenes) - shown} more scenes"] if len(scenes) > shown else []


def scene_metadata_summary(file: Path, only_scene: str | None, max_scenes: int) -> list:
    """A scene metadata file: its scenes (the first ``max_scenes``; room size, objects), the totals per category
    over all of them, and the range of room sizes."""
    metadata = read_scene_metadata(file)
    scenes = _only(metadata.scenes, file, only_scene)
    overview = Table("scene", "dataset", "room m²", "objects", "categories", "unique categories")
    for scene in list(scenes.values())[:max_scenes]:
        overview.add_row(scene.scene_name, scene.dataset or "-", f"{scene.room_size:.1f}",
                         str(sum(scene.object_counts.values())), str(len(scene.object_counts)),
                         str(len(scene.unique_categories())))
    totals = Table("category", "instances", "scenes")
    for category, count, holding in category_totals(scenes.values()):
        totals.add_row(category, str(count), str(holding))
    sizes = [s.room_size for s in scenes.values()]
    spread = ([f"room size m²: min {min(sizes):.1f}, mean {sum(sizes) / len(sizes):.1f}, max {max(sizes):.1f}"]
              if sizes else [])
    return [f"[bold]{file}[/bold]: scene metadata ({metadata.format.value} variant), {len(scenes)} scenes",
            overview, *_more(scenes, max_scenes), totals, *spread]


def frame_metadata_summary(file: Path, only_scene: str | None, max_scenes: int) -> list:
    """A frame metadata file: per scene (the first ``max_scenes``) its frames, image size, focal lengths, the
    instances its frames show and the frames without 2D boxes."""
    scenes = _only(read_frame_metadata(file), file, only_scene)
    table = Table("scene", "frames", "image", "fx", "fy", "instances seen", "frames without boxes")
    for frames in list(scenes.values())[:max_scenes]:
        seen = set().union(*(f.visible_instances for f in frames.frames)) if frames.frames else set()
        table.add_row(frames.scene_name, str(len(frames.frames)), f"{frames.image_width}x{frames.image_height}",
                      f"{frames.intrinsics.fx:.1f}", f"{frames.intrinsics.fy:.1f}", str(len(seen)),
                      str(sum(1 for f in frames.frames if not f.bboxes_2d)))
    return [f"[bold]{file}[/bold]: frame metadata, {len(scenes)} scenes", table, *_more(scenes, max_scenes)]


def distance_table(scene: SceneMeta) -> Table:
    """Exact closest distances between the scene's unique objects, nearest pairs first."""
    table = Table("object", "object", "closest distance (m)", title=f"{scene.scene_name}: unique objects")
    for a, b, distance in scene.unique_object_distances():
        table.add_row(a, b, f"{distance:.2f}")
    return table


def score_tables(report, title: str, written: list[Path] = ()) -> list:
    """A score report: the benchmark's overall and paper columns, then every question type with its count, the
    question types it ignored, and the files ``written``."""
    table = Table("", "overall", *report.columns, title=title)
    table.add_row(report.benchmark, fmt(report.overall), *(fmt(v) for v in report.columns.values()))
    detail = Table("question type", "questions", "score")
    for question_type, count in report.counts.items():
        detail.add_row(question_type, str(count), fmt(report.per_question_type[question_type]))
    ignored = ([f"ignored (not in {report.benchmark}): {', '.join(report.ignored_question_types)}"]
               if report.ignored_question_types else [])
    files = [f"wrote {', '.join(str(p) for p in written)}"] if written else []
    return [table, detail, *ignored, *files]

