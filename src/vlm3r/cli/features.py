"""``vlm3r features extract``: precomputed CUT3R tokens for training (``vlm3r.training.extraction`` does the
work)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vlm3r.cli.errors import check_output, guarded, report_failure
from vlm3r.cli.options import Device, Dtype
from vlm3r.utils.frames import CUT3R_IMAGE_SIZE, NUM_FRAMES, SIGLIP_IMAGE_SIZE

app = typer.Typer(help="Precomputed CUT3R tokens for training.", no_args_is_help=True)


@app.command("extract")
@guarded
def extract(
    videos: Path = typer.Option(..., "--videos", help="The video folder training reads (data.video_folder; the "
                                                      "recipes' default is '.'): feature files are named by the "
                                                      "video's path below it. Searched recursively unless --data "
                                                      "is given."),
    data: Path = typer.Option(None, "--data", help="Training data (data.train: LLaVA JSON or YAML list): extract "
                                                   "only the videos it names, each below --videos as training "
                                                   "looks them up."),
    cut3r: Path = typer.Option(..., "--cut3r", help="CUT3R weights (.pth or .safetensors): the model's own."),
    out: Path = typer.Option(..., "--out", help="Feature folder (data.features): <video path>.pt below it."),
    config: Path = typer.Option(None, "--config", help="JSON CUT3R architecture config (needed for .safetensors)."),
    frames: int = typer.Option(NUM_FRAMES, "--frames", min=1,
                               help="Frames per video, as the model is trained and run."),
    image_size: int = typer.Option(SIGLIP_IMAGE_SIZE, "--image-size", min=1,
                                   help="SigLIP input size (frames resized to it)."),
    cut3r_size: int = typer.Option(CUT3R_IMAGE_SIZE, "--cut3r-size", min=1, help="CUT3R input size."),
    shard: str = typer.Option(None, "--shard", help="i/n: the i-th of n independent jobs (under torchrun the "
                                                    "processes split the videos by themselves)."),
    device: Device = "cpu",
    dtype: Dtype = "fp32",
) -> None:
    """Extract CUT3R camera and patch tokens of every video; finished files are skipped, failures listed.

    Training finds a video's file at <data.features>/<its path below data.video_folder>.pt: pass training's
    data.video_folder as --videos and its data.features as --out.

    Example: vlm3r features extract --videos data/scannet --cut3r cut3r_512_dpt_4_64.pth --out data/scannet_features
    (several processes: torchrun --nproc-per-node 8 -m vlm3r features extract ...; the tiny recipe on the demo's
    data: docs/training.md)
    """
    from vlm3r.training.extraction import FAILURES, extract_folder
    from vlm3r.utils.parallel import parse_shard
    from vlm3r.utils.progress import progress_bar

    console = Console()
    if not videos.is_dir():
        raise typer.BadParameter(f"{videos}: not a folder", param_hint="--videos")
    parts = parse_shard(shard)
    check_output(out, folder=True)
    with progress_bar() as bar:
        def start(total: int):
            task = bar.add_task("extracting", total=total)
            return lambda video: bar.update(task, advance=1, description=video.name)

        result = extract_folder(cut3r, videos, out, frames, image_size, cut3r_size, config, device, dtype, parts,
                                start, data)
    report, (index, count) = result.report, result.shard
    part = f" (shard {index}/{count})" if count > 1 else ""
    console.print(f"{len(report.written)} written, {len(report.skipped)} already present, "
                  f"{len(report.failed)} failed{part}")
    for video, reason in report.failed.items():
        report_failure("failed", video, reason)
    if result.failures:
        console.print(f"failures of every shard so far written to {out / FAILURES}")
    if report.failed:
        raise typer.Exit(code=1)
