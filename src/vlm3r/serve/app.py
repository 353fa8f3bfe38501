"""VLM-3R behind the OpenAI chat API (FastAPI). Endpoints: ``POST /v1/chat/completions`` (one user turn: text and
one ``video_url`` part; greedy, or sampled with ``temperature``, ``top_p`` and ``seed``; ``stream`` as server-sent
events), ``POST /v1/videos`` (upload once, ask many times), ``GET /v1/models``, ``GET /health``.

The server in layers, as OpenAI-compatible servers are: ``schemas`` (requests, answers and errors as pydantic
models), ``body`` (reading a body within its limits), ``router`` (the endpoints), ``serving`` (the calls to the
engine, the pipeline and the video store), ``errors`` (the one error type with an HTTP status, and the handlers
that turn every failure into OpenAI's error body); ``engine`` runs the model, ``videos`` finds a request's video.
This module assembles the app: the access log, the API key check, the handlers, the endpoints, and the shutdown.
"""

from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI

from vlm3r.serve.engine import Engine
from vlm3r.serve.errors import HANDLERS, error_response
from vlm3r.serve.router import router
from vlm3r.serve.serving import ChatServing, ServeSettings
from vlm3r.serve.videos import VideoStore

ACCESS_LOG = "vlm3r.serve.access"  # the logger of the access lines (server.log_config sends it to stderr)
access_log = logging.getLogger(ACCESS_LOG)


def request_path(scope) -> str:
    """A request's path as sent (percent-encoded, without its query), so that its line in the log stays one line
    whatever it holds."""
    raw = scope.get("raw_path")
    return raw.decode("ascii", "backslashreplace") if raw else quote(scope["path"])


class AccessLog:
    """ASGI middleware: one line per HTTP request once its response has ended, to ``ACCESS_LOG`` at info level:
    method, path, status and duration in ms (``GET /health 200 1.2 ms``), refused and failed requests too (a
    request that raised before its response started is the 500 the server then sends). No body, no query."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), None

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access_log.info("%s %s %d %.1f ms", scope["method"], request_path(scope), 500 if status is None else status,
                            (time.perf_counter() - start) * 1000)


class RequireKey:
    """ASGI middleware: every HTTP request without ``Authorization: Bearer <key>`` gets a 401. The header's bytes
    are compared, in constant time, with the key's UTF-8 bytes (so a non-ASCII key sent as UTF-8 works)."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, b"Bearer " + key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                response = error_response(401, "missing or wrong API key (Authorization: Bearer <key>)")
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(engine: Engine, store: VideoStore, settings: ServeSettings) -> FastAPI:
    """The ASGI app; its shutdown (lifespan, run on SIGTERM and SIGINT alike) stops the engine and removes a
    temporary upload folder."""
    serving = ChatServing(engine, store, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        serving.close()

    app = FastAPI(title="vlm3r", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  exception_handlers=HANDLERS)
    app.state.serving, app.state.settings = serving, settings
    if settings.api_key is not None:
        app.add_middleware(RequireKey, key=settings.api_key)
    app.add_middleware(AccessLog)  # added last, so outside the key check: refusals are logged too
    app.include_router(router)
    return app
