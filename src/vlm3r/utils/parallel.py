"""Running a job over items in worker processes that stop when the parent does, and dealing items to
independent processes (``shard_of``, ``parse_shard``).

Workers ignore Ctrl-C (the parent handles it once), die with the parent even when it is killed outright
(``PR_SET_PDEATHSIG`` on Linux, a watch on the parent elsewhere), and are terminated rather than waited for
when the parent stops early, so an interrupted command returns within a second and leaves no process behind.
Results already returned are the caller's to keep (commands resume from what is complete).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from vlm3r.errors import InputError

T = TypeVar("T")
R = TypeVar("R")

PR_SET_PDEATHSIG = 1  # prctl option: a signal for this process when its parent exits (Linux)
PARENT_POLL_S = 0.5  # seconds between checks that the parent lives, where prctl is unavailable


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def parallel_map(job: Callable[[T], R], items: Iterable[T], workers: int, ordered: bool = True) -> Iterator[R]:
    """``job`` over ``items``: in this process for one worker (or one item), else in a pool of ``workers``
    processes, in order (``ordered``) or as they finish. ``job`` and the items must pickle."""
    items = list(items)
    if workers <= 1 or len(items) < 2:
        yield from map(job, items)
        return
    pool = multiprocessing.Pool(min(workers, len(items)), initializer=_worker_init, initargs=(os.getpid(),))
    finished = False
    try:
        results = (pool.imap if ordered else pool.imap_unordered)(job, items, chunksize=1)
        yield from results
        finished = True
    finally:
        if finished:
            pool.close()
        else:  # Ctrl-C, an error, or the caller stopped reading: do not wait for queued work
            pool.terminate()
        pool.join()


def shard_of(items: list[T], index: int, count: int) -> list[T]:
    """The ``index``-th of ``count`` round-robin parts of ``items`` (items ``index``, ``index + count``, ...): how
    launched processes and independent jobs split videos, each item to exactly one part."""
    if count < 1 or not 0 <= index < count:
        raise InputError(f"shard {index} of {count}: expected 0 <= index < count")
    return items[index::count]


def parse_shard(text: str | None, option: str = "--shard") -> tuple[int, int] | None:
    """``i/n`` (the i-th of n parts, ``0 <= i < n``) as ``(i, n)``; None for None. ``option`` names it in errors."""
    if text is None:
        return None
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise InputError(f"{option} {text!r}: expected i/n with 0 <= i < n, e.g. 0/4")
    return int(index), int(count)
