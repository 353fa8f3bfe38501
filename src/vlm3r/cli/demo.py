"""``vlm3r demo``: the README's main job on the embedded default data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from vlm3r.cli.scenes import print_scene_metadata
from vlm3r.geometry import box_box_distance
from vlm3r.scene import read_scene_metadata, stack_boxes


def example_metadata_path() -> Path:
    """The small scene metadata file shipped with the package."""
    return Path(str(resources.files("vlm3r") / "data" / "example_scene_metadata.json"))


def demo() -> None:
    """Show the shipped example scenes and the exact distances between their unique objects.

    Example: vlm3r demo
    """
    console = Console()
    path = example_metadata_path()
    print_scene_metadata(console, path, None, max_scenes=30)
    for scene in read_scene_metadata(path).scenes.values():
        names = scene.unique_categories()
        centers, lengths, axes = stack_boxes([scene.objects[c][0] for c in names])
        i, j = np.triu_indices(len(names), k=1)
        distances = box_box_distance(centers[i], lengths[i], axes[i], centers[j], lengths[j], axes[j])
        table = Table("object", "object", "closest distance (m)", title=f"{scene.scene_name}: unique objects")
        for a, b, d in sorted(zip(i, j, distances), key=lambda t: t[2]):
            table.add_row(names[a], names[b], f"{d:.2f}")
        console.print(table)
