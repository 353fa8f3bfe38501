"""The one place where the command line turns errors into messages: every command is wrapped by ``guarded``,
which prints a package error (``Vlm3rError``, naming the file or option and the field) or an ``OSError`` to
stderr and exits with status 1, instead of a traceback (anything else is a bug and keeps its traceback); and
``check_output``, called before any work starts, so that an unwritable output is found before the work, not
after it."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from vlm3r.errors import Vlm3rError
from vlm3r.utils.fileio import check_writable

USER_ERRORS = (Vlm3rError, OSError)
err_console = Console(stderr=True)
log = logging.getLogger("vlm3r.cli")


def report_error(message) -> None:
    report_failure("error:", "", message)


def report_failure(label: str, item: str, reason) -> None:
    """``label`` in red, then ``item`` and ``reason`` as they are (a path or reason with brackets is not markup)."""
    text = f"{escape(item)}: {escape(str(reason))}" if item else escape(str(reason))
    err_console.print(f"[red]{label}[/red] {text}", markup=True, highlight=False)


def guarded(command):
    """``command`` with package errors and OSError reported on stderr (exit status 1); ``-v`` adds the
    traceback to the log."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as exc:
            log.debug("%s failed", command.__name__, exc_info=exc)
            report_error(exc)
            raise typer.Exit(code=1) from exc

    return run


def check_output(path: Path | None, folder: bool = False, option: str = "--out") -> None:
    """Fail now, naming ``option``, if ``path`` (a file, or a folder with ``folder``) cannot be written."""
    if path is not None:
        check_writable(path, folder, option)
