"""``vlm3r scenes ...``: inspect scene and frame metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vlm3r.scene import MetadataError, detect_metadata_kind, read_frame_metadata, read_scene_metadata

app = typer.Typer(help="Scene metadata: inspect, and (later) build or synthesise scenes.", no_args_is_help=True)


@app.command("info")
def info(
    file: Path = typer.Argument(..., help="A scene metadata or frame metadata JSON file (any supported variant)."),
    scene: str = typer.Option(None, "--scene", help="Show the objects of this scene only."),
    max_scenes: int = typer.Option(30, help="Scenes listed in the overview table (the totals cover all)."),
) -> None:
    """Print the scenes of a metadata file, their room sizes and their object counts per category.

    Example: vlm3r scenes info data/processed/scannet/metadata/val/scannet_metadata_val.json
    """
    console = Console()
    try:
        kind = detect_metadata_kind(file)
        if kind == "frame":
            print_frame_metadata(console, file, scene, max_scenes)
        else:
            print_scene_metadata(console, file, scene, max_scenes)
    except MetadataError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc


def print_scene_metadata(console: Console, file: Path, only_scene: str | None, max_scenes: int) -> None:
    metadata = read_scene_metadata(file)
    scenes = metadata.scenes
    if only_scene is not None:
        if only_scene not in scenes:
            raise MetadataError(file, f"no scene named {only_scene!r} (it has {len(scenes)} scenes)")
        scenes = {only_scene: scenes[only_scene]}
    console.print(f"[bold]{file}[/bold]: scene metadata ({metadata.format.value} variant), {len(scenes)} scenes")
    overview = Table("scene", "dataset", "room m²", "objects", "categories", "unique categories")
    for scene in list(scenes.values())[:max_scenes]:
        overview.add_row(scene.scene_name, scene.dataset or "-", f"{scene.room_size:.1f}",
                         str(sum(scene.object_counts.values())), str(len(scene.object_counts)),
                         str(len(scene.unique_categories())))
    console.print(overview)
    if len(scenes) > max_scenes:
        console.print(f"... and {len(scenes) - max_scenes} more scenes")
    instances, scene_counts = Counter(), Counter()
    for scene in scenes.values():
        for category, count in scene.object_counts.items():
            instances[category] += count
            scene_counts[category] += 1
    totals = Table("category", "instances", "scenes")
    for category, count in sorted(instances.items(), key=lambda kv: (-kv[1], kv[0])):
        totals.add_row(category, str(count), str(scene_counts[category]))
    console.print(totals)
    sizes = [s.room_size for s in scenes.values()]
    if sizes:
        console.print(f"room size m²: min {min(sizes):.1f}, mean {sum(sizes) / len(sizes):.1f}, max {max(sizes):.1f}")


def print_frame_metadata(console: Console, file: Path, only_scene: str | None, max_scenes: int) -> None:
    scenes = read_frame_metadata(file)
    if only_scene is not None:
        if only_scene not in scenes:
            raise MetadataError(file, f"no scene named {only_scene!r} (it has {len(scenes)} scenes)")
        scenes = {only_scene: scenes[only_scene]}
    console.print(f"[bold]{file}[/bold]: frame metadata, {len(scenes)} scenes")
    table = Table("scene", "frames", "image", "fx", "fy", "instances seen", "frames without boxes")
    for frames in list(scenes.values())[:max_scenes]:
        seen = set().union(*(f.visible_instances for f in frames.frames)) if frames.frames else set()
        table.add_row(frames.scene_name, str(len(frames.frames)), f"{frames.image_width}x{frames.image_height}",
                      f"{frames.intrinsics.fx:.1f}", f"{frames.intrinsics.fy:.1f}", str(len(seen)),
                      str(sum(1 for f in frames.frames if not f.bboxes_2d)))
    console.print(table)
    if len(scenes) > max_scenes:
        console.print(f"... and {len(scenes) - max_scenes} more scenes")
