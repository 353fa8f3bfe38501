"""``vlm3r scenes ...``: build, synthesise, inspect and draw scenes and their metadata."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vlm3r.cli.errors import check_output, guarded, report_failure
from vlm3r.cli.options import Workers
from vlm3r.scene import (MetadataError, category_totals, detect_metadata_kind, read_frame_metadata,
                         read_scene_metadata)
from vlm3r.utils.frames import NUM_FRAMES
from vlm3r.utils.progress import progress_bar

app = typer.Typer(help="Scenes: synthesise them, inspect their metadata, look at them.", no_args_is_help=True)


@app.command("info")
@guarded
def info(
    file: Path = typer.Argument(..., help="A scene metadata or frame metadata JSON file (any supported variant)."),
    scene: str = typer.Option(None, "--scene", help="Show the objects of this scene only."),
    max_scenes: int = typer.Option(30, help="Scenes listed in the overview table (the totals cover all)."),
) -> None:
    """Print the scenes of a metadata file, their room sizes and their object counts per category.

    Example: vlm3r scenes info data/processed/scannet/metadata/val/scannet_metadata_val.json
    """
    console = Console()
    if detect_metadata_kind(file) == "frame":
        print_frame_metadata(console, file, scene, max_scenes)
    else:
        print_scene_metadata(console, file, scene, max_scenes)


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
    totals = Table("category", "instances", "scenes")
    for category, count, holding in category_totals(scenes.values()):
        totals.add_row(category, str(count), str(holding))
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


def _parse_size(text: str, option: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}", param_hint=option) from exc
    return width, height


@app.command("synth")
@guarded
def synth(
    out: Path = typer.Option(..., "--out", help="Dataset folder to write (the processed-dataset layout)."),
    num_scenes: int = typer.Option(..., "--num-scenes", help="How many scenes to generate."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed gives byte-identical files."),
    frames: int = typer.Option(NUM_FRAMES, "--frames", help="Frames sampled uniformly from each video."),
    video_frames: int = typer.Option(240, "--video-frames", help="Video length in frames (24 fps)."),
    size: str = typer.Option("640x480", "--size", help="Size of the sampled frames, WIDTHxHEIGHT."),
    video_size: str = typer.Option("320x240", "--video-size", help="Size of the video, WIDTHxHEIGHT."),
    split: str = typer.Option("train", "--split", help="Split name used in the layout's paths."),
) -> None:
    """Generate synthetic indoor scenes with their scene and frame metadata.

    Example: vlm3r scenes synth --out data/synthetic --num-scenes 20 --seed 0
    """
    from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset

    config = SynthConfig(num_frames=frames, video_frames=video_frames, frame_size=_parse_size(size, "--size"),
                         video_size=_parse_size(video_size, "--video-size"), split=split)
    check_output(out, folder=True)
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=num_scenes * video_frames)
        layout = generate_dataset(out, num_scenes, seed, config,
                                  progress=lambda scene, n: bar.update(task, advance=n, description=scene))
    Console().print(f"wrote {num_scenes} scenes to {out}\n  scene metadata: {layout.scene_metadata_path}\n"
                    f"  frame metadata: {layout.frame_metadata_path}")


@app.command("show")
@guarded
def show(
    scene_dir: Path = typer.Argument(..., help="DATASET_ROOT/SCENE_NAME of a processed dataset."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
) -> None:
    """Draw a scene: top-down map (room, labelled boxes, camera path) beside its sampled frames.

    Example: vlm3r scenes show data/synthetic/synth0_0000 --out scene.png
    """
    from vlm3r.viz.scene_view import find_scene, render_scene_overview

    check_output(out)
    layout, scene = find_scene(scene_dir)
    render_scene_overview(layout, scene, out)
    Console().print(f"wrote {out}")


@app.command("metadata")
@guarded
def metadata(
    dataset: str = typer.Option(..., "--dataset", help="scannet, scannetpp, arkitscenes or synthetic."),
    root: Path = typer.Option(..., "--root", help="The dataset's raw folder (the processed folder for synthetic)."),
    out: Path = typer.Option(None, "--out", help="Processed folder to write (default: --root, for synthetic)."),
    split: str = typer.Option("train", "--split", help="train or val."),
    workers: Workers = 1,
) -> None:
    """Turn a dataset into the processed layout and its scene and frame metadata; resumable, failures listed.

    Example: vlm3r scenes metadata --dataset scannet --root /data/ScanNet --split val --out data/processed/scannet
    """
    from vlm3r.datasets.metadata import ADAPTERS, build_dataset_metadata

    console = Console()
    if dataset not in ADAPTERS:
        raise typer.BadParameter(f"one of {', '.join(sorted(ADAPTERS))}", param_hint="--dataset")
    out = out or root
    check_output(out, folder=True, option="--out" if out is not root else "--root")
    with progress_bar() as bar:
        task = bar.add_task("scenes", total=None)
        result = build_dataset_metadata(dataset, root, out, split, workers,
                                        progress=lambda scene: bar.update(task, advance=1, description=scene))
    console.print(f"{len(result.scenes)} scenes in the metadata ({len(result.prepared)} prepared now)\n"
                  f"  scene metadata: {result.layout.scene_metadata_path}\n"
                  f"  frame metadata: {result.layout.frame_metadata_path}")
    if result.failures:
        for scene, reason in sorted(result.failures.items()):
            report_failure("failed", scene, reason)
        console.print(f"{len(result.failures)} scenes failed; listed in {result.failures_path}")
        raise typer.Exit(code=1)
