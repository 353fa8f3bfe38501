"""``vlm3r ask``: answer a question about a video with VLM-3R."""

from __future__ import annotations

from pathlib import Path

import typer

from vlm3r.cli.errors import guarded


@guarded
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
    frames: int = typer.Option(None, "--frames", min=1, help="Frames sampled uniformly from the video (default: "
                                                             "the model's, 32 for the released one)."),
    dtype: str = typer.Option("bf16", "--dtype", help="fp32, bf16 or fp16."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", min=1, help="Longest answer in tokens."),
) -> None:
    """Answer a spatial question about a video.

    Example: vlm3r ask --model vlm-3r-llava-qwen2-lora --base LLaVA-Video-7B-Qwen2 --cut3r cut3r_512_dpt_4_64.pth
    room.mp4 "How far is the sofa from the tv (in meters)?"
    """
    from vlm3r.model.pipeline import Vlm3rPipeline
    from vlm3r.utils.devices import check_device, torch_dtype

    run_dtype, device = torch_dtype(dtype), check_device(device)
    pipeline = Vlm3rPipeline.from_pretrained(model, cut3r, base, run_dtype, device, frames, vision_tower)
    typer.echo(pipeline.ask(video, question, max_new_tokens))  # as generated: no markup, no re-wrapping
