"""``vlm3r cut3r ...``: use the CUT3R spatial encoder on its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from vlm3r.cli.errors import check_output, guarded
from vlm3r.cli.options import Device, Dtype
from vlm3r.utils.frames import NUM_FRAMES

app = typer.Typer(help="CUT3R, VLM-3R's 3D reconstruction encoder, on its own.", no_args_is_help=True)


@app.command("reconstruct")
@guarded
def reconstruct(
    video: Path = typer.Argument(..., help="Video file (any format PyAV reads)."),
    cut3r: Path = typer.Option(..., "--cut3r", help="CUT3R weights: official .pth or .safetensors."),
    out: Path = typer.Option(..., "--out", help="Point cloud .ply to write (cameras go to <out>.cameras.json)."),
    config: Path = typer.Option(None, "--config", help="JSON architecture config (needed for .safetensors)."),
    frames: int = typer.Option(NUM_FRAMES, "--frames", min=1, help="Frames sampled uniformly from the video."),
    keep: float = typer.Option(0.5, "--keep", help="Share of points kept, most confident first (0-1]."),
    device: Device = "cpu",
    dtype: Dtype = "fp32",
) -> None:
    """Reconstruct a video: a colored point cloud in the first camera's frame plus the camera path.

    Example: vlm3r cut3r reconstruct room.mp4 --cut3r cut3r_512_dpt_4_64.pth --out room.ply --frames 16
    """
    from vlm3r.datasets.pointcloud import LabeledPoints, write_point_cloud
    from vlm3r.model.cut3r import load_cut3r, read_architecture_file
    from vlm3r.model.cut3r.reconstruction import reconstruct_video
    from vlm3r.utils.devices import check_device, torch_dtype
    from vlm3r.utils.fileio import atomic_write_text

    console = Console()
    check_output(out)
    check_output(out.with_suffix(".cameras.json"))
    model = load_cut3r(cut3r, config=read_architecture_file(config), device=check_device(device),
                       dtype=torch_dtype(dtype), with_heads=True)
    with console.status(f"reconstructing {frames} frames"):
        result = reconstruct_video(model, video, frames, keep)
    count = len(result.points)
    write_point_cloud(out, LabeledPoints(result.points, result.colors, np.zeros(count, int), np.zeros(count, int)))
    cameras = out.with_suffix(".cameras.json")
    atomic_write_text(cameras, json.dumps(result.cameras(), indent=1))
    console.print(f"wrote {count} points to {out} and {len(result.frame_indices)} cameras to {cameras} "
                  f"(camera path {result.path_length:.2f} model units)")
    if result.non_finite:
        console.print(f"[yellow]{result.non_finite} points with non-finite coordinates were left out[/yellow]")
