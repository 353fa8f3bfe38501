"""``vlm3r ask``: answer a question about a video or an image sequence with VLM-3R."""

from __future__ import annotations


import typer

from vlm3r.cli.errors import guarded
from vlm3r.cli.options import (BaseFolder, Cut3rWeights, Device, Dtype, MaxNewTokens, ModelFolder, ModelFrames,
                               VisionTower)
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.utils.devices import AUTO


@guarded
def ask(
    arguments: list[str] = typer.Argument(..., metavar="[VIDEO] QUESTION",
                                          help="The video and the question, e.g. room.mp4 \"How far is the sofa from "
                                               "the tv?\"; with --images, the question only."),
    *,
    images: list[str] = typer.Option(None, "--images", help="Images instead of a video: a folder (its images in "
                                                            "file-name order), a glob pattern or image files; "
                                                            "repeat for several."),
    as_video: bool = typer.Option(False, "--as-video", help="With --images: as a video's sampled frames (pooled, one "
                                                            "<image>) instead of the reference's image layout (each "
                                                            "image its own <image>, 756 tokens each)."),
    as_stored: bool = typer.Option(False, "--as-stored", help="A rotated video (a phone's) as stored in the file, "
                                                              "sideways, as the reference's decoder reads it; "
                                                              "default: upright, as players show it."),
    model: ModelFolder,
    cut3r: Cut3rWeights = None,
    base: BaseFolder = None,
    vision_tower: VisionTower = None,
    frames: ModelFrames = None,
    dtype: Dtype = AUTO,
    device: Device = AUTO,
    max_new_tokens: MaxNewTokens = MAX_NEW_TOKENS,
) -> None:
    """Answer a spatial question about a video, in the prompt the model was trained with (its config.json records
    it; a released model: the question as given), or about an image sequence as the reference's image demo asks
    (--images). The answer goes to standard output; what ran and a warning for an empty answer go to standard
    error.

    Example: vlm3r ask --model vlm-3r-llava-qwen2-lora --base LLaVA-NeXT-Video-7B-Qwen2 --cut3r cut3r_512_dpt_4_64.pth
    room.mp4 "How far is the sofa from the tv (in meters)?"; images: vlm3r ask --model ... --images scan_frames/
    "How many chairs are there?"
    """
    from vlm3r.model.pipeline import EMPTY_ANSWER, AskRequest, Vlm3rPipeline

    request = AskRequest.from_arguments(arguments, images, as_video)
    pipeline = Vlm3rPipeline.from_options(model, cut3r, base, vision_tower, dtype=dtype, device=device, frames=frames,
                                          upright=not as_stored)
    typer.echo(pipeline.placement, err=True)
    answer = request.answer(pipeline, max_new_tokens)
    if answer:
        typer.echo(answer)  # as generated: no markup, no re-wrapping
    else:
        typer.echo(f"warning: {EMPTY_ANSWER}", err=True)
