"""Building and running the server: the pipeline, its engine, the video store and the ASGI app under uvicorn."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.serve.app import ServeSettings, create_app
from vlm3r.serve.engine import Engine
from vlm3r.serve.videos import VideoStore

LOOPBACK = "127.0.0.1"
MB = 1 << 20


@dataclass
class ServeOptions:
    host: str = LOOPBACK
    port: int = 8000
    video_roots: list[Path] = field(default_factory=list)
    upload_dir: Path | None = None  # None: a temporary folder, removed when the server stops
    max_upload_mb: int = 512
    cache_mb: int = 4096  # embeddings and prefixes of recent videos, least recently used evicted first
    api_key: str | None = None
    model_id: str | None = None  # what /v1/models lists (default: the model folder's name)


def build_app(pipeline: Vlm3rPipeline, options: ServeOptions, model_id: str):
    """(app, engine, upload folder to remove or None) for a loaded pipeline."""
    pipeline.caches.max_bytes = options.cache_mb * MB
    temporary = options.upload_dir is None
    upload_dir = Path(tempfile.mkdtemp(prefix="vlm3r-uploads-")) if temporary else options.upload_dir
    store = VideoStore(options.video_roots, upload_dir, options.max_upload_mb * MB)
    engine = Engine(pipeline)
    settings = ServeSettings(options.model_id or model_id, options.api_key, options.max_upload_mb * MB)
    return create_app(engine, store, settings), engine, upload_dir if temporary else None


def run_server(pipeline: Vlm3rPipeline, options: ServeOptions, model_id: str) -> None:
    """Serve until stopped (Ctrl-C, SIGTERM); the engine's thread and a temporary upload folder end with it."""
    import uvicorn

    app, engine, temporary = build_app(pipeline, options, model_id)
    try:
        uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                                      access_log=False)).run()
    finally:
        engine.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
