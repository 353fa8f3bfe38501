"""The Ask view's model side: questions about a video (or an image sequence) answered by the loaded model, token
by token, through the same engine, pipeline and per-video cache as ``vlm3r serve``; and CUT3R's reconstruction of
that video (with its heads: the released ``cut3r_512_dpt_4_64.pth``), drawn in the 3D view."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.model.cut3r import load_cut3r, read_architecture_file
from vlm3r.model.cut3r.reconstruction import reconstruct_video
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.serve.engine import Engine
from vlm3r.utils.devices import torch_dtype
from vlm3r.viz.reconstruction import reconstruction_payload
from vlm3r.viz.scene3d import ScenePayload

RECONSTRUCTION_KEEP = 0.5  # share of CUT3R's points kept, most confident first (as `vlm3r cut3r reconstruct`)

Source = Path | tuple[Path, ...]  # a video, or an image sequence's files in order


class AskSession:
    """A loaded model behind an engine (one request at a time reaches the pipeline, as in ``vlm3r serve``), and
    the CUT3R weights to reconstruct with (None: reconstruction is not offered), on the model's device and dtype."""

    def __init__(self, pipeline: Vlm3rPipeline, cut3r: Path | None = None, cut3r_config: Path | None = None):
        """``cut3r_config``: a JSON architecture file, for weights without one (a .safetensors; the released .pth
        carries its own), as ``vlm3r cut3r reconstruct --config`` takes it."""
        self.pipeline = pipeline
        self.engine = Engine(pipeline)
        self.cut3r_path, self.cut3r_config = cut3r, cut3r_config
        self._cut3r = None  # loaded at the first reconstruction

    async def stream(self, source: Source, question: str, max_tokens: int = MAX_NEW_TOKENS) -> AsyncIterator[str]:
        """The answer so far, after each piece the model generates (the last one is the whole answer: what
        ``vlm3r ask`` answers). An error the pipeline raises is raised here."""
        if not question.strip():
            raise InputError("question: ask something (the question is empty)")
        job = self.engine.stream(source, question, max_tokens)
        text = ""
        try:
            while True:
                item = await job.pieces.get()
                if isinstance(item, BaseException):
                    raise item
                if not isinstance(item, str):  # the Answer that ends the stream
                    return
                text += item
                yield text
        finally:
            job.cancel()  # a page that goes away stops the generation

    async def reconstruct(self, video: Path, name: str) -> ScenePayload:
        """CUT3R's reconstruction of ``video`` (the model's frame count) as a 3D view: its points and camera path."""
        if self.cut3r_path is None:
            raise InputError("reconstruction needs CUT3R with its heads: start the app with --cut3r "
                             "cut3r_512_dpt_4_64.pth")
        if isinstance(video, tuple):
            raise InputError("reconstruction is of a video; an image sequence is answered, not reconstructed")
        return await asyncio.to_thread(self._reconstruct, video, name)

    def _reconstruct(self, video: Path, name: str) -> ScenePayload:
        if self._cut3r is None:
            where = self.pipeline.placement
            self._cut3r = load_cut3r(self.cut3r_path, config=read_architecture_file(self.cut3r_config),
                                     device=where.device, dtype=torch_dtype(where.dtype), with_heads=True)
        result = reconstruct_video(self._cut3r, video, self.pipeline.num_frames, RECONSTRUCTION_KEEP)
        return reconstruction_payload(result, name)

    def close(self) -> None:
        self.engine.close()
