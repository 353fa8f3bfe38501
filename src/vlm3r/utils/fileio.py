"""Files in and out. Writes are atomic: outputs are complete or absent, never half-written, with the permissions a
plain ``open()`` gives (0666 less the umask), so that outputs can be shared. Reads of JSON, JSON lines and torch
files raise the caller's error type naming the file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from vlm3r.errors import Vlm3rError

FILE_MODE = 0o666  # what open() asks for before the umask
TEMP_RANDOM_BYTES = 4  # random bytes in a temporary file's name, written as 8 hex digits
TEMP_FIXED_BYTES = len("..") + 2 * TEMP_RANDOM_BYTES + len(".tmp")  # what a temporary name adds to stem and suffix
TEMP_TRIES = 100  # temporary names tried before giving up (a name is taken only by a file made in between)
DEFAULT_NAME_MAX = 255  # bytes in a file name, where os.pathconf cannot say (Linux and macOS file systems)
DEFAULT_PATH_MAX = 4096  # bytes in a path with its terminating NUL, where os.pathconf cannot say (Linux)
FOLDER_PATH_RESERVE = 512  # bytes of path kept free below an output folder for the files and folders written in it
HASH_CHUNK = 1 << 24  # bytes read at a time when checksumming
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where /proc says it (Linux), else by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    The temporary name, ``.{stem}.{8 hex digits}.tmp{suffix}``, keeps the final suffix, so writers that infer a
    format from it still work; it is shortened (the stem first) to fit wherever the final name fits.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = temporary_name_parts(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(TEMP_TRIES):
        tmp = path.parent / f"{prefix}{secrets.token_hex(TEMP_RANDOM_BYTES)}{suffix}"
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"{path.parent}: {TEMP_TRIES} temporary names for {path.name} were all taken")
    os.close(fd)
    os.chmod(tmp, FILE_MODE & ~current_umask())  # created 0600, as mkstemp does, until it is complete
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _name_bytes(text: str) -> int:
    """Length of a name or path as the file system stores it."""
    return len(os.fsencode(text))


def _cut(text: str, budget: int) -> str:
    """The longest start of ``text`` whose encoding fits in ``budget`` bytes (whole characters only)."""
    while text and _name_bytes(text) > budget:
        text = text[:-max(1, (_name_bytes(text) - budget) // 4)]
    return text


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name or path too long to exist, or a file in the way, is False (``Path.exists``
    raises for the first)."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            return False
        raise
    return True


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or the nearest of its parents that exists."""
    while not _exists(path) and path != path.parent:
        path = path.parent
    return path


def name_limits(directory: Path | str) -> tuple[int, int]:
    """(NAME_MAX, PATH_MAX) in bytes for names in ``directory`` (an existing folder), from ``os.pathconf``; PATH_MAX
    counts the terminating NUL, so a path is at most PATH_MAX - 1 bytes."""
    limits = []
    for name, default in (("PC_NAME_MAX", DEFAULT_NAME_MAX), ("PC_PATH_MAX", DEFAULT_PATH_MAX)):
        try:
            value = os.pathconf(directory, name)
        except (OSError, ValueError, AttributeError):
            value = default
        limits.append(value if value > 0 else default)
    return limits[0], limits[1]


def temporary_name_parts(path: Path, where: str | None = None) -> tuple[str, str]:
    """The prefix ``.{stem}.`` and suffix ``.tmp{suffix}`` of ``path``'s temporary names (a random part goes between
    them), cut (the stem first, then the suffix) so that the name fits NAME_MAX and its path PATH_MAX. Raises
    ``OutputPathError`` naming ``where`` (default: the path) when not even the fixed parts fit."""
    path = Path(path)
    name_max, path_max = name_limits(_existing_ancestor(path.parent))
    budget = min(name_max, path_max - 1 - _name_bytes(os.path.abspath(path.parent)) - 1)
    room = budget - TEMP_FIXED_BYTES
    if room < 0:
        raise OutputPathError(f"{where or path}: no room for a temporary name beside it (its folder's path leaves "
                              f"{budget} bytes for a name; a temporary one takes at least {TEMP_FIXED_BYTES})")
    suffix = _cut(path.suffix, room)
    stem = _cut(path.stem, room - _name_bytes(suffix))
    return f".{stem}.", f".tmp{suffix}"


def sha256_of(path: Path | str) -> str:
    """The SHA-256 of a file's bytes (read in chunks: a 15 GB checkpoint is not held in memory)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


RACY_SECONDS = 2.0  # s: file timestamps can be this coarse, so a change this recent may leave them as they were
REMEMBERED_FILES = 1 << 16  # digests remembered by file signature, least recently used forgotten first


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What any change of a file's content changes: device, inode, size, mtime and ctime (a write, a rename onto
    it or ``utime`` sets the ctime) - once its times are settled (``settled``)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def settled(st: os.stat_result, at: float) -> bool:
    """Whether the file's times were at least ``RACY_SECONDS`` old at wall-clock time ``at``: a change after
    ``at`` is then sure to show in them (a change within a timestamp's granularity can leave them equal). Git
    trusts its index on the same rule."""
    return max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 < at - RACY_SECONDS


class FileDigests:
    """What a file holds, as the SHA-256 of its bytes, for caches that must never serve one file's results for
    another: a file replaced by one of the same size and modification time is a different key. A digest is
    remembered by the file's ``stat_signature`` when its times were ``settled`` as it was read; a file that
    recent is read again at each call. ``clock`` is the wall clock the file times are read against."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self._known: OrderedDict[tuple, str] = OrderedDict()
        self.hashed = 0  # files read through so far

    def digest(self, path: Path | str) -> str:
        st = os.stat(path)
        signature = stat_signature(st)
        known = self._known.get(signature)
        if known is not None:
            self._known.move_to_end(signature)
            return known
        hashed_at = self.clock()
        digest = sha256_of(path)
        self.hashed += 1
        if settled(st, hashed_at):
            self._known[signature] = digest
            if len(self._known) > REMEMBERED_FILES:
                self._known.popitem(last=False)
        return digest


class OutputPathError(Vlm3rError):
    """An output location that cannot be written; the message names it and the option that gave it."""


def check_writable(path: Path | str, folder: bool = False, option: str = "--out") -> None:
    """Raise ``OutputPathError`` unless ``path`` (a file, or a folder with ``folder``) can be created or
    replaced: every name to create within the file system's NAME_MAX, the path within PATH_MAX (for a folder with
    ``FOLDER_PATH_RESERVE`` bytes to spare for what is written in it; for a file, its temporary name too), then
    checked by creating and removing a probe file where the output will go (permissions, read-only file systems
    and files in the way of folders all show up, for root too)."""
    path = Path(path)
    where = f"{path} ({option})"
    directory = path if folder else path.parent
    existing = _existing_ancestor(directory)
    if not existing.is_dir():
        raise OutputPathError(f"{where}: cannot be created: {existing} is a file")
    name_max, path_max = name_limits(existing)
    created = path.parts[len(existing.parts):] if path.parts[:len(existing.parts)] == existing.parts else path.parts
    for k, name in enumerate(created):
        size = _name_bytes(name)
        if size > name_max:
            what = "its name" if k == len(created) - 1 else f"the folder name {name[:20]}... in it"
            raise OutputPathError(f"{where}: cannot be created: {what} is {size} bytes long, more than the "
                                  f"{name_max} a name may have on this file system")
    size = _name_bytes(os.path.abspath(path))
    spare = FOLDER_PATH_RESERVE if folder else 0
    if size + spare > path_max - 1:
        room = f" and {spare} bytes to spare for the files written in it" if folder else ""
        raise OutputPathError(f"{where}: cannot be created: its path is {size} bytes long{room}; a path may have at "
                              f"most {path_max - 1} bytes")
    if not folder:
        temporary_name_parts(path, where)
    if path.exists() and folder and not path.is_dir():
        raise OutputPathError(f"{where}: exists and is not a folder")
    if path.exists() and not folder and path.is_dir():
        raise OutputPathError(f"{where}: is a folder; give a file path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".vlm3r-write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{where}: cannot write in {existing} ({exc.strerror or exc})") from exc
    if path.exists() and not folder and not os.access(path, os.W_OK):
        raise OutputPathError(f"{where}: the file is not writable")


def atomic_torch_save(obj, path: Path | str) -> None:
    """``torch.save`` written atomically. Saved through a file object, so the archive inside is named
    ``archive`` rather than after the temporary file: the same tensors give the same bytes every time."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def atomic_save_safetensors(tensors: dict, path: Path | str) -> None:
    """A safetensors file of ``tensors`` (detached, on the CPU, contiguous), written atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))


def load_torch(path: Path | str, error: type[Exception], what: str, allowed=(), mmap: bool = False):
    """The one ``torch.load``: on the CPU with ``weights_only``, so no code from the file runs; ``allowed`` are the
    only classes beyond tensors and plain containers it may build (as ``safe_globals`` takes them). A file torch
    cannot read this way raises ``error`` naming the file and saying it is not readable as ``what``."""
    import torch

    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # UnpicklingError for foreign objects, RuntimeError for truncated archives, ...
        raise error(f"{path}: not readable as {what} ({type(exc).__name__}: {str(exc)[:200]})") from exc


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def parse_jsonl_objects(lines, where: str, error: type[Exception]):
    """(line number, object) for every non-empty line; bad JSON or a line that is not an object raises ``error``
    naming ``where`` and the line."""
    import json

    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise error(f"{where}: line {number}: expected a JSON object")
        rows.append((number, row))
    return rows


JSON_TYPES = {dict: "object", list: "list"}


def read_json(path: Path | str, error: type[Exception], expect: type | None = None, what: str = ""):
    """The content of a JSON file. A missing file, text that is not UTF-8 JSON, or (with ``expect``, dict or
    list) a top-level value of another type raises ``error`` naming the file; ``what`` says what the file is."""
    path = Path(path)
    role = f" ({what})" if what else ""
    if not path.is_file():
        raise error(f"{path}: no such file{role}")
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text{role} ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON{role} ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    if expect is not None and not isinstance(value, expect):
        raise error(f"{path}: expected a JSON {JSON_TYPES[expect]}{role}, found a {type(value).__name__}")
    return value


def read_jsonl_objects(path: Path | str, error: type[Exception]):
    """``parse_jsonl_objects`` of a file; a missing file raises ``error`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        return parse_jsonl_objects(f, str(path), error)
