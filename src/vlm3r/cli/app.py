"""``vlm3r app``: scenes, questions, reconstructions and answers in 3D, in the browser."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vlm3r.cli.errors import guarded
from vlm3r.cli.options import BaseFolder, Cut3rWeights, Device, Dtype, ModelFrames, VisionTower
from vlm3r.utils.devices import AUTO


@guarded
def app(
    *,
    data: list[Path] = typer.Option([], "--data", help="A processed dataset's root (make demo's demo_out/synthetic, or "
                                                      "vlm3r scenes metadata output); repeatable."),
    qa: list[Path] = typer.Option([], "--qa", help="A question file (vlm3r qa generate's .jsonl); repeatable."),
    run: list[Path] = typer.Option([], "--run", help="An eval run folder: each question shows the model's answer "
                                                     "and score; repeatable."),
    model: Path = typer.Option(None, "--model", help="A VLM-3R model folder, to ask questions in the Ask tab."),
    base: BaseFolder = None,
    cut3r: Cut3rWeights = None,
    vision_tower: VisionTower = None,
    frames: ModelFrames = None,
    dtype: Dtype = AUTO,
    device: Device = AUTO,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless told otherwise)."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, help="Port to listen on."),
    max_upload_mb: int = typer.Option(512, "--max-upload-mb", min=1, help="Largest upload in the Ask tab, in MB."),
) -> None:
    """Open scenes, questions and answers in a web page: Scenes (points, labelled boxes, room, camera path and
    frustums in 3D, beside the frames and their 2D boxes), Questions (a question's evidence drawn in its scene,
    with an eval run's answers and scores) and Ask (a loaded model's streamed answers, and CUT3R's reconstruction
    of the video with --cut3r). Ctrl-C stops it.

    Example: vlm3r app --data demo_out/synthetic --qa demo_out/qa.jsonl (after make demo), then open
    http://127.0.0.1:7860
    """
    from vlm3r.app.server import AppOptions, start_app

    options = AppOptions(list(data), list(qa), list(run), model, base, cut3r, vision_tower, frames, dtype, device,
                         host, port, max_upload_mb)
    Console(stderr=True).print(f"vlm3r app on http://{host}:{port} (Ctrl-C stops it)")
    start_app(options, block=True)
