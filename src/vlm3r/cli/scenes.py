"""``vlm3r scenes ...``: build, synthesise, inspect and draw scenes and their metadata."""

from __future__ import annotations

from pathlib import Path

import typer

from vlm3r.cli.errors import check_output, guarded, report_failure
from vlm3r.cli.options import Workers, parse_size
from vlm3r.scene import detect_metadata_kind
from vlm3r.utils.frames import NUM_FRAMES
from vlm3r.utils.progress import progress_bar
from vlm3r.viz.tables import frame_metadata_summary, output_console, scene_metadata_summary

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
    summary = frame_metadata_summary if detect_metadata_kind(file) == "frame" else scene_metadata_summary
    for item in summary(file, scene, max_scenes):
        output_console().print(item)


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

    config = SynthConfig(num_frames=frames, video_frames=video_frames, frame_size=parse_size(size, "--size"),
                         video_size=parse_size(video_size, "--video-size"), split=split)
    check_output(out, folder=True)
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=num_scenes * video_frames)
        layout = generate_dataset(out, num_scenes, seed, config,
                                  progress=lambda scene, n: bar.update(task, advance=n, description=scene))
    output_console().print(f"wrote {num_scenes} scenes to {out}\n  scene metadata: {layout.scene_metadata_path}\n"
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
    output_console().print(f"wrote {out}")


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

    console = output_console()
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
