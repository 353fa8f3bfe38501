"""Why a generated question has its answer, as geometry a 3D view can draw (issue #27): the objects it is about,
the measured distances as segments between closest points, the directions as arrows, a route, the frames it is
about and single positions. Written to a record as its extra key ``evidence`` (docs/questions.md, "Evidence"),
never to the public benchmark columns or the training conversations.

Coordinates are world metres, rounded to ``COORDINATE_DECIMALS`` when written; objects are named by
(category, position in the scene metadata's ``objects[category]`` list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlm3r.qa.record import QAFileError

#: Decimals of every written coordinate: millimetres, far below what a view can show or a distance answer rounds to.
COORDINATE_DECIMALS = 3
#: The keys of an evidence object, in the order written.
KEYS = ("objects", "segments", "arrows", "path", "frames", "points")


def _point(xyz) -> list[float]:
    """A JSON-safe point: three plain floats rounded to millimetres (never -0.0)."""
    return [round(v, COORDINATE_DECIMALS) + 0.0 for v in np.asarray(xyz, dtype=np.float64).reshape(3).tolist()]


@dataclass
class Evidence:
    """The geometry behind one question's answer; every list may be empty (and is then not written).

    ``objects``: (category, index) of the boxes asked about; ``segments`` and ``arrows``: (label, from, to) of a
    measured distance or a direction; ``path``: a route's points in order; ``frames``: frame ids of the frame
    metadata; ``points``: (label, at) single positions.
    """

    objects: list[tuple[str, int]] = field(default_factory=list)
    segments: list[tuple[str, Any, Any]] = field(default_factory=list)
    arrows: list[tuple[str, Any, Any]] = field(default_factory=list)
    path: list[Any] = field(default_factory=list)
    frames: list[int | str] = field(default_factory=list)
    points: list[tuple[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON object written to a record: only the non-empty keys, coordinates rounded."""
        out = {
            "objects": [[str(category), int(index)] for category, index in self.objects],
            "segments": [{"label": label, "from": _point(a), "to": _point(b)} for label, a, b in self.segments],
            "arrows": [{"label": label, "from": _point(a), "to": _point(b)} for label, a, b in self.arrows],
            "path": [_point(p) for p in self.path],
            "frames": [f if isinstance(f, str) else int(f) for f in self.frames],
            "points": [{"label": label, "at": _point(at)} for label, at in self.points],
        }
        return {key: value for key, value in out.items() if value}

    @classmethod
    def from_dict(cls, raw: Any, where: str = "") -> Evidence:
        """Evidence from a record's ``evidence`` object; QAFileError naming ``where`` and the bad field."""
        if not isinstance(raw, dict):
            raise QAFileError(f"{where}: evidence must be an object, got {raw!r}")
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise QAFileError(f"{where}: unknown evidence field(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
        lists = {}
        for key in KEYS:
            value = raw.get(key, [])
            if not isinstance(value, list):
                raise QAFileError(f"{where}: evidence.{key} must be a list, got {value!r}")
            lists[key] = value
        objects = [_object(item, f"{where}: evidence.objects[{i}]") for i, item in enumerate(lists["objects"])]
        segments = [_labelled(item, ("from", "to"), f"{where}: evidence.segments[{i}]")
                    for i, item in enumerate(lists["segments"])]
        arrows = [_labelled(item, ("from", "to"), f"{where}: evidence.arrows[{i}]")
                  for i, item in enumerate(lists["arrows"])]
        path = [_xyz(item, f"{where}: evidence.path[{i}]") for i, item in enumerate(lists["path"])]
        frames = [_frame(item, f"{where}: evidence.frames[{i}]") for i, item in enumerate(lists["frames"])]
        points = [_labelled(item, ("at",), f"{where}: evidence.points[{i}]") for i, item in enumerate(lists["points"])]
        return cls(objects, segments, arrows, path, frames, points)


def _xyz(value: Any, where: str) -> list[float]:
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)):
        raise QAFileError(f"{where} must be a point [x, y, z] of 3 finite numbers, got {value!r}")
    return [float(v) for v in value]


def _object(value: Any, where: str) -> tuple[str, int]:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str) or not value[0]
            or not isinstance(value[1], int) or isinstance(value[1], bool) or value[1] < 0):
        raise QAFileError(f"{where} must be [category, index] (a name and an index from 0), got {value!r}")
    return value[0], value[1]


def _frame(value: Any, where: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise QAFileError(f"{where} must be a frame id (an integer or a string), got {value!r}")
    return value


def _labelled(value: Any, point_keys: tuple[str, ...], where: str) -> tuple:
    keys = ("label", *point_keys)
    if not isinstance(value, dict) or set(value) != set(keys):
        raise QAFileError(f"{where} must be an object with exactly the keys {', '.join(keys)}, got {value!r}")
    if not isinstance(value["label"], str):
        raise QAFileError(f"{where}.label must be a string, got {value['label']!r}")
    return (value["label"], *(_xyz(value[k], f"{where}.{k}") for k in point_keys))
