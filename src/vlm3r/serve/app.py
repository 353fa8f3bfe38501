"""VLM-3R behind the OpenAI chat API (FastAPI). Endpoints: ``POST /v1/chat/completions`` (one user turn: text and
one ``video_url`` part; greedy; ``stream`` as server-sent events), ``POST /v1/videos`` (upload once, ask many
times), ``GET /v1/models``, ``GET /health``.

Every refusal is a 4xx JSON error in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``) with a
message that says what is wrong, unknown routes and methods included; an unexpected failure is a 500 with no
traceback, logged, and the server goes on. A client that goes away is no error (logged at info level); its
stream's generation stops.
"""

from __future__ import annotations

import asyncio
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
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from vlm3r.model.pipeline import Answer, PromptTooLongError
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.serve.engine import Engine, EngineStopped, Job
from vlm3r.serve.errors import RequestError
from vlm3r.serve.videos import VideoSourceError, VideoStore
from vlm3r.utils.video import VideoError

log = logging.getLogger(__name__)

MAX_TOKENS_LIMIT = 1024
JSON_OVERHEAD_BYTES = 1 << 20  # what a chat request may carry besides its base64 video
VIDEO_TYPES = ("video/", "application/octet-stream")
CHAT_PATH = "/v1/chat/completions"
BODY_TIMEOUT_S = 30.0  # seconds a request's body may send nothing before it gets a 408 and the connection closes
MAX_INT_DIGITS = 100  # digits of an integer in a request's JSON (no field needs more; int() of huge ones is slow)

# Fields of a chat request that parse_chat reads and checks itself, or that change nothing here (ids for logs).
CHECKED_FIELDS = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options",
                            "user", "safety_identifier", "prompt_cache_key"})
# OpenAI's other fields: the values this server serves (each the field's default, or one meaning the same here)
# and why others are not. A field in neither table is refused too.
SERVED_VALUES: dict[str, tuple[tuple, str]] = {
    "temperature": ((None, 0), "only greedy decoding is served, as the benchmarks answer"),
    "top_p": ((None, 1), "only greedy decoding is served"),
    "n": ((None, 1), "one answer per request"),
    "presence_penalty": ((None, 0), "greedy decoding without penalties"),
    "frequency_penalty": ((None, 0), "greedy decoding without penalties"),
    "logit_bias": ((None, {}), "greedy decoding without logit bias"),
    "logprobs": ((None, False), "no log probabilities are returned"),
    "top_logprobs": ((None, 0), "no log probabilities are returned"),
    "stop": ((None, []), "answers end at the end of the turn or at max_tokens"),
    "seed": ((None,), "greedy answers do not sample"),
    "tools": ((None, []), "no tool calls"),
    "tool_choice": ((None, "none"), "no tool calls"),
    "parallel_tool_calls": ((None,), "no tool calls"),
    "functions": ((None, []), "no tool calls"),
    "function_call": ((None, "none"), "no tool calls"),
    "response_format": ((None, {"type": "text"}), "answers are plain text"),
    "modalities": ((None, ["text"]), "answers are text"),
    "audio": ((None,), "answers are text"),
    "prediction": ((None,), "no predicted outputs"),
    "reasoning_effort": ((None,), "no reasoning model"),
    "web_search_options": ((None,), "no web search"),
    "store": ((None, False), "nothing is stored"),
    "metadata": ((None, {}), "nothing is stored"),
    "service_tier": ((None, "auto", "default"), "one service tier"),
}


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


def error_response(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}},
                        status_code=status, headers=headers)


async def read_body(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The request's body, refused once it passes ``limit`` bytes, declared or streamed (413), or when
    ``timeout_s`` seconds pass without a byte of it (408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request is {declared} bytes, more than this server accepts ({limit}; "
                                "--max-upload-mb)")
    body = bytearray()
    chunks = request.stream()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), timeout_s)
        except StopAsyncIteration:
            return bytes(body)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11; not on 3.10
            raise RequestError(408, f"the request's body stalled: no bytes for {timeout_s:g} s "
                                    f"({len(body)} received)", "timeout_error") from None
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the request is more than this server accepts ({limit} bytes; --max-upload-mb)")


@dataclass(frozen=True)
class ChatRequest:
    video_url: str
    question: str
    max_tokens: int
    stream: bool
    include_usage: bool


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise RequestError(400, f"the body is not JSON this server reads: an integer of {len(digits.lstrip('-'))} "
                                f"digits (at most {MAX_INT_DIGITS})")
    return int(digits)


def load_json(raw: bytes):
    """The body's JSON; ``RequestError`` (400) for bytes that are not JSON, nesting deeper than the interpreter
    recurses and integers longer than ``MAX_INT_DIGITS``."""
    try:
        return json.loads(raw, parse_int=_int)
    except RecursionError:
        raise RequestError(400, "the body is not JSON this server reads: it is nested too deeply") from None
    except RequestError:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise RequestError(400, f"the body is not valid JSON ({exc})") from exc


def _json(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _served(value, accepted: tuple) -> bool:
    """``value`` is one of ``accepted`` (0 is 0.0, but not false)."""
    return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in accepted)


def check_fields(body: dict) -> None:
    """Refuse (400, ``param`` the field) every field this server does not implement, unless it has a value
    served here (``SERVED_VALUES``)."""
    for field, value in body.items():
        if field in CHECKED_FIELDS:
            continue
        if field not in SERVED_VALUES:
            raise RequestError(400, f"{field}: not supported by this server (it answers one question about one "
                                    "video)", param=field)
        accepted, why = SERVED_VALUES[field]
        if not _served(value, accepted):
            raise RequestError(400, f"{field}: {_json(value)} is not supported: {why} (accepted: "
                                    f"{' or '.join(_json(a) for a in accepted)})", param=field)


def parse_chat(raw: bytes, model_id: str) -> ChatRequest:
    """A chat completion request, checked field by field (VLM-3R answers one question about one video)."""
    body = load_json(raw)
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    check_fields(body)
    if body.get("model") not in (None, model_id):
        raise RequestError(404, f"model {_json(body['model'])}: this server serves {model_id!r}", "not_found_error",
                           "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "messages: expected a non-empty list", param="messages")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if roles != ["user"]:
        raise RequestError(400, f"messages: VLM-3R answers one user turn (its own system prompt, no history); got "
                                f"roles {_json(roles)}", param="messages")
    text, videos = _content(messages[0].get("content"))
    if len(videos) != 1:
        raise RequestError(400, f"messages[0].content: needs exactly one video_url part, got {len(videos)}",
                           param="messages")
    if not text.strip():
        raise RequestError(400, "messages[0].content: needs a text part with the question", param="messages")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(400, "messages[0].content: the text is not valid Unicode (a lone surrogate)",
                           param="messages") from None
    max_tokens = body.get("max_completion_tokens")
    field = "max_completion_tokens" if max_tokens is not None else "max_tokens"
    max_tokens = body.get("max_tokens") if max_tokens is None else max_tokens
    max_tokens = MAX_NEW_TOKENS if max_tokens is None else max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise RequestError(400, f"{field}: expected an integer in 1..{MAX_TOKENS_LIMIT}, got {_json(max_tokens)}",
                           param=field)
    stream = False if body.get("stream") is None else body["stream"]
    if not isinstance(stream, bool):
        raise RequestError(400, f"stream: expected true or false, got {_json(stream)}", param="stream")
    options = body.get("stream_options") or {}
    return ChatRequest(videos[0], text, max_tokens, stream, bool(isinstance(options, dict)
                                                                 and options.get("include_usage")))


def _content(content) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise RequestError(400, "messages[0].content: expected text or a list of parts", param="messages")
    texts, videos = [], []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "video_url" and isinstance(part.get("video_url"), dict):
            videos.append(part["video_url"].get("url"))
        else:
            raise RequestError(400, f"messages[0].content[{k}]: expected a text part or a video_url part "
                                    "({\"type\": \"video_url\", \"video_url\": {\"url\": ...}})",
                               param="messages")
    return "\n".join(texts), videos


def completion(settings: ServeSettings, answer: Answer, request_id: str, created: int) -> dict:
    return {"id": request_id, "object": "chat.completion", "created": created, "model": settings.model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": "length" if answer.truncated else "stop", "logprobs": None}],
            "usage": usage(answer)}


def usage(answer: Answer) -> dict:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": len(answer.tokens),
            "total_tokens": answer.prompt_tokens + len(answer.tokens)}


class RequireKey:
    """ASGI middleware: every HTTP request without ``Authorization: Bearer <key>`` gets a 401. The header's bytes
    are compared, in constant time, with the key's UTF-8 bytes (so a non-ASCII key sent as UTF-8 works)."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, b"Bearer " + key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                response = error_response(401, "missing or wrong API key (Authorization: Bearer <key>)",
                                          "authentication_error")
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


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


def create_app(engine: Engine, store: VideoStore, settings: ServeSettings) -> FastAPI:
    """The ASGI app; its shutdown (lifespan, run on SIGTERM and SIGINT alike) stops the engine and removes a
    temporary upload folder."""
    engine.pipeline.prefix_ids  # tokenized here, once: requests are checked in several threads at once

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        store.close()  # first: the engine may take a while to stop, and a process manager may not wait
        engine.close()

    app = FastAPI(title="vlm3r", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    if settings.api_key is not None:
        app.add_middleware(RequireKey, key=settings.api_key)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error_response(exc.status, str(exc), exc.kind, exc.param,
                              {"Connection": "close"} if exc.status == 408 else None)

    @app.exception_handler(VideoSourceError)
    async def video_source_error(request: Request, exc: VideoSourceError):
        return error_response(exc.status, str(exc), "not_found_error" if exc.status == 404 else
                              "invalid_request_error", "messages" if request.url.path == CHAT_PATH else None)

    @app.exception_handler(EngineStopped)
    async def engine_stopped(request: Request, exc: EngineStopped):
        return error_response(503, str(exc), "service_unavailable_error")

    @app.exception_handler(VideoError)
    async def video_error(request: Request, exc: VideoError):
        return error_response(422, f"the video cannot be decoded: {exc}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):  # no such route (404), wrong method (405)
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return error_response(404, f"{where}: no such endpoint (POST /v1/chat/completions, POST /v1/videos, "
                                       "GET /v1/models, GET /health)", "not_found_error", headers=exc.headers)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            return error_response(405, f"{where}: method not allowed here (allowed: {allowed})",
                                  headers=exc.headers)
        return error_response(exc.status_code, f"{where}: {exc.detail}", headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def went_away(request: Request, exc: ClientDisconnect):  # nobody to answer: no error
        log.info("client went away before its request was read: %s %s", request.method, request.url.path)
        return error_response(400, "the client closed the connection before its request was read")

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
        data = await read_body(request, settings.max_upload_bytes, settings.body_timeout_s)
        video_id = await run_in_threadpool(store.add, data)  # hashing, writing and probing: off the event loop
        return {"id": video_id, "object": "video", "bytes": len(data)}

    def checked(raw: bytes) -> ChatRequest:
        """The parsed request whose prompt fits the model's context (refused before any model work)."""
        chat_request = parse_chat(raw, settings.model_id)
        try:
            engine.pipeline.checked_suffix_ids(chat_request.question, chat_request.max_tokens)
        except PromptTooLongError as exc:
            raise RequestError(400, str(exc), param="messages") from exc
        return chat_request

    @app.post(CHAT_PATH)
    async def chat(request: Request):
        raw = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
        chat_request = await run_in_threadpool(checked, raw)  # parsing and counting tokens: off the event loop
        video = await run_in_threadpool(store.resolve, chat_request.video_url)
        request_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not chat_request.stream:
            try:
                answer = await engine.answer(video, chat_request.question, chat_request.max_tokens)
            except VideoError as exc:
                raise store.undecodable(video, exc) from exc
            return completion(settings, answer, request_id, created)
        job = engine.stream(video, chat_request.question, chat_request.max_tokens)
        try:
            first = await job.pieces.get()
        except asyncio.CancelledError:
            job.cancel()
            raise
        if isinstance(first, VideoError):  # failed before any token (the video is decoded first): an error answer
            raise store.undecodable(video, first)
        if isinstance(first, BaseException):
            raise first
        return CancellingStream(events(settings, job, first, chat_request, request_id, created), job,
                                media_type="text/event-stream")

    return app


async def events(settings: ServeSettings, job: Job, first, chat_request: ChatRequest, request_id: str, created: int):
    """Server-sent events in OpenAI's chunk format: the role, the text pieces, the finish reason, [DONE] (an error
    that ends the stream early is an ``error`` event)."""
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
            error = {"message": str(item), "type": "server_error", "param": None, "code": 500}
            yield f"data: {json.dumps({'error': error})}\n\n"
            break
        yield chunk({"content": item})
        item = await job.pieces.get()
    yield "data: [DONE]\n\n"
