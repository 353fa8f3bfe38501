"""What every model config checks, in one place: the error that names the field, positive sizes, sizes that must
divide each other, and the fields of a raw mapping that a config knows."""

from __future__ import annotations

import dataclasses

from vlm3r.errors import Vlm3rError


class ConfigError(Vlm3rError):
    """A config value that cannot describe a model; the message names the field (and the file, when read)."""


def check_positive(obj, names: tuple[str, ...], where: str) -> None:
    """Each named field of ``obj`` is a positive integer (``where`` prefixes the field's name)."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{where}{name}: expected a positive integer, got {value!r}")


def check_divides(part: int, whole: int, what: str) -> None:
    if whole % part:
        raise ConfigError(f"{what}: {part} does not divide {whole}")


def known_fields(kind, raw: dict) -> dict:
    """The entries of ``raw`` that are fields of the dataclass ``kind`` (the rest describe something else)."""
    names = {f.name for f in dataclasses.fields(kind)}
    return {k: v for k, v in raw.items() if k in names}
