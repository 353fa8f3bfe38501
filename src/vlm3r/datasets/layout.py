"""The processed-dataset layout every adapter writes and every later stage reads (docs/design.md, data §0).

Relative to a processed dataset root:

    metadata/<split>/<dataset>_metadata_<split>.json        scene metadata
    metadata/<split>/<dataset>_frame_metadata_<split>.json  frame metadata
    color/<split>/<scene>/<frame:06d>.jpg                   sampled colour frames
    depth/<split>/<scene>/<frame:06d>.png                   16-bit depth in millimetres
    instance/<split>/<scene>/<frame:06d>.png                instance masks (value = instance id + 1, 0 = none)
    pose/<split>/<scene>/<frame:06d>.txt                    4x4 camera-to-world (OpenCV camera axes)
    intrinsic/<split>/intrinsic_depth_<scene>.txt           4x4 pinhole matrix for the sampled frames
    point_cloud/<split>/<scene>.ply                         labelled point cloud (x,y,z,rgb,label,instance_id)
    boxes/<split>/<scene>.json                              annotated boxes, for datasets that have them
    videos/<split>/<scene>.mp4                              the scene's video

``<frame>`` is the frame's index in the video, so "frame k of N" questions point at real video frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vlm3r.errors import SceneBuildError

#: ScanNet's convention, which vlm3r's adapters follow: mask pixel value = instance id + 1.
MASK_VALUE_OFFSET = 1


def listed_or_all(listing: Path, folder: Path, dataset: str) -> list[str]:
    """A raw dataset's scenes: the names in ``listing`` (one per line) if it exists, else every sub-folder of
    ``folder``."""
    if listing.is_file():
        try:
            text = listing.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SceneBuildError(f"{listing}: the {dataset} scene list is not readable text ({exc})") from exc
        return [line.strip() for line in text.splitlines() if line.strip()]
    if not folder.is_dir():
        raise SceneBuildError(f"{folder}: no such folder of {dataset} scenes, and no scene list {listing} "
                              f"(is this {dataset}?)")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


@dataclass(frozen=True)
class ProcessedLayout:
    root: Path
    dataset: str
    split: str

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def scene_metadata_path(self) -> Path:
        return self.root / "metadata" / self.split / f"{self.dataset}_metadata_{self.split}.json"

    @property
    def frame_metadata_path(self) -> Path:
        return self.root / "metadata" / self.split / f"{self.dataset}_frame_metadata_{self.split}.json"

    def _frame_file(self, kind: str, scene: str, frame_id: int, suffix: str) -> Path:
        return self.root / kind / self.split / scene / f"{frame_id:06d}{suffix}"

    def color_path(self, scene: str, frame_id: int) -> Path:
        return self._frame_file("color", scene, frame_id, ".jpg")

    def depth_path(self, scene: str, frame_id: int) -> Path:
        return self._frame_file("depth", scene, frame_id, ".png")

    def instance_path(self, scene: str, frame_id: int) -> Path:
        return self._frame_file("instance", scene, frame_id, ".png")

    def pose_path(self, scene: str, frame_id: int) -> Path:
        return self._frame_file("pose", scene, frame_id, ".txt")

    def pose_dir(self, scene: str) -> Path:
        return self.root / "pose" / self.split / scene

    def intrinsic_path(self, scene: str) -> Path:
        return self.root / "intrinsic" / self.split / f"intrinsic_depth_{scene}.txt"

    def point_cloud_path(self, scene: str) -> Path:
        return self.root / "point_cloud" / self.split / f"{scene}.ply"

    def boxes_path(self, scene: str) -> Path:
        return self.root / "boxes" / self.split / f"{scene}.json"

    def video_path(self, scene: str) -> Path:
        return self.root / "videos" / self.split / f"{scene}.mp4"

    def relative(self, path: Path) -> str:
        """A path as stored in metadata: relative to the dataset root, with forward slashes."""
        return Path(path).relative_to(self.root).as_posix()

    def scene_names(self) -> list[str]:
        """Scenes that have a point cloud, sorted."""
        folder = self.root / "point_cloud" / self.split
        return sorted(p.stem for p in folder.glob("*.ply")) if folder.is_dir() else []

    def frame_ids(self, scene: str) -> list[int]:
        """Sampled frame ids of a scene (from its pose files), ascending."""
        folder = self.pose_dir(scene)
        return sorted(int(p.stem) for p in folder.glob("*.txt")) if folder.is_dir() else []
