"""``vlm3r ask``: answer a question about a video with VLM-3R."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def ask(
    video: Path = typer.Argument(..., help="The video."),
    question: str = typer.Argument(..., help="The question, e.g. \"How far is the sofa from the tv?\""),
    model: Path = typer.Option(..., "--model", help="VLM-3R folder (config.json, adapter, non_lora_trainables.bin)."),
    cut3r: Path = typer.Option(None, "--cut3r", help="CUT3R weights (cut3r_512_dpt_4_64.pth); a folder written by "
                                                     "vlm3r train names its own."),
    base: Path = typer.Option(None, "--base", help="LLaVA-Video-7B-Qwen2 folder (for a LoRA release); a folder "
                                                   "written by vlm3r train names its own."),
    vision_tower: Path = typer.Option(None, "--vision-tower", help="Folder with the SigLIP tower's config.json, "
                                                                   "when config.json's mm_vision_tower is not a "
                                                                   "local folder, cached, or so400m."),
    frames: int = typer.Option(None, "--frames", help="Frames sampled uniformly from the video (default: the "
                                                      "model's, 32 for the released one)."),
    dtype: str = typer.Option("bf16", "--dtype", help="fp32, bf16 or fp16."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", help="Longest answer in tokens."),
) -> None:
    """Answer a spatial question about a video.

    Example: vlm3r ask --model vlm-3r-llava-qwen2-lora --base LLaVA-Video-7B-Qwen2 --cut3r cut3r_512_dpt_4_64.pth
    room.mp4 "How far is the sofa from the tv (in meters)?"
    """
    import torch

    from vlm3r.model.checkpoint import CheckpointError
    from vlm3r.model.config import ConfigError
    from vlm3r.model.pipeline import Vlm3rPipeline
    from vlm3r.utils.video import VideoError

    console = Console()
    if dtype not in DTYPES:
        raise typer.BadParameter(f"one of {', '.join(DTYPES)}", param_hint="--dtype")
    try:
        pipeline = Vlm3rPipeline.from_pretrained(model, cut3r, base, getattr(torch, DTYPES[dtype]), device, frames,
                                                 vision_tower)
        console.print(pipeline.ask(video, question, max_new_tokens))
    except (CheckpointError, ConfigError, VideoError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
