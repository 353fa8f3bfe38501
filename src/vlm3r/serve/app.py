"""VLM-3R behind the OpenAI chat API (FastAPI). Endpoints: ``POST /v1/chat/completions`` (one user turn: text and
one ``video_url`` part; greedy; ``stream`` as server-sent events), ``POST /v1/videos`` (upload once, ask many
times), ``GET /v1/models``, ``GET /health``.

The server in layers, as OpenAI-compatible servers are: ``schemas`` (requests, answers and errors as pydantic
models), ``body`` (reading a body within its limits), ``router`` (the endpoints), ``serving`` (the calls to the
engine, the pipeline and the video store), ``errors`` (the one error type with an HTTP status, and the handlers
that turn every failure into OpenAI's error body); ``engine`` runs the model, ``videos`` finds a request's video.
This module assembles the app: the API key check, the handlers, the endpoints, and the shutdown.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vlm3r.serve.engine import Engine
from vlm3r.serve.errors import HANDLERS, error_response
from vlm3r.serve.router import router
from vlm3r.serve.serving import ChatServing, ServeSettings
from vlm3r.serve.videos import VideoStore


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
    app.include_router(router)
    return app
