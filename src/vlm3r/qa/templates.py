"""Question templates, verbatim from the reference (they are the benchmarks' format; docs/design.md, data §5-8)."""

from __future__ import annotations

from collections.abc import Callable

OBJ_COUNT = "How many {category}(s) are in this room?"
OBJ_ABS_DISTANCE = ("Measuring from the closest point of each object, what is the direct distance between the "
                    "{object1} and the {object2} (in meters)?")
OBJ_SIZE = ("What is the length of the longest dimension (length, width, or height) of the {category}, measured in "
            "centimeters?")
ROOM_SIZE = ("What is the size of this room (in square meters)? \nIf multiple rooms are shown, estimate the size of "
             "the combined space.")
OBJ_REL_DISTANCE = ("Measuring from the closest point of each object, which of these objects ({choices}) is the "
                    "closest to the {category}?\nIf there are multiple instances of an object category, measure to "
                    "the closest.")
OBJ_REL_DIRECTION_HARD = (
    "If I am standing by the {positioning_object} and facing the {orienting_object}, is the {querying_object} to my "
    "front-left, front-right, back-left, or back-right?\nThe directions refer to the quadrants of a Cartesian plane "
    "(if I am standing at the origin and facing along the positive y-axis).")
OBJ_REL_DIRECTION_MEDIUM = (
    "If I am standing by the {positioning_object} and facing the {orienting_object}, is the {querying_object} to my "
    "left, right, or back?\nAn object is to my back if I would have to turn at least 135 degrees in order to face it.")
OBJ_REL_DIRECTION_EASY = (
    "If I am standing by the {positioning_object} and facing the {orienting_object}, is the {querying_object} to the "
    "left or the right of the {orienting_object}?")
OBJ_APPEARANCE_ORDER = ("What will be the first-time appearance order of the following categories in the video: "
                        "{choice_a}, {choice_b}, {choice_c}, {choice_d}?")
ROUTE_PLAN = (
    "You are a robot beginning at the {start_object} facing the {facing_object}. You want to navigate to the "
    "{destination_object}. You will perform the following actions (Note: for each [please fill in], choose either "
    "'turn back,' 'turn left,' or 'turn right.'): {actions}")

CAMERA_OBJ_DIST = ("What is the approximate distance (in meters) between the camera (or the person filming) and the "
                   "nearest point of the {object_name} in {frame_description}?")
CAMERA_OBJ_REL_DIST = ("Measuring from the closest point of each object, which of these objects ({choices}) is the "
                       "closest to the camera in {frame_description}?")
OBJ_OBJ_REL_POS = {
    "nf": "In {frame_description}, relative to the camera, is {obj_A_name} [Near/Far] compared to {obj_B_name}?",
    "lr": "In {frame_description}, relative to {obj_B_name}, is {obj_A_name} to the [Left/Right]?",
    "ud": "In {frame_description}, relative to {obj_B_name}, is {obj_A_name} to the [Up/Down]?",
}
CAMERA_DISPLACEMENT = ("Approximately how far (in meters) did the camera move between {start_frame_description} and "
                       "{end_frame_description}?")
CAMERA_MOVEMENT_DIRECTION = (
    "During the sequence between {start_frame_description} and {end_frame_description}, what was the primary "
    "consistent direction of the camera's movement relative to its orientation at the start? The options are "
    "{choices}.")
CAMERA_OBJ_DIST_CHANGE = ("By how many meters did the distance between the camera and the nearest point of the "
                          "{object} change between {start_frame_description} and {end_frame_description}?")


def join_choices(values: list, conjunction: str | None = None) -> str:
    """"a, b, c" or, with a conjunction, "a, b, and c" / "a and b" (the movement-direction templates' wording)."""
    values = [str(v) for v in values]
    if conjunction is None or len(values) < 2:
        return ", ".join(values)
    if len(values) == 2:
        return f"{values[0]} {conjunction} {values[1]}"
    return ", ".join(values[:-1]) + f", {conjunction} {values[-1]}"


def frame_description(rank: int, total: int) -> str:
    """"frame k of N": the k-th of the N sampled frames (docs/design.md B21)."""
    return f"frame {rank + 1} of {total}"


def listing_choices(template: str, conjunction: str | None = None, **fields: str) -> Callable[[list], str]:
    """The question of a template whose ``{choices}`` lists the options, as a function of their final order."""
    return lambda ordered: template.format(choices=join_choices(ordered, conjunction), **fields)
