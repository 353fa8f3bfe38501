"""Every task module; importing this package registers them (in benchmark order)."""

from vlm3r.qa.tasks import (  # noqa: F401
    object_counting,
    object_abs_distance,
    object_size_estimation,
    room_size_estimation,
    object_rel_distance,
    object_rel_direction,
    route_planning,
    obj_appearance_order,
    camera_obj_abs_dist,
    camera_obj_rel_dist,
    obj_obj_relative_pos,
    camera_displacement,
    camera_movement_direction,
    camera_obj_dist_change,
)
