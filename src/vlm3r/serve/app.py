"""VLM-3R behind the OpenAI chat API (FastAPI). Endpoints: ``POST /v1/chat/completions`` (one user turn: text and
one ``video_url`` part; greedy; ``stream`` as server-sent events), ``POST /v1/videos`` (upload once, ask many
times), ``GET /v1/models``, ``GET /health``.

Every refusal is a 4xx JSON error in OpenAI's shape (``{"error": {"message", "type", "code"}}``) with a message
that says what is wrong; an unexpected failure is a 500 with no traceback, logged, and the server goes on.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from vlm3r.errors import Vlm3rError
from vlm3r.model.pipeline import Answer
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.serve.engine import Engine
from vlm3r.serve.videos import VideoSourceError, VideoStore
from vlm3r.utils.video import VideoError

log = logging.getLogger(__name__)

MAX_TOKENS_LIMIT = 1024
JSON_OVERHEAD_BYTES = 1 << 20  # what a chat request may carry besides its base64 video
VIDEO_TYPES = ("video/", "application/octet-stream")


class RequestError(Vlm3rError):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


@dataclass(frozen=True)
class ServeSettings:
    model_id: str
    api_key: str | None = None
    max_upload_bytes: int = 512 << 20

    @property
    def max_body_bytes(self) -> int:
        """A chat request's body: its video as base64 (4/3 of the bytes) and the rest."""
        return self.max_upload_bytes * 4 // 3 + JSON_OVERHEAD_BYTES


def error_response(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) once it passes ``limit`` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request is {declared} bytes, more than this server accepts ({limit}; "
                                "--max-upload-mb)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the request is more than this server accepts ({limit} bytes; --max-upload-mb)")
    return bytes(body)


@dataclass(frozen=True)
class ChatRequest:
    video_url: str
    question: str
    max_tokens: int
    stream: bool
    include_usage: bool


def parse_chat(raw: bytes, model_id: str) -> ChatRequest:
    """A chat completion request, checked field by field (VLM-3R answers one question about one video)."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    if body.get("model") not in (None, model_id):
        raise RequestError(404, f"model {body['model']!r}: this server serves {model_id!r}", "not_found_error")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "messages: expected a non-empty list")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if roles != ["user"]:
        raise RequestError(400, f"messages: VLM-3R answers one user turn (its own system prompt, no history); got "
                                f"roles {roles}")
    text, videos = _content(messages[0].get("content"))
    if len(videos) != 1:
        raise RequestError(400, f"messages[0].content: needs exactly one video_url part, got {len(videos)}")
    if not text.strip():
        raise RequestError(400, "messages[0].content: needs a text part with the question")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", MAX_NEW_TOKENS))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise RequestError(400, f"max_tokens: expected an integer in 1..{MAX_TOKENS_LIMIT}, got {max_tokens!r}")
    if body.get("temperature") not in (None, 0, 0.0) or body.get("n") not in (None, 1):
        raise RequestError(400, "only greedy decoding is served (temperature 0, n 1), as the benchmarks answer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, f"stream: expected true or false, got {stream!r}")
    options = body.get("stream_options") or {}
    return ChatRequest(videos[0], text, max_tokens, stream, bool(isinstance(options, dict)
                                                                 and options.get("include_usage")))


def _content(content) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise RequestError(400, "messages[0].content: expected text or a list of parts")
    texts, videos = [], []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "video_url" and isinstance(part.get("video_url"), dict):
            videos.append(part["video_url"].get("url"))
        else:
            raise RequestError(400, f"messages[0].content[{k}]: expected a text part or a video_url part "
                                    "({\"type\": \"video_url\", \"video_url\": {\"url\": ...}})")
    return "\n".join(texts), videos


def completion(settings: ServeSettings, answer: Answer, request_id: str, created: int) -> dict:
    return {"id": request_id, "object": "chat.completion", "created": created, "model": settings.model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": "length" if answer.truncated else "stop", "logprobs": None}],
            "usage": usage(answer)}


def usage(answer: Answer) -> dict:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": len(answer.tokens),
            "total_tokens": answer.prompt_tokens + len(answer.tokens)}


def create_app(engine: Engine, store: VideoStore, settings: ServeSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.close()

    app = FastAPI(title="vlm3r", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if settings.api_key is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
                return error_response(401, "missing or wrong API key (Authorization: Bearer <key>)",
                                      "authentication_error")
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error_response(exc.status, str(exc), exc.kind)

    @app.exception_handler(VideoSourceError)
    async def video_source_error(request: Request, exc: VideoSourceError):
        return error_response(exc.status, str(exc), "not_found_error" if exc.status == 404 else
                              "invalid_request_error")

    @app.exception_handler(VideoError)
    async def video_error(request: Request, exc: VideoError):
        return error_response(422, f"the video cannot be decoded: {exc}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # logged; no traceback to the client
        log.error("request failed: %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error (logged on the server)", "server_error")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": settings.model_id, **engine.snapshot()}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": settings.model_id, "object": "model", "created": 0,
                                            "owned_by": "vlm3r"}]}

    @app.post("/v1/videos")
    async def upload(request: Request):
        kind = request.headers.get("content-type", "")
        if not kind.startswith(VIDEO_TYPES):
            raise RequestError(415, f"content-type {kind or 'none'!r}: send the video's bytes as video/* (or "
                                    "application/octet-stream)")
        data = await read_body(request, settings.max_upload_bytes)
        video_id = await run_in_threadpool(store.add, data)  # hashing, writing and probing: off the event loop
        return {"id": video_id, "object": "video", "bytes": len(data)}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        chat_request = parse_chat(await read_body(request, settings.max_body_bytes), settings.model_id)
        video = await run_in_threadpool(store.resolve, chat_request.video_url)
        request_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not chat_request.stream:
            answer = await engine.answer(video, chat_request.question, chat_request.max_tokens)
            return completion(settings, answer, request_id, created)
        pieces = engine.stream(video, chat_request.question, chat_request.max_tokens)
        first = await pieces.get()
        if isinstance(first, BaseException):  # failed before any token: a plain error answer
            raise first
        return StreamingResponse(events(settings, pieces, first, chat_request, request_id, created),
                                 media_type="text/event-stream")

    return app


async def events(settings: ServeSettings, pieces, first, chat_request: ChatRequest, request_id: str, created: int):
    """Server-sent events in OpenAI's chunk format: the role, the text pieces, the finish reason, [DONE]."""
    def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
        data = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": settings.model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **(extra or {})}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    item = first
    while True:
        if isinstance(item, Answer):
            yield chunk({}, "length" if item.truncated else "stop",
                        {"usage": usage(item)} if chat_request.include_usage else None)
            break
        if isinstance(item, BaseException):
            yield f"data: {json.dumps({'error': {'message': str(item), 'type': 'server_error', 'code': 500}})}\n\n"
            break
        yield chunk({"content": item})
        item = await pieces.get()
    yield "data: [DONE]\n\n"
