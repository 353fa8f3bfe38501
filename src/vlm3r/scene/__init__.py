"""Scene and frame metadata: typed schema and the readers/writers of its file variants."""

from vlm3r.scene.io import (
    MetadataError,
    SceneMetadata,
    SceneMetadataFormat,
    detect_metadata_kind,
    read_frame_metadata,
    read_scene_metadata,
    scene_frames_to_dict,
    scene_to_dict,
    write_frame_metadata,
    write_scene_metadata,
)
from vlm3r.scene.schema import (
    CameraIntrinsics,
    FrameMeta,
    InstanceBox2D,
    OrientedBox,
    SceneFrames,
    SceneMeta,
    category_totals,
    stack_boxes,
)

__all__ = [
    "CameraIntrinsics", "FrameMeta", "InstanceBox2D", "MetadataError", "OrientedBox", "SceneFrames", "SceneMeta",
    "SceneMetadata", "SceneMetadataFormat", "category_totals", "detect_metadata_kind", "read_frame_metadata",
    "read_scene_metadata", "scene_frames_to_dict", "scene_to_dict", "stack_boxes", "write_frame_metadata",
    "write_scene_metadata",
]
