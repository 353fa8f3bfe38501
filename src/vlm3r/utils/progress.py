"""Rich progress bars for long commands; under a launcher (torchrun, accelerate) only the first process draws
one, so that N processes do not redraw the same terminal."""

from __future__ import annotations

import os

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second of a task (``-`` until rich has measured it), in the task's ``unit`` field."""

    def render(self, task) -> Text:
        unit = task.fields.get("unit", "it")
        return Text("-" if task.speed is None else f"{task.speed:.2f} {unit}/s")


def _drawn() -> bool:
    return os.environ.get("RANK", "0") == "0"


def rate_progress_bar() -> Progress:
    """A progress bar that also shows items per second (``add_task(..., unit="q")``)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not _drawn())


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not _drawn())
