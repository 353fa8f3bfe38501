"""``vlm3r serve``: VLM-3R behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vlm3r.cli.errors import guarded
from vlm3r.cli.options import BaseFolder, Cut3rWeights, Device, Dtype, ModelFolder, ModelFrames, VisionTower
from vlm3r.utils.devices import AUTO


@guarded
def serve(
    *,
    model: ModelFolder,
    base: BaseFolder = None,
    cut3r: Cut3rWeights = None,
    vision_tower: VisionTower = None,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless told otherwise)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    video_root: list[Path] = typer.Option([], "--video-root", help="Folder whose videos file:// URLs may name "
                                                                   "(repeatable; none: only uploads)."),
    max_upload_mb: int = typer.Option(512, "--max-upload-mb", min=1, help="Largest video upload, in MB."),
    cache_mb: int = typer.Option(4096, "--cache-mb", min=0, help="Memory for encoded videos and their prefilled "
                                                                 "prompts, in MB (least recently used go first)."),
    upload_dir: Path = typer.Option(None, "--upload-dir", help="Where uploads are kept (default: a temporary "
                                                               "folder, removed when the server stops)."),
    api_key: str = typer.Option(None, "--api-key", envvar="VLM3R_API_KEY", help="Refuse requests without "
                                                                                "'Authorization: Bearer KEY' "
                                                                                "(or set VLM3R_API_KEY)."),
    served_model_name: str = typer.Option(None, "--served-model-name", help="The model id that requests name and "
                                                                           "GET /v1/models lists (default: the "
                                                                           "--model folder's name)."),
    frames: ModelFrames = None,
    dtype: Dtype = AUTO,
    device: Device = AUTO,
) -> None:
    """Serve VLM-3R with the OpenAI chat API (POST /v1/chat/completions, POST /v1/videos, GET /v1/models,
    GET /health); encoded videos and their prompt prefixes stay cached across requests.

    Example: vlm3r serve --model vlm-3r-llava-qwen2-lora --base LLaVA-NeXT-Video-7B-Qwen2 --cut3r cut3r_512_dpt_4_64.pth
    --video-root /data/videos --device cuda --api-key secret --served-model-name vlm-3r
    """
    from vlm3r.model.pipeline import Vlm3rPipeline
    from vlm3r.serve.server import ServeOptions, run_server

    for root in video_root:
        if not root.is_dir():
            raise typer.BadParameter(f"{root}: not a folder", param_hint="--video-root")
    options = ServeOptions(host, port, list(video_root), upload_dir, max_upload_mb, cache_mb, api_key,
                           served_model_name)
    pipeline = Vlm3rPipeline.from_options(model, cut3r, base, vision_tower, dtype=dtype, device=device, frames=frames,
                                          max_cache_bytes=options.cache_bytes)
    Console(stderr=True).print(str(pipeline.placement))
    Console(stderr=True).print(f"serving {options.served_id(model)} on http://{host}:{port}/v1 (Ctrl-C stops)")
    run_server(pipeline, options, model.name)
