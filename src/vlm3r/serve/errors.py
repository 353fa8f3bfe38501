"""The server's one error type with an HTTP status (``RequestError``), and how every failure becomes OpenAI's
error body (``schemas.ErrorResponse``: ``{"error": {"message", "type", "param", "code"}}``): the handlers the app
installs. A refusal is a 4xx whose message says what is wrong, unknown routes and methods included; an
unexpected failure is a 500 with no traceback, logged, and the server goes on; a client that goes away is no
error (logged at info level)."""

from __future__ import annotations

import logging

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from vlm3r.errors import Vlm3rError
from vlm3r.serve.engine import EngineStopped
from vlm3r.serve.schemas import ErrorInfo, ErrorResponse, describe
from vlm3r.utils.video import VideoError

log = logging.getLogger(__name__)

ENDPOINTS = "POST /v1/chat/completions, POST /v1/videos, GET /v1/models, GET /health"
KINDS = {401: "authentication_error", 404: "not_found_error", 408: "timeout_error", 500: "server_error",
         503: "service_unavailable_error"}  # OpenAI's error type by status; any other: invalid_request_error


class RequestError(Vlm3rError):
    """A request the server refuses: its HTTP ``status``, a message that says what is wrong, OpenAI's error
    ``kind`` (by default the status's, ``KINDS``) and the request field at fault (``param``)."""

    def __init__(self, status: int, message: str, kind: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param
        self.kind = kind or KINDS.get(status, "invalid_request_error")


def error_response(status: int, message: str, kind: str | None = None, param: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    error = ErrorInfo(message=message, type=kind or KINDS.get(status, "invalid_request_error"), param=param,
                      code=status)
    return JSONResponse(ErrorResponse(error=error).model_dump(), status_code=status, headers=headers)


async def refused(request: Request, exc: RequestError) -> JSONResponse:
    """A stalled body (408) closes its connection: what the client sends next is not a request."""
    return error_response(exc.status, str(exc), exc.kind, exc.param,
                          {"Connection": "close"} if exc.status == 408 else None)


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body that does not fit its schema: a 400 naming the first field at fault."""
    message, param = describe(exc.errors()[0])
    return error_response(400, message, param=param)


async def stopped(request: Request, exc: EngineStopped) -> JSONResponse:
    return error_response(503, str(exc))


async def undecodable(request: Request, exc: VideoError) -> JSONResponse:
    return error_response(422, f"the video cannot be decoded: {exc}")


async def no_route(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own: no such route (404), a wrong method (405, with ``Allow``)."""
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return error_response(404, f"{where}: no such endpoint ({ENDPOINTS})", headers=exc.headers)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_response(405, f"{where}: method not allowed here (allowed: {allowed})", headers=exc.headers)
    return error_response(exc.status_code, f"{where}: {exc.detail}", "invalid_request_error", headers=exc.headers)


async def went_away(request: Request, exc: ClientDisconnect) -> JSONResponse:
    """Nobody to answer: no error."""
    log.info("client went away before its request was read: %s %s", request.method, request.url.path)
    return error_response(400, "the client closed the connection before its request was read")


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Logged with its traceback; the client gets none."""
    log.error("request failed: %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error (logged on the server)")


HANDLERS = {RequestError: refused, RequestValidationError: invalid, EngineStopped: stopped, VideoError: undecodable,
            HTTPException: no_route, ClientDisconnect: went_away, Exception: unexpected}
