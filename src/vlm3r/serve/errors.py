"""A refused request: its HTTP status, OpenAI's error ``type`` and the request field at fault (``param``)."""

from __future__ import annotations

from vlm3r.errors import Vlm3rError


class RequestError(Vlm3rError):
    """A request the server refuses; the message says what is wrong with it."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.param = status, kind, param
