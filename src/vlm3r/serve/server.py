"""Building and running the server: the pipeline, its engine, the video store and the ASGI app under uvicorn.

Timeouts: an idle keep-alive connection is closed after ``KEEP_ALIVE_TIMEOUT_S`` (uvicorn's own timeout); a
connection whose request headers are not complete ``HEADER_TIMEOUT_S`` after it opened (or after its last
response) is closed (uvicorn has no such timeout: ``HeaderTimeoutProtocol`` adds it); a request body that sends
nothing for ``BODY_TIMEOUT_S`` gets a 408 and the connection closes (``body.read_body``). On SIGTERM or SIGINT,
requests still running after ``GRACEFUL_SHUTDOWN_S`` are cancelled, then the app's shutdown stops the engine and
removes a temporary upload folder (uvicorn re-raises the signal afterwards, so nothing after ``Server.run()``
runs on SIGTERM).
"""

from __future__ import annotations

import copy
import functools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vlm3r.errors import InputError
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.serve.app import ACCESS_LOG, create_app
from vlm3r.serve.body import BODY_TIMEOUT_S
from vlm3r.serve.engine import Engine
from vlm3r.serve.serving import ServeSettings
from vlm3r.serve.videos import VideoStore

LOOPBACK = "127.0.0.1"
MB = 1 << 20
KEEP_ALIVE_TIMEOUT_S = 5  # an idle keep-alive connection is closed after this many seconds
HEADER_TIMEOUT_S = 10.0  # a request's headers must be complete this many seconds after the connection is ready
GRACEFUL_SHUTDOWN_S = 5  # on SIGTERM / SIGINT, requests still running after this many seconds are cancelled
ACCESS_FORMAT = "%(asctime)s %(message)s"  # an access line: its time, then app.AccessLog's "METHOD PATH STATUS N ms"


@dataclass
class ServeOptions:
    host: str = LOOPBACK
    port: int = 8000
    video_roots: list[Path] = field(default_factory=list)
    upload_dir: Path | None = None  # None: a temporary folder, removed when the server stops
    max_upload_mb: int = 512
    cache_mb: int = 4096  # embeddings and prefixes of recent videos: the pipeline is loaded with it (cache_bytes)
    api_key: str | None = None
    model_id: str | None = None  # what requests name and /v1/models lists (--served-model-name; default: the folder's)
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S

    def __post_init__(self):
        if self.model_id is not None and (not self.model_id.strip() or self.model_id != self.model_id.strip()):
            raise InputError(f"--served-model-name: a name without leading or trailing spaces, got "
                             f"{self.model_id!r}")

    def served_id(self, model: Path | str) -> str:
        """The model id served for the model folder ``model``: ``model_id``, else the folder's name."""
        return self.model_id or Path(model).name

    @property
    def cache_bytes(self) -> int:
        """The pipeline's cache bound (``Vlm3rPipeline.from_options(max_cache_bytes=...)``): set when it is loaded,
        as ``vlm3r serve`` does; ``build_app`` serves a loaded pipeline as it is."""
        return self.cache_mb * MB


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose next request's headers are not complete within
    ``header_timeout_s`` of the connection opening or of its last response (uvicorn times out only idle
    keep-alive connections: a client that sends nothing, or its headers a byte at a time, would hold one open
    for ever)."""

    def __init__(self, *args, header_timeout_s: float = HEADER_TIMEOUT_S, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._expect_headers()

    def on_response_complete(self) -> None:
        self._expect_headers()  # before: the base class may start a pipelined request's cycle
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _expect_headers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late, self.cycle)

    def _headers_late(self, waiting) -> None:
        if self.cycle is waiting and not self.transport.is_closing():  # no new request's headers since
            self.logger.info("closing a connection whose request headers took more than %g s", self.header_timeout_s)
            self.transport.close()


def build_app(pipeline: Vlm3rPipeline, options: ServeOptions, model_id: str):
    """(app, engine, upload folder to remove or None) for a loaded pipeline, served as ``options.model_id`` or,
    without one, ``model_id`` (the folder's name); the app's shutdown stops the engine and removes a temporary
    upload folder."""
    temporary = options.upload_dir is None
    upload_dir = Path(tempfile.mkdtemp(prefix="vlm3r-uploads-")) if temporary else options.upload_dir
    store = VideoStore(options.video_roots, upload_dir, options.max_upload_mb * MB, temporary)
    engine = Engine(pipeline)
    settings = ServeSettings(options.served_id(model_id), options.api_key, options.max_upload_mb * MB,
                             options.body_timeout_s)
    return create_app(engine, store, settings), engine, store.upload_dir if temporary else None


def log_config() -> dict:
    """uvicorn's logging settings and the server's access log (``app.ACCESS_LOG``): one line a request, to stderr,
    in place of uvicorn's (which gives no duration)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["vlm3r_access"] = {"format": ACCESS_FORMAT}
    config["handlers"]["vlm3r_access"] = {"class": "logging.StreamHandler", "formatter": "vlm3r_access",
                                          "stream": "ext://sys.stderr"}
    config["loggers"][ACCESS_LOG] = {"handlers": ["vlm3r_access"], "level": "INFO", "propagate": False}
    return config


def uvicorn_config(app, options: ServeOptions) -> uvicorn.Config:
    """uvicorn's settings for the app: where to listen, the timeouts, uvicorn's own logs at warning level and the
    app's access log (``log_config``)."""
    protocol = functools.partial(HeaderTimeoutProtocol, header_timeout_s=options.header_timeout_s)
    return uvicorn.Config(app, host=options.host, port=options.port, log_config=log_config(), log_level="warning",
                          access_log=False, http=protocol, timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
                          timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)


def run_server(pipeline: Vlm3rPipeline, options: ServeOptions, model_id: str) -> None:
    """Serve until stopped (SIGTERM, SIGINT): the app's shutdown stops the engine's thread and removes a
    temporary upload folder; the ``finally`` covers a failure to start."""
    app, engine, temporary = build_app(pipeline, options, model_id)
    try:
        uvicorn.Server(uvicorn_config(app, options)).run()
    finally:
        engine.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
