"""What the commands print, as rich renderables: the overview of a scene or frame metadata file, the distances
between a scene's unique objects, a question file's statistics and the tasks that gave none, a score report's
tables; and the console they print them to. The commands print them and hold no logic of their own. No table
cuts a cell short (see ``_table`` and ``output_console``)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Column, Table

from vlm3r.eval.qa3d import Qa3dReport
from vlm3r.eval.qa3d_report import HEADINGS
from vlm3r.eval.report import fmt
from vlm3r.qa.stats import TaskStats
from vlm3r.scene import MetadataError, SceneMeta, category_totals, read_frame_metadata, read_scene_metadata


PIPED_WIDTH = 200  # characters per line of output that is not a terminal (a pipe, a file), unless COLUMNS says


def output_console() -> Console:
    """The console a command prints to. Writing to a terminal, its width; otherwise ``PIPED_WIDTH`` (or COLUMNS
    when set), not rich's fallback of 80 columns, at which a score table's ten columns fold their headers and a
    question file's statistics wrap every row."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def _table(*headers: str, names: int = 1, title: str | None = None) -> Table:
    """A table whose first ``names`` columns (scene, category, object or question type names) stay on one line and
    whose other cells wrap, never cut: rich's default cuts a word wider than its column with an ellipsis, so that
    at 80 columns (a terminal's, or rich's width for output that is not a terminal, such as a pipe)
    object_rel_direction_easy, _medium and _hard all read ``object_rel_dire…``. A name column shrinks only
    when the names alone are wider than the console."""
    return Table(*(Column(h, no_wrap=True) if i < names else Column(h, overflow="fold") for i, h in enumerate(headers)),
                 title=title)


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
    overview = _table("scene", "dataset", "room m²", "objects", "categories", "unique categories", names=2)
    for scene in list(scenes.values())[:max_scenes]:
        overview.add_row(scene.scene_name, scene.dataset or "-", f"{scene.room_size:.1f}",
                         str(sum(scene.object_counts.values())), str(len(scene.object_counts)),
                         str(len(scene.unique_categories())))
    totals = _table("category", "instances", "scenes")
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
    table = _table("scene", "frames", "image", "fx", "fy", "instances seen", "frames without boxes")
    for frames in list(scenes.values())[:max_scenes]:
        seen = set().union(*(f.visible_instances for f in frames.frames)) if frames.frames else set()
        table.add_row(frames.scene_name, str(len(frames.frames)), f"{frames.image_width}x{frames.image_height}",
                      f"{frames.intrinsics.fx:.1f}", f"{frames.intrinsics.fy:.1f}", str(len(seen)),
                      str(sum(1 for f in frames.frames if not f.bboxes_2d)))
    return [f"[bold]{file}[/bold]: frame metadata, {len(scenes)} scenes", table, *_more(scenes, max_scenes)]


def distance_table(scene: SceneMeta) -> Table:
    """Exact closest distances between the scene's unique objects, nearest pairs first."""
    table = _table("object", "object", "closest distance (m)", names=2, title=f"{scene.scene_name}: unique objects")
    for a, b, distance in scene.unique_object_distances():
        table.add_row(a, b, f"{distance:.2f}")
    return table


def score_tables(report, title: str, written: list[Path] = ()) -> list:
    """A score report: the benchmark's overall and paper columns, then every question type with its count, the
    question types it ignored, and the files ``written`` with the number of questions scored (a ScanQA or SQA3D
    score: ``qa3d_score_tables``)."""
    if isinstance(report, Qa3dReport):
        return qa3d_score_tables(report, title, written)
    table = _table("", "overall", *report.columns, title=title)
    table.add_row(report.benchmark, fmt(report.overall), *(fmt(v) for v in report.columns.values()))
    detail = _table("question type", "questions", "score")
    for question_type, count in report.counts.items():
        detail.add_row(question_type, str(count), fmt(report.per_question_type[question_type]))
    ignored = ([f"ignored (not in {report.benchmark}): {', '.join(report.ignored_question_types)}"]
               if report.ignored_question_types else [])
    files = ([f"wrote {', '.join(str(p) for p in written)} ({report.n} {report.benchmark} questions scored)"]
             if written else [])
    return [table, detail, *ignored, *files]


def qa3d_score_tables(report: Qa3dReport, title: str, written: list[Path] = ()) -> list:
    """A ScanQA or SQA3D score: the overall metrics, then every question type with its count and metrics (in
    points, as the reference prints them), what was not computed, and the files ``written``."""
    metrics = list(report.overall)
    table = _table("", *(HEADINGS[m] for m in metrics), title=title)
    table.add_row(report.benchmark, *(f"{report.overall[m]:.2f}" for m in metrics))
    detail = _table("question type", "questions", *(HEADINGS[m] for m in metrics))
    for kind, count in report.counts.items():
        detail.add_row(kind, str(count), *(f"{report.per_type[kind][m]:.2f}" for m in metrics))
    absent = [f"not computed: {', '.join(report.absent)}"] if report.absent else []
    files = ([f"wrote {', '.join(str(p) for p in written)} ({report.n} {report.benchmark} questions scored)"]
             if written else [])
    return [table, detail, *absent, *files]


def qa_stats_summary(stats: list[TaskStats]) -> list:
    """A question file's statistics (``qa.stats.qa_stats``): per question type its questions, scenes, the share
    of each correct letter and its most frequent answers (or the range of numeric ones), then the total."""
    table = _table("question type", "questions", "scenes", "correct letter", "answers (top 5) / range")
    for s in stats:
        letters = " ".join(f"{k}:{v / s.count:.0%}" for k, v in s.letters.items())
        answers = (f"{s.numeric['min']:g} .. {s.numeric['max']:g} (mean {s.numeric['mean']:.2f})" if s.numeric
                   else ", ".join(f"{k} {v}" for k, v in s.answers.items()))
        table.add_row(s.question_type, str(s.count), str(s.scenes), letters, answers)
    return [table, f"{sum(s.count for s in stats)} questions"]


def skip_table(summary: list[tuple[str, str, int]], details: Path) -> Table:
    """The (task, reason, scenes) that gave no questions (``qa.generate.skip_summary``), their file named."""
    table = _table("task", "reason", "scenes", title=f"no questions (details in {details})")
    for task_name, reason, n in summary:
        table.add_row(task_name, reason, str(n))
    return table
