"""The endpoints: each reads its request (a chat request's body validated by FastAPI against
``schemas.ChatCompletionRequest``), calls the app's ``ChatServing`` (``app.state.serving``) and returns its
answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from vlm3r.serve.body import JsonBodyRoute, read_body
from vlm3r.serve.engine import Job
from vlm3r.serve.errors import RequestError
from vlm3r.serve.schemas import ChatCompletionRequest, Health, ModelList, VideoObject
from vlm3r.serve.serving import AnswerStream, ChatServing
from vlm3r.serve.videos import is_video_type

CHAT_PATH = "/v1/chat/completions"

router = APIRouter()


def serving(request: Request) -> ChatServing:
    return request.app.state.serving


Serving = Annotated[ChatServing, Depends(serving)]


class CancellingStream(StreamingResponse):
    """A streamed answer whose generation stops when the response ends for any reason: its client gone, the
    server shutting down, or its end (then there is nothing left to stop)."""

    def __init__(self, content, job: Job, **kwargs):
        super().__init__(content, **kwargs)
        self.job = job

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancel()


@router.get("/health")
async def health(serving: Serving) -> Health:
    return serving.health()


@router.get("/v1/models")
async def models(serving: Serving) -> ModelList:
    return serving.models()


@router.post("/v1/videos")
async def upload(request: Request, serving: Serving) -> VideoObject:
    """The video's bytes as the body, sent as a video type (``videos.VIDEO_TYPES``)."""
    kind = request.headers.get("content-type", "")
    if not is_video_type(kind):
        raise RequestError(415, f"content-type {kind or 'none'!r}: send the video's bytes as video/* (or "
                                "application/octet-stream)")
    settings = serving.settings
    return await serving.upload(await read_body(request, settings.max_upload_bytes, settings.body_timeout_s))


async def chat(body: ChatCompletionRequest, serving: Serving):
    answer = await serving.chat(body)
    if isinstance(answer, AnswerStream):
        return CancellingStream(answer.events, answer.job, media_type="text/event-stream")
    return answer


router.add_api_route(CHAT_PATH, chat, methods=["POST"], response_model=None, route_class_override=JsonBodyRoute)
