"""The error family: every problem vlm3r reports about its input (a file, a field, an option) is a
``Vlm3rError``, with a message that names the file or option and the field. The command line catches
``(Vlm3rError, OSError)`` in one place (``vlm3r.cli.errors.guarded``); anything else is a bug and keeps its
traceback. Each module defines its own subclasses; the ones shared by several modules live here."""

from __future__ import annotations


class Vlm3rError(ValueError):
    """Bad input: the message names the file or option and the field, and what would be right."""


class InputError(Vlm3rError):
    """A bad argument or option value (the message names it and what is allowed)."""


class SceneBuildError(Vlm3rError):
    """A scene that cannot be built from its dataset's files; the message names the file and the field."""


class EvalRunError(Vlm3rError):
    """A benchmark run that cannot start or continue (its questions, videos, prediction files or run.json); the
    message names the file, video or setting."""
