"""Running ``vlm3r app``: read what it shows, load the model when one is given, build the page and serve it on
loopback unless told otherwise. Uploads are bounded (``max_upload_mb``); the page's files (the 3D views' GLBs) are
written to a temporary folder removed when the app stops, and gradio serves nothing but them and its uploads."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from vlm3r.app.catalog import Catalog, load_catalog
from vlm3r.errors import InputError
from vlm3r.utils.devices import AUTO

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7860  # gradio's usual port
MB = 1 << 20


@dataclass
class AppOptions:
    data: list[Path] = field(default_factory=list)  # processed dataset roots
    qa: list[Path] = field(default_factory=list)  # QA files (vlm3r qa generate)
    runs: list[Path] = field(default_factory=list)  # eval run folders
    model: Path | None = None  # a VLM-3R model folder for the Ask tab
    base: Path | None = None
    cut3r: Path | None = None  # CUT3R weights (with heads: the Ask tab's reconstruction)
    vision_tower: str | None = None
    frames: int | None = None
    dtype: str = AUTO
    device: str = AUTO
    host: str = LOOPBACK
    port: int = DEFAULT_PORT
    max_upload_mb: int = 512

    def __post_init__(self):
        if not (self.data or self.qa or self.runs or self.model):
            raise InputError("nothing to show: give --data (a processed dataset), --qa (a question file), --run (an "
                             "eval run folder) or --model (to ask questions); after `make demo`: vlm3r app --data "
                             "demo_out/synthetic --qa demo_out/qa.jsonl")


@dataclass
class RunningApp:
    """A started app: its page, address, the Ask tab's session (or None) and its temporary folder."""

    page: object
    url: str
    session: object
    workdir: Path
    catalog: Catalog

    def close(self) -> None:
        self.page.close()
        if self.session is not None:
            self.session.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_app(options: AppOptions, block: bool = False) -> RunningApp:
    """Read, load, build and serve; ``block``: serve until stopped (Ctrl-C), then clean up."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the page asks nothing of gradio's servers
    from vlm3r.app.ask import AskSession
    from vlm3r.app.ui import build_page, page_theme

    catalog = load_catalog(options.data, options.qa, options.runs)
    session = None
    if options.model is not None:
        from vlm3r.model.pipeline import Vlm3rPipeline

        pipeline = Vlm3rPipeline.from_options(options.model, options.cut3r, options.base, options.vision_tower,
                                              dtype=options.dtype, device=options.device, frames=options.frames)
        session = AskSession(pipeline, options.cut3r)
    workdir = Path(tempfile.mkdtemp(prefix="vlm3r-app-"))
    try:
        page = build_page(catalog, workdir, session)
        page.queue()
        _, url, _ = page.launch(server_name=options.host, server_port=options.port, prevent_thread_lock=True,
                                quiet=True, show_error=False, max_file_size=options.max_upload_mb * MB,
                                allowed_paths=[str(workdir)], footer_links=[], theme=page_theme())
    except BaseException:  # nothing started: nothing left behind
        if session is not None:
            session.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    running = RunningApp(page, url, session, workdir, catalog)
    if block:
        try:
            page.block_thread()  # until Ctrl-C
        finally:
            running.close()
    return running
