"""Reading a request's body before anything else looks at it: bounded in bytes (413) and in the time it may send
nothing (408), and, for a JSON body, parsed with bounds that ``json.loads`` lacks (nesting, integer digits) off
the event loop. ``JsonBodyRoute`` does this for an endpoint whose body FastAPI then validates against its schema.
"""

from __future__ import annotations

import asyncio
import json

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.requests import Request

from vlm3r.serve.errors import RequestError

BODY_TIMEOUT_S = 30.0  # seconds a request's body may send nothing before it gets a 408 and the connection closes
MAX_INT_DIGITS = 100  # digits of an integer in a request's JSON (no field needs more; int() of huge ones is slow)
JSON_OVERHEAD_BYTES = 1 << 20  # what a chat request may carry besides its base64 video
JSON_TYPE = b"application/json"


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
                                    f"({len(body)} received)") from None
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the request is more than this server accepts ({limit} bytes; --max-upload-mb)")


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


class ReadRequest(Request):
    """A request whose body has been read and parsed already: FastAPI asks for both again, and reads the body as
    JSON, whatever its ``Content-Type`` said (``curl -d`` sends ``application/x-www-form-urlencoded``)."""

    def __init__(self, request: Request, body: bytes, parsed):
        headers = [(name, value) for name, value in request.scope["headers"] if name != b"content-type"]
        super().__init__({**request.scope, "headers": [*headers, (b"content-type", JSON_TYPE)]}, request.receive)
        self._read, self._parsed = body, parsed

    async def body(self) -> bytes:
        return self._read

    async def json(self):
        return self._parsed


class JsonBodyRoute(APIRoute):
    """An endpoint whose JSON body is read within ``app.state.settings.max_body_bytes`` and ``body_timeout_s``
    and parsed by ``load_json`` (off the event loop) before FastAPI validates it against the endpoint's schema."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def read_first(request: Request):
            settings = request.app.state.settings
            raw = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
            return await handler(ReadRequest(request, raw, await run_in_threadpool(load_json, raw)))

        return read_first
