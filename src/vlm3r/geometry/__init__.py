"""Exact, vectorised 3D geometry for scenes: oriented boxes, cameras, rooms."""

from vlm3r.geometry.boxes import (
    box_aabb,
    box_box_closest_points,
    box_box_distance,
    box_corners,
    box_volume,
    boxes_intersect,
    closest_point_in_box,
    point_box_distance,
    points_in_box,
    segment_segment_distance,
    to_box_frame,
)
from vlm3r.geometry.camera import (
    FRUSTUM_EDGES,
    camera_center,
    camera_to_world,
    frustum_points,
    intrinsic_matrix,
    invert_pose,
    project,
    rotation_error,
    rotation_problem,
    unproject,
    viewing_direction,
    world_to_camera,
)
from vlm3r.geometry.room import alpha_shape_area, gravity_aligned_box, min_area_rectangle, polygon_area

__all__ = [
    "FRUSTUM_EDGES", "frustum_points",
    "alpha_shape_area", "box_aabb", "box_box_closest_points", "box_box_distance", "box_corners", "box_volume",
    "boxes_intersect",
    "camera_center", "camera_to_world", "gravity_aligned_box", "intrinsic_matrix", "invert_pose",
    "closest_point_in_box", "min_area_rectangle", "point_box_distance", "points_in_box", "polygon_area", "project",
    "rotation_error",
    "rotation_problem",
    "segment_segment_distance", "to_box_frame", "unproject", "viewing_direction", "world_to_camera",
]
