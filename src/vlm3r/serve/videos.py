"""Where a served request's video comes from, checked before any model work:

- ``file://PATH``: only below one of the allowed roots (``--video-root``), after resolving ``..`` and symbolic
  links, so that neither can reach outside them;
- ``data:video/...;base64,...``: decoded into the upload store;
- an id returned by ``POST /v1/videos``: a video already in the upload store.

Uploads are kept by content (their SHA-256), so the same video uploaded twice is one file and one cache entry;
each must fit ``max_upload_bytes`` and open as a video, or it is refused and not kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from vlm3r.errors import Vlm3rError
from vlm3r.utils.fileio import atomic_path
from vlm3r.utils.video import VideoError, probe_video

ID_PATTERN = re.compile(r"^video-[0-9a-f]{32}$")
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)
UPLOAD_SUFFIX = ".video"  # uploads are opened by content, not by name


class VideoSourceError(Vlm3rError):
    """A request's video that cannot be used; ``status`` is the HTTP answer (400, 403, 404, 413)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class VideoStore:
    def __init__(self, roots: list[Path], upload_dir: Path, max_upload_bytes: int):
        self.roots = [Path(r).resolve() for r in roots]
        self.upload_dir = Path(upload_dir)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.max_upload_bytes = max_upload_bytes

    # ------------------------------------------------------------------ uploads
    def add(self, data: bytes) -> str:
        """Keep an uploaded video; returns its id."""
        if len(data) > self.max_upload_bytes:
            raise VideoSourceError(413, f"the upload is {len(data)} bytes, more than the server's limit of "
                                        f"{self.max_upload_bytes} (--max-upload-mb)")
        if not data:
            raise VideoSourceError(400, "the upload is empty")
        video_id = "video-" + hashlib.sha256(data).hexdigest()[:32]
        path = self.path_of(video_id)
        if not path.is_file():
            with atomic_path(path) as tmp:  # a unique name: two uploads of one video at once do not collide
                tmp.write_bytes(data)
                try:
                    probe_video(tmp)
                except VideoError as exc:  # the temporary file goes with the error
                    raise VideoSourceError(400, "the upload is not a readable video") from exc
        return video_id

    def path_of(self, video_id: str) -> Path:
        return self.upload_dir / f"{video_id}{UPLOAD_SUFFIX}"

    # ------------------------------------------------------------------ requests
    def resolve(self, url: str) -> Path:
        """The local file of a request's ``video_url.url``."""
        if not isinstance(url, str) or not url:
            raise VideoSourceError(400, "video_url.url: expected a file:// URL, a data:video/...;base64 URL or a "
                                        "video id from POST /v1/videos")
        if url.startswith("data:"):
            return self.path_of(self.add(decode_data_url(url)))
        if ID_PATTERN.match(url):
            path = self.path_of(url)
            if not path.is_file():
                raise VideoSourceError(404, f"{url}: no such uploaded video on this server")
            return path
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise VideoSourceError(400, f"video_url.url: the {parsed.scheme or 'plain'!s} scheme is not served "
                                        "(file://, data: or a video id)")
        return self._local(Path(unquote(parsed.path)))

    def _local(self, path: Path) -> Path:
        if not self.roots:
            raise VideoSourceError(403, "file:// videos are not served: the server has no --video-root")
        if not path.is_absolute():
            raise VideoSourceError(400, f"{path}: a file:// URL needs an absolute path")
        resolved = path.resolve()  # '..' and symbolic links, before the check
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise VideoSourceError(403, f"{path}: outside the allowed video roots")
        if not resolved.is_file():
            raise VideoSourceError(404, f"{path}: no such file")
        try:
            probe_video(resolved)
        except VideoError as exc:
            raise VideoSourceError(400, f"{path}: not a readable video") from exc
        return resolved


def decode_data_url(url: str) -> bytes:
    match = DATA_URL.match(url)
    if match is None:
        raise VideoSourceError(400, "video_url.url: a data URL must be data:video/<type>;base64,<data>")
    mime = match.group("mime") or ""
    if not mime.startswith("video/") and mime != "application/octet-stream":
        raise VideoSourceError(400, f"video_url.url: a data URL of {mime or 'no type'}, not video/*")
    try:
        return base64.b64decode(url[match.end():], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VideoSourceError(400, "video_url.url: the data URL is not valid base64") from exc
