"""``vlm3r cut3r ...``: use the CUT3R spatial encoder on its own."""

from __future__ import annotations

from pathlib import Path

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
    cut3r: Path = typer.Option(..., "--cut3r", help="CUT3R weights with the reconstruction heads: the released "
                                                    "cut3r_512_dpt_4_64.pth (a training run's cut3r.pth has no "
                                                    "heads), or a .safetensors with --config."),
    out: Path = typer.Option(..., "--out", help="Point cloud .ply to write (x y z red green blue); the cameras go "
                                                "to <out>.cameras.json."),
    config: Path = typer.Option(None, "--config", help="JSON architecture config (needed for .safetensors)."),
    frames: int = typer.Option(NUM_FRAMES, "--frames", min=1, help="Frames sampled uniformly from the video."),
    keep: float = typer.Option(0.5, "--keep", help="Share of points kept, most confident first (0-1]."),
    device: Device = "cpu",
    dtype: Dtype = "fp32",
) -> None:
    """Reconstruct a video: a coloured point cloud in the first camera's frame plus the cameras.

    Coordinates are in metres, as CUT3R's metric-scale training gives them, not calibrated (points and camera
    positions alike). The released CUT3R takes about 14 s per frame on 2 CPU cores (docs/cut3r.md).

    Example: vlm3r cut3r reconstruct room.mp4 --cut3r cut3r_512_dpt_4_64.pth --out room.ply --frames 16
    """
    from vlm3r.model.cut3r.reconstruction import UNIT_SYMBOL, UNITS
    from vlm3r.utils.progress import progress_bar
    from vlm3r.viz.reconstruction import cameras_path, reconstruct_to_files

    console = Console()
    check_output(out)
    check_output(cameras_path(out))
    with progress_bar() as bar:
        task = bar.add_task("loading CUT3R", total=None)

        def advance(done: int, total: int) -> None:
            what = f"encoding {total} frames" if done == 0 else "reconstructing"
            bar.update(task, completed=done, total=total, description=what)

        result = reconstruct_to_files(video, cut3r, out, config, frames, keep, device, dtype, advance)
    console.print(f"wrote {len(result.points)} points to {out} and {len(result.frame_indices)} cameras to "
                  f"{cameras_path(out)} (camera path {result.path_length:.2f} {UNIT_SYMBOL})")
    console.print(f"units: {UNITS}")
    if result.non_finite:
        console.print(f"[yellow]{result.non_finite} points with non-finite coordinates were left out[/yellow]")
