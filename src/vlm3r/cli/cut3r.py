"""``vlm3r cut3r ...``: use the CUT3R spatial encoder on its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from vlm3r.cli.errors import check_output, guarded
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
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16 or fp16."),
) -> None:
    """Reconstruct a video: coloured point cloud in the first camera's frame plus the camera path.

    Example: vlm3r cut3r reconstruct room.mp4 --cut3r cut3r_512_dpt_4_64.pth --out room.ply --frames 16
    """
    import torch

    from vlm3r.datasets.pointcloud import LabelledPoints, write_point_cloud
    from vlm3r.model.cut3r import load_cut3r, read_architecture_file
    from vlm3r.model.cut3r.geometry import pose_to_matrix
    from vlm3r.model.video import cut3r_pixels, siglip_pixels
    from vlm3r.utils.devices import check_device
    from vlm3r.utils.devices import torch_dtype as parse_dtype
    from vlm3r.utils.fileio import atomic_write_text
    from vlm3r.utils.video import read_video_frames

    console = Console()
    if not 0 < keep <= 1:
        raise typer.BadParameter("must be in (0, 1]", param_hint="--keep")
    torch_dtype, device = parse_dtype(dtype), check_device(device)
    check_output(out)
    config_dict = read_architecture_file(config)
    model = load_cut3r(cut3r, config=config_dict, device=device, dtype=torch_dtype, with_heads=True)
    rgb, indices, _ = read_video_frames(video, frames)
    pixels = cut3r_pixels(siglip_pixels(rgb)).to(device=device, dtype=torch_dtype)
    with console.status(f"reconstructing {len(indices)} frames"):
        _, _, heads = model.reconstruct(pixels)
    points = torch.cat([h.pts3d_in_other_view[0].reshape(-1, 3) for h in heads]).float().cpu().numpy()
    confidence = torch.cat([h.conf[0].reshape(-1) for h in heads]).float().cpu().numpy()
    colours = ((pixels.float().cpu().permute(0, 2, 3, 1).reshape(-1, 3).numpy() + 1) * 127.5).round()
    finite = np.isfinite(points).all(axis=1) & np.isfinite(confidence)
    order = np.argsort(-np.where(finite, confidence, -np.inf), kind="stable")
    chosen = order[: max(1, int(round(keep * len(confidence))))]
    chosen = chosen[finite[chosen]]
    poses = pose_to_matrix(torch.cat([h.camera_pose for h in heads]).float()).cpu().numpy()
    write_point_cloud(out, LabelledPoints(points[chosen], colours[chosen].astype(np.uint8),
                                          np.zeros(len(chosen), int), np.zeros(len(chosen), int)))
    cameras = out.with_suffix(".cameras.json")
    atomic_write_text(cameras, json.dumps({"frame_indices": indices.tolist(),
                                           "camera_to_world": poses.tolist()}, indent=1))
    path = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1).sum()
    console.print(f"wrote {len(chosen)} points to {out} and {len(poses)} cameras to {cameras} "
                  f"(camera path {path:.2f} model units)")
    if not finite.all():
        console.print(f"[yellow]{int((~finite).sum())} points with non-finite coordinates were left out[/yellow]")

