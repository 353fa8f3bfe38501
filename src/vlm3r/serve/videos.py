"""Where a served request's video comes from, checked before any model work:

- ``file://PATH`` (or ``file://localhost/PATH``; no other host): only below one of the allowed roots
  (``--video-root``), after resolving ``..`` and symbolic links, so that neither can reach outside them;
- ``data:video/...;base64,...``: decoded into the upload store;
- an id returned by ``POST /v1/videos``: a video already in the upload store.

An image of an ``image_url`` part comes from ``file://PATH`` (below the roots, as a video) or from
``data:image/<type>;base64,...`` (kept in the upload store by content, with its type's suffix); each is checked to
open as an image.

Uploads are kept by content (their SHA-256), so the same video uploaded twice is one file and one cache entry;
each must fit ``max_upload_bytes`` and open as a video (not a still image), or it is refused and not kept; one
that opens but then does not decode is removed. Errors name an upload by its id, never by its path here, and are
``RequestError``s with their HTTP status. A video is sent as one of ``VIDEO_TYPES`` (an upload's
``Content-Type``, a data URL's type).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse


from vlm3r.serve.errors import RequestError
from vlm3r.utils.fileio import atomic_path
from vlm3r.utils.images import ImageError, probe_image
from vlm3r.utils.video import VideoError, probe_video

ID_PATTERN = re.compile(r"^video-[0-9a-f]{32}$")
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)
UPLOAD_SUFFIX = ".video"  # uploads are opened by content, not by name
LOCAL_HOSTS = ("", "localhost")  # the hosts a file:// URL may name (RFC 8089)
VIDEO_TYPES = ("video/", "application/octet-stream")  # the media types a video may be sent as (prefixes)
PARAM = "messages"  # the request field a chat request's video is in (its errors' ``param``)


def is_video_type(media_type: str) -> bool:
    """A ``Content-Type`` (parameters aside) or a data URL's type that a video may be sent as."""
    return media_type.split(";")[0].strip().startswith(VIDEO_TYPES)


def unusable(status: int, message: str) -> RequestError:
    """A chat request's video that cannot be used (400, 403, 404, 413, 422)."""
    return RequestError(status, message, param=PARAM)


class VideoStore:
    def __init__(self, roots: list[Path], upload_dir: Path, max_upload_bytes: int, temporary: bool = False):
        """``temporary``: ``upload_dir`` is this server's own, removed by ``close()``."""
        self.roots = [Path(r).resolve() for r in roots]
        Path(upload_dir).mkdir(parents=True, exist_ok=True)
        self.upload_dir = Path(upload_dir).resolve()  # as the pipeline names the files it reads
        self.max_upload_bytes = max_upload_bytes
        self.temporary = temporary

    def close(self) -> None:
        """Remove the upload folder if it is temporary (the server is stopping)."""
        if self.temporary:
            shutil.rmtree(self.upload_dir, ignore_errors=True)

    # ------------------------------------------------------------------ uploads
    def add(self, data: bytes, param: str | None = None) -> str:
        """Keep an uploaded video; returns its id. ``param``: the request field it came in, for errors (none for
        ``POST /v1/videos``, whose body it is)."""
        if len(data) > self.max_upload_bytes:
            raise RequestError(413, f"the upload is {len(data)} bytes, more than the server's limit of "
                                    f"{self.max_upload_bytes} (--max-upload-mb)", param=param)
        if not data:
            raise RequestError(400, "the upload is empty", param=param)
        video_id = "video-" + hashlib.sha256(data).hexdigest()[:32]
        path = self.path_of(video_id)
        if not path.is_file():
            with atomic_path(path) as tmp:  # a unique name: two uploads of one video at once do not collide
                tmp.write_bytes(data)
                try:
                    probe_video(tmp)
                except VideoError as exc:  # the temporary file goes with the error
                    raise RequestError(400, f"the upload is not a readable video: "
                                            f"{self._reason(exc, tmp, 'the upload')}", param=param) from exc
        return video_id

    def path_of(self, video_id: str) -> Path:
        return self.upload_dir / f"{video_id}{UPLOAD_SUFFIX}"

    def undecodable(self, path: Path | tuple[Path, ...], exc: Exception) -> RequestError:
        """The 422 for a video (or an image of an image sequence) that opened but did not decode. An upload is
        removed (it cannot be answered) and named by its id (an image: its file name)."""
        if isinstance(path, tuple):
            message = str(exc)
            for image in path:
                uploaded = Path(image).parent == self.upload_dir
                message = self._hidden(message, image, Path(image).name if uploaded else str(image))
                if uploaded:
                    Path(image).unlink(missing_ok=True)
            return unusable(422, f"an image cannot be decoded: {message}")
        name = str(path)
        if Path(path).parent == self.upload_dir:
            name = Path(path).name.removesuffix(UPLOAD_SUFFIX)
            Path(path).unlink(missing_ok=True)
        return unusable(422, f"the video cannot be decoded: {self._hidden(str(exc), path, name)}")

    def _reason(self, exc: Exception, path: Path, name: str) -> str:
        """What ``exc`` says about the file at ``path``, without naming it."""
        return self._hidden(str(exc).removeprefix(f"{path}: "), path, name)

    def _hidden(self, message: str, path: Path, name: str) -> str:
        """``message`` with ``path`` (and the upload folder) replaced: no server path reaches a client."""
        return message.replace(str(path), name).replace(str(self.upload_dir), "<uploads>")

    # ------------------------------------------------------------------ requests
    def resolve(self, url: str) -> Path:
        """The local file of a request's ``video_url.url``."""
        if not isinstance(url, str) or not url:
            raise unusable(400, "video_url.url: expected a file:// URL, a data:video/...;base64 URL or a "
                                "video id from POST /v1/videos")
        if url.startswith("data:"):
            return self.path_of(self.add(decode_data_url(url), PARAM))
        if ID_PATTERN.match(url):
            path = self.path_of(url)
            if not path.is_file():
                raise unusable(404, f"{url}: no such uploaded video on this server")
            return path
        return self._file_url(url, "video_url.url", "(file://, data: or a video id)", self._probe_video)

    def resolve_image(self, url: str) -> Path:
        """The local file of a request's ``image_url.url``: file:// below the roots, or a data:image/... URL kept
        in the upload store."""
        if not isinstance(url, str) or not url:
            raise unusable(400, "image_url.url: expected a file:// URL or a data:image/...;base64 URL")
        if url.startswith("data:"):
            return self.add_image(*decode_image_data_url(url))
        return self._file_url(url, "image_url.url", "(file:// or data:)", self._probe_image)

    def add_image(self, data: bytes, suffix: str) -> Path:
        """Keep an image sent in a data URL, by content, with ``suffix`` (its type's); checked to open."""
        if len(data) > self.max_upload_bytes:
            raise unusable(413, f"an image is {len(data)} bytes, more than the server's limit of "
                                f"{self.max_upload_bytes} (--max-upload-mb)")
        path = self.upload_dir / f"image-{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if not path.is_file():
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                self._probe_image(tmp, "the image")
        return path

    def _file_url(self, url: str, field: str, accepted: str, probe) -> Path:
        """The checked local file of a file:// URL in ``field``; ``probe(path, name)`` checks what it holds."""
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise unusable(400, f"{field}: the {parsed.scheme or 'plain'!s} scheme is not served {accepted}")
        if parsed.netloc.lower() not in LOCAL_HOSTS:
            raise unusable(400, f"{field}: a file:// URL of host {parsed.netloc!r}: only this "
                                "machine's files are served (file:///path or file://localhost/path)")
        path = unquote(parsed.path)
        if "\0" in path:
            raise unusable(400, f"{field}: a file:// path with a NUL byte ({path!r})")
        try:
            resolved = self._local(Path(path))
        except RequestError:
            raise
        except RuntimeError as exc:  # Path.resolve on a loop of symbolic links
            raise unusable(400, f"{path}: a symbolic link loop ({exc})") from exc
        except (OSError, ValueError) as exc:  # a name too long, characters the file system cannot take
            raise unusable(400, f"{path!r}: not a usable file path ({exc.__class__.__name__}: {exc})") from exc
        probe(resolved, str(path))
        return resolved

    def _local(self, path: Path) -> Path:
        if not self.roots:
            raise unusable(403, "file:// videos and images are not served: the server has no --video-root")
        if not path.is_absolute():
            raise unusable(400, f"{path}: a file:// URL needs an absolute path")
        resolved = path.resolve()  # '..' and symbolic links, before the check
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise unusable(403, f"{path}: outside the allowed video roots")
        if not resolved.is_file():
            raise unusable(404, f"{path}: no such file")
        return resolved

    def _probe_video(self, path: Path, name: str) -> None:
        try:
            probe_video(path)
        except VideoError as exc:
            raise unusable(400, f"{name}: not a readable video ({self._reason(exc, path, 'it')})") from exc

    def _probe_image(self, path: Path, name: str) -> None:
        try:
            probe_image(path)
        except ImageError as exc:  # named here as the client named it, the reason without server paths
            raise unusable(400, f"{name}: not a readable image ({self._hidden(str(exc.__cause__), path, 'it')})") \
                from exc


def decode_data_url(url: str) -> bytes:
    match = DATA_URL.match(url)
    if match is None:
        raise unusable(400, "video_url.url: a data URL must be data:video/<type>;base64,<data>")
    mime = match.group("mime") or ""
    if not is_video_type(mime):
        raise unusable(400, f"video_url.url: a data URL of {mime or 'no type'}, not video/*")
    try:
        return base64.b64decode(url[match.end():], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise unusable(400, "video_url.url: the data URL is not valid base64") from exc


# The image types a data URL may carry, with the suffix their upload is kept under (utils.images reads by suffix).
IMAGE_DATA_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/webp": ".webp",
                    "image/bmp": ".bmp", "image/gif": ".gif"}


def decode_image_data_url(url: str) -> tuple[bytes, str]:
    """(the bytes, the upload's suffix) of a ``data:image/<type>;base64,`` URL."""
    match = DATA_URL.match(url)
    if match is None:
        raise unusable(400, "image_url.url: a data URL must be data:image/<type>;base64,<data>")
    mime = (match.group("mime") or "").lower()
    if mime not in IMAGE_DATA_TYPES:
        raise unusable(400, f"image_url.url: a data URL of {mime or 'no type'}, not one of "
                            f"{', '.join(IMAGE_DATA_TYPES)}")
    try:
        return base64.b64decode(url[match.end():], validate=True), IMAGE_DATA_TYPES[mime]
    except (binascii.Error, ValueError) as exc:
        raise unusable(400, "image_url.url: the data URL is not valid base64") from exc
