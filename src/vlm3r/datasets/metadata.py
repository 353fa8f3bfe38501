"""``vlm3r scenes metadata``: any dataset to the processed layout and its scene and frame metadata.

Each dataset is an adapter: how to list a split's scenes in its raw folder, and how to write one scene into the
processed layout (``prepare``; None for datasets already in the layout, such as the synthetic scenes). Every
adapter then shares ``vlm3r.datasets.builder`` for the metadata. Runs resume: a scene whose point cloud exists
is complete and is not prepared again. A scene that fails is reported by name with the reason, in the result
and in ``<dataset>_failures_<split>.json`` beside the metadata; the other scenes go on.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from vlm3r.datasets.builder import build_scene_frames, build_scene_meta
from vlm3r.datasets.categories import CategoryTable
from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.errors import InputError
from vlm3r.scene import write_frame_metadata, write_scene_metadata
from vlm3r.utils.fileio import atomic_write_text
from vlm3r.utils.parallel import parallel_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetAdapter:
    name: str
    label_names: Callable[[], dict[int, str]]
    list_scenes: Callable[[Path, str], list[str]]
    prepare: Callable[..., None] | None  # (root, scene, layout) -> None; writes the scene's processed files


def _synthetic_labels() -> dict[int, str]:
    from vlm3r.datasets.synthetic.categories import SyntheticVocabulary

    return SyntheticVocabulary.load().label_names


def _adapter_module(dataset: str):
    import importlib

    return importlib.import_module(f"vlm3r.datasets.{dataset}.adapter")


def _prepare(dataset: str, root: Path, scene: str, layout: ProcessedLayout) -> None:
    _adapter_module(dataset).prepare_scene(root, scene, layout, CategoryTable.load(dataset))


def _list(dataset: str, root: Path, split: str) -> list[str]:
    return _adapter_module(dataset).list_scenes(root, split)


def _labels(dataset: str) -> dict[int, str]:
    return CategoryTable.load(dataset).label_names


def _real_adapter(dataset: str) -> DatasetAdapter:
    """A raw dataset: its module's ``list_scenes`` and ``prepare_scene``, its category table (module-level
    functions, so that worker processes can receive them)."""
    return DatasetAdapter(dataset, partial(_labels, dataset), partial(_list, dataset), partial(_prepare, dataset))


ADAPTERS = {
    "synthetic": DatasetAdapter("synthetic", _synthetic_labels,
                                lambda root, split: ProcessedLayout(root, "synthetic", split).scene_names(), None),
    **{name: _real_adapter(name) for name in ("scannet", "scannetpp", "arkitscenes")},
}


@dataclass
class MetadataResult:
    layout: ProcessedLayout
    scenes: list[str] = field(default_factory=list)  # in the metadata
    prepared: list[str] = field(default_factory=list)  # written by this run
    failures: dict[str, str] = field(default_factory=dict)  # scene -> reason

    @property
    def failures_path(self) -> Path:
        return self.layout.scene_metadata_path.with_name(f"{self.layout.dataset}_failures_{self.layout.split}.json")


def clear_partial_scene(layout: ProcessedLayout, scene: str) -> None:
    """Remove what an interrupted or failed attempt left of a scene (its point cloud was never written)."""
    for kind in ("color", "depth", "instance", "pose"):
        shutil.rmtree(layout.root / kind / layout.split / scene, ignore_errors=True)
    for path in (layout.video_path(scene), layout.intrinsic_path(scene), layout.boxes_path(scene)):
        path.unlink(missing_ok=True)


def _prepare_one(prepare, root: Path, layout: ProcessedLayout, scene: str) -> tuple[str, str | None]:
    clear_partial_scene(layout, scene)
    try:
        prepare(root, scene, layout)
        return scene, None
    except (ValueError, OSError, KeyError) as exc:  # the adapters' errors name the file and the field
        clear_partial_scene(layout, scene)
        return scene, f"{type(exc).__name__}: {exc}"


def build_dataset_metadata(dataset: str, root: Path | str, out: Path | str, split: str, workers: int = 1,
                           progress: Callable[[str], None] | None = None) -> MetadataResult:
    """Prepare the split's missing scenes, then build and write the scene and frame metadata of every complete
    scene; both steps use ``workers`` processes. ``progress(scene)`` is called after each step of each scene."""
    if dataset not in ADAPTERS:
        raise InputError(f"unknown dataset {dataset!r}: one of {', '.join(sorted(ADAPTERS))}")
    adapter = ADAPTERS[dataset]
    root, out = Path(root), Path(out)
    if adapter.prepare is None and root.resolve() != out.resolve():
        raise InputError(f"{dataset} scenes are already in the processed layout: --out must be --root ({root})")
    layout = ProcessedLayout(out, dataset, split)
    result = MetadataResult(layout)
    scenes = adapter.list_scenes(root, split)
    todo = [s for s in scenes if not layout.point_cloud_path(s).is_file()] if adapter.prepare else []
    # in this process for one worker, else in worker processes as they finish (stopped at once on Ctrl-C)
    prepare = partial(_prepare_one, adapter.prepare, root, layout)
    for scene, failure in parallel_map(prepare, todo, workers, ordered=False):
        if failure is None:
            result.prepared.append(scene)
        else:
            result.failures[scene] = failure
            log.warning("%s: %s", scene, failure)
        if progress:
            progress(scene)
    complete = [s for s in scenes if s not in result.failures and layout.point_cloud_path(s).is_file()]
    built = {}
    build = partial(_build_one, layout, adapter.label_names(), dataset)
    for scene, outcome in parallel_map(build, complete, workers, ordered=False):
        built[scene] = outcome
        if progress:
            progress(scene)
    metas, frames = [], []
    for scene in complete:  # in the split's order, whatever order the workers finished in
        outcome = built[scene]
        if isinstance(outcome, str):
            result.failures[scene] = outcome
            continue
        metas.append(outcome[0])
        frames.append(outcome[1])
        result.scenes.append(scene)
    write_scene_metadata(layout.scene_metadata_path, metas)
    write_frame_metadata(layout.frame_metadata_path, frames)
    if result.failures:
        atomic_write_text(result.failures_path, json.dumps(result.failures, indent=1, sort_keys=True))
    else:
        result.failures_path.unlink(missing_ok=True)
    return result


def _build_one(layout: ProcessedLayout, label_names: dict[int, str], dataset: str, scene: str):
    """(scene, (scene metadata, frame metadata)) or (scene, reason)."""
    try:
        return scene, (build_scene_meta(layout, scene, label_names, dataset), build_scene_frames(layout, scene))
    except (ValueError, OSError) as exc:
        return scene, f"{type(exc).__name__}: {exc}"
