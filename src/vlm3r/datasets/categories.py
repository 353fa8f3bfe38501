"""Per-dataset category vocabularies and remaps, as data (``data/categories/<dataset>.json``; docs/design.md B6):
which raw labels become objects, and under which name. Label ids in the processed point clouds are positions in
the table's category list, from 1 (0 = not an object)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

from vlm3r.errors import Vlm3rError


class CategoryTableError(Vlm3rError):
    """A malformed category table; the message names the file and the entry."""


@dataclass(frozen=True)
class CategoryTable:
    dataset: str
    names: tuple[str, ...]
    remap: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        known = set(self.names)
        bad = sorted(f"{raw} -> {name}" for raw, name in self.remap.items() if name not in known)
        if bad or len(known) != len(self.names):
            raise CategoryTableError(f"{self.dataset} categories: remap targets not in the list ({', '.join(bad)}) "
                                     "or duplicate names")

    @classmethod
    def load(cls, dataset: str) -> CategoryTable:
        path = resources.files("vlm3r") / "data" / "categories" / f"{dataset}.json"
        raw = json.loads(path.read_text())
        return cls(dataset, tuple(raw["categories"]), dict(raw.get("remap", {})))

    def resolve(self, raw_label: str) -> str | None:
        """The category a raw label belongs to, or None when it is not an object category."""
        label = " ".join(str(raw_label).strip().lower().split())
        label = self.remap.get(label, label)
        return label if label in self.names else None

    def label_id(self, name: str) -> int:
        return self.names.index(name) + 1

    @property
    def label_names(self) -> dict[int, str]:
        return {k + 1: name for k, name in enumerate(self.names)}
