"""What the endpoints do, on the engine, the pipeline and the video store (the one module that calls them): a
chat request checked against the served model and the model's context before any model work, its video
resolved, its answer whole or as server-sent events; uploads kept; the counts ``/health`` reports."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

from vlm3r.model.pipeline import Answer, PromptTooLongError
from vlm3r.serve.body import BODY_TIMEOUT_S, JSON_OVERHEAD_BYTES
from vlm3r.serve.engine import Engine, Job
from vlm3r.serve.errors import RequestError
from vlm3r.serve.schemas import (AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
                                 ChunkChoice, Delta, ErrorInfo, ErrorResponse, Health, ModelCard, ModelList, Usage,
                                 VideoObject, echo, finish_reason)
from vlm3r.serve.videos import PARAM, VideoStore
from vlm3r.utils.images import ImageError
from vlm3r.utils.video import VideoError


@dataclass(frozen=True)
class ServeSettings:
    model_id: str
    api_key: str | None = None
    max_upload_bytes: int = 512 << 20
    body_timeout_s: float = BODY_TIMEOUT_S

    @property
    def max_body_bytes(self) -> int:
        """A chat request's body: its video as base64 (4/3 of the bytes) and the rest."""
        return self.max_upload_bytes * 4 // 3 + JSON_OVERHEAD_BYTES


@dataclass
class AnswerStream:
    """A streamed answer: its server-sent events, and the engine's job to cancel when nobody reads them."""

    job: Job
    events: AsyncIterator[str]


class ChatServing:
    def __init__(self, engine: Engine, store: VideoStore, settings: ServeSettings):
        self.engine, self.store, self.settings = engine, store, settings
        engine.pipeline.prefix_ids  # tokenized here, once: requests are checked in several threads at once

    def close(self) -> None:
        """The server is stopping: the upload folder first (the engine may take a while to stop, and a process
        manager may not wait), then the engine."""
        self.store.close()
        self.engine.close()

    def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=self.settings.model_id)])

    def health(self) -> Health:
        return Health(model=self.settings.model_id, **self.engine.snapshot())

    async def upload(self, data: bytes) -> VideoObject:
        video_id = await run_in_threadpool(self.store.add, data)  # hashing, writing and probing: off the event loop
        return VideoObject(id=video_id, bytes=len(data))

    def _check_prompt(self, request: ChatCompletionRequest, video: Path | None) -> None:
        """The prompt and its answer fit the model's context (counting tokens is work: off the event loop). Without
        the video, a prompt whose template has the time instruction is checked without it (a lower bound, to refuse
        before an upload is stored), then again with the video's frame times. Images: their count decides."""
        try:
            if request.image_urls:
                self.engine.pipeline.check_images_fit(len(request.image_urls), request.question,
                                                      request.max_new_tokens)
            else:
                self.engine.pipeline.checked_suffix_ids(request.question, request.max_new_tokens, video)
        except PromptTooLongError as exc:
            raise RequestError(400, str(exc), param=PARAM) from exc

    def _resolve(self, request: ChatCompletionRequest) -> Path | tuple[Path, ...]:
        """The request's video, or its images in the message's order (an image sequence, asked in the reference's
        image layout)."""
        if request.image_urls:
            return tuple(self.store.resolve_image(url) for url in request.image_urls)
        return self.store.resolve(request.video_url)

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletion | AnswerStream:
        """The answer to a validated chat request, or its stream once its first piece is ready (a video that
        does not decode fails before any token: a 422, not a stream)."""
        if request.model not in (None, self.settings.model_id):
            raise RequestError(404, f"model {echo(request.model)} is not served here; this server serves "
                                    f"{echo(self.settings.model_id)} (GET /v1/models lists it; vlm3r serve "
                                    "--served-model-name sets it)", param="model")
        await run_in_threadpool(self._check_prompt, request, None)
        video = await run_in_threadpool(self._resolve, request)
        if self.engine.pipeline.template.time_instruction and not isinstance(video, tuple):
            try:
                await run_in_threadpool(self._check_prompt, request, video)
            except (VideoError, ImageError) as exc:
                raise self.store.undecodable(video, exc) from exc
        request_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not request.stream:
            try:
                answer = await self.engine.answer(video, request.question, request.max_new_tokens, request.sampling)
            except (VideoError, ImageError) as exc:
                raise self.store.undecodable(video, exc) from exc
            choice = Choice(message=AssistantMessage(content=answer.text), finish_reason=finish_reason(answer))
            return ChatCompletion(id=request_id, created=created, model=self.settings.model_id, choices=[choice],
                                  usage=Usage.of(answer))
        job = self.engine.stream(video, request.question, request.max_new_tokens, request.sampling)
        try:
            first = await job.pieces.get()
        except asyncio.CancelledError:
            job.cancel()
            raise
        if isinstance(first, (VideoError, ImageError)):
            raise self.store.undecodable(video, first)
        if isinstance(first, BaseException):
            raise first
        return AnswerStream(job, self._events(job, first, request.include_usage, request_id, created))

    async def _events(self, job: Job, first, include_usage: bool, request_id: str, created: int):
        """Server-sent events in OpenAI's chunk format: the role, the text pieces, the finish reason, [DONE] (an
        error that ends the stream early is an ``error`` event)."""
        def chunk(delta: Delta, finish: str | None = None, usage: Usage | None = None) -> str:
            data = ChatCompletionChunk(id=request_id, created=created, model=self.settings.model_id,
                                       choices=[ChunkChoice(delta=delta, finish_reason=finish)], usage=usage)
            return f"data: {data.model_dump_json()}\n\n"

        yield chunk(Delta(role="assistant", content=""))
        item = first
        while True:
            if isinstance(item, Answer):
                yield chunk(Delta(), finish_reason(item), Usage.of(item) if include_usage else None)
                break
            if isinstance(item, BaseException):
                error = ErrorResponse(error=ErrorInfo(message=str(item), type="server_error", code=500))
                yield f"data: {error.model_dump_json()}\n\n"
                break
            yield chunk(Delta(content=item))
            item = await job.pieces.get()
        yield "data: [DONE]\n\n"
