"""Progress for long commands: a rich bar on a terminal, plain lines elsewhere (a log file, a CI job, a pipe),
where a bar would show nothing until the end. Under a launcher (torchrun, accelerate) only the first process
draws a bar, so that N processes do not redraw the same terminal."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

# Seconds between two plain progress lines (output that is not a terminal); the first and the last step always
# get one. A line every 30 s keeps a log readable for a run of hours and still shows a run of minutes moving.
PLAIN_PROGRESS_EVERY_S = 30.0


class RateColumn(ProgressColumn):
    """Items per second of a task (``-`` until rich has measured it), in the task's ``unit`` field."""

    def render(self, task) -> Text:
        unit = task.fields.get("unit", "it")
        return Text("-" if task.speed is None else f"{task.speed:.2f} {unit}/s")


def _drawn() -> bool:
    return os.environ.get("RANK", "0") == "0"


def output_is_terminal() -> bool:
    """Whether standard output is a terminal a bar can redraw (rich's own test, so FORCE_TERMINAL counts)."""
    return Console().is_terminal


def rate_progress_bar() -> Progress:
    """A progress bar that also shows items per second (``add_task(..., unit="q")``)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not _drawn())


def progress_bar(enabled: bool = True) -> Progress:
    """A progress bar (drawn only on the first process, and not at all with ``enabled`` False)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not (enabled and _drawn()))


def clock_text(seconds: float) -> str:
    """``H:MM:SS``, as rich's bar shows elapsed and remaining time."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """Progress as plain lines on standard output: ``step 20/1080  loss 2.3456  elapsed 0:00:41  left 0:36:12``
    at the first and the last step and whenever ``every_s`` seconds (default ``PLAIN_PROGRESS_EVERY_S``) have
    passed since the previous line. Time left is the mean time of the steps done here times the steps to go (a
    resumed run counts from ``start``)."""

    def __init__(self, total: int, start: int = 0, every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.start, self.clock = total, start, clock
        self.every_s = PLAIN_PROGRESS_EVERY_S if every_s is None else every_s
        self.began = clock()
        self.last_line: float | None = None

    def update(self, completed: int, loss: float) -> str | None:
        """Print (and return) the line of step ``completed`` when one is due, else return None."""
        now = self.clock()
        due = (self.last_line is None or completed >= self.total or now - self.last_line >= self.every_s)
        if not due:
            return None
        self.last_line = now
        elapsed = now - self.began
        done = completed - self.start
        left = elapsed / done * (self.total - completed) if done > 0 else 0.0
        line = (f"step {completed}/{self.total}  loss {loss:.4f}  elapsed {clock_text(elapsed)}  "
                f"left {clock_text(left)}")
        print(line, file=sys.stdout, flush=True)
        return line
