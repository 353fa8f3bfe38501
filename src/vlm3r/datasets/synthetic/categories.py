"""The synthetic-scene vocabulary and room types, loaded from the data table ``data/categories/synthetic.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources


@dataclass(frozen=True)
class CategorySpec:
    """How one category looks and where it goes (sizes in metres: length x, depth y, height z)."""

    label: int
    name: str
    size: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    placement: str  # wall | floor | surface | wall_mounted
    shape: str  # box | table | chair | bed | sofa
    supports: bool = False
    on: tuple[str, ...] = ()
    elevation: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class RoomObjectRule:
    """A room type includes ``category`` with probability ``probability``, with min..max instances."""

    category: str
    min_count: int
    max_count: int
    probability: float


@dataclass(frozen=True)
class RoomType:
    name: str
    area: tuple[float, float]
    objects: tuple[RoomObjectRule, ...]


_PLACEMENTS = {"wall", "floor", "surface", "wall_mounted"}
_SHAPES = {"box", "table", "chair", "bed", "sofa"}


@dataclass(frozen=True)
class SyntheticVocabulary:
    categories: tuple[CategorySpec, ...]
    room_types: tuple[RoomType, ...]
    structure: dict[str, int]

    @cached_property
    def by_name(self) -> dict[str, CategorySpec]:
        return {c.name: c for c in self.categories}

    @property
    def label_names(self) -> dict[int, str]:
        """PLY label -> category name, for the objects the metadata builder turns into boxes."""
        return {c.label: c.name for c in self.categories}

    @classmethod
    def load(cls, table: dict | None = None) -> SyntheticVocabulary:
        """Load (and check) the packaged table, or a table given as a dict."""
        if table is None:
            text = (resources.files("vlm3r") / "data" / "categories" / "synthetic.json").read_text(encoding="utf-8")
            table = json.loads(text)
        categories = []
        for raw in table["categories"]:
            spec = CategorySpec(
                label=int(raw["id"]), name=raw["name"],
                size=tuple((float(lo), float(hi)) for lo, hi in raw["size"]),
                placement=raw["placement"], shape=raw["shape"], supports=bool(raw.get("supports", False)),
                on=tuple(raw.get("on", ())), elevation=tuple(raw.get("elevation", (0.0, 0.0))),
            )
            if spec.placement not in _PLACEMENTS or spec.shape not in _SHAPES:
                raise ValueError(f"category {spec.name!r}: unknown placement {spec.placement!r} or shape "
                                 f"{spec.shape!r}")
            if any(lo > hi or lo <= 0 for lo, hi in spec.size):
                raise ValueError(f"category {spec.name!r}: size ranges must be positive [min, max]")
            categories.append(spec)
        names = {c.name for c in categories}
        labels = [c.label for c in categories] + list(table["structure"].values())
        if len(set(labels)) != len(labels):
            raise ValueError("category and structure labels must be unique")
        room_types = []
        for name, raw in table["room_types"].items():
            rules = tuple(RoomObjectRule(c, int(lo), int(hi), float(p)) for c, lo, hi, p in raw["objects"])
            unknown = [r.category for r in rules if r.category not in names]
            if unknown:
                raise ValueError(f"room type {name!r} uses unknown categories {unknown}")
            room_types.append(RoomType(name, tuple(raw["area"]), rules))
        for spec in categories:
            if spec.placement == "surface" and not all(s in names for s in spec.on):
                raise ValueError(f"category {spec.name!r} rests on unknown categories {spec.on}")
        return cls(tuple(categories), tuple(room_types), dict(table["structure"]))
