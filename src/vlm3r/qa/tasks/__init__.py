"""Every question task, as one explicit ordered table (benchmark order: VSI-Bench's, then VSTI-Bench's; a
task's training-only variants after it). Nothing is registered at import; ``BY_NAME`` and ``BY_QUESTION_TYPE``
are look-ups built from the table."""

from __future__ import annotations

from vlm3r.errors import InputError
from vlm3r.qa.benchmarks import BENCHMARKS, SPELLINGS, get_benchmark
from vlm3r.qa.task import QATask
from vlm3r.qa.tasks.camera_displacement import CameraDisplacement
from vlm3r.qa.tasks.camera_movement_direction import (CameraMovementDirection, CameraMovementDirectionV2,
                                                      CameraMovementDirectionV3)
from vlm3r.qa.tasks.camera_obj_abs_dist import CameraObjAbsDist
from vlm3r.qa.tasks.camera_obj_dist_change import CameraObjDistChange
from vlm3r.qa.tasks.camera_obj_rel_dist import CameraObjRelDistV1, CameraObjRelDistV2, CameraObjRelDistV3
from vlm3r.qa.tasks.obj_appearance_order import ObjAppearanceOrder
from vlm3r.qa.tasks.obj_obj_relative_pos import ObjObjRelativePosLR, ObjObjRelativePosNF, ObjObjRelativePosUD
from vlm3r.qa.tasks.object_abs_distance import ObjectAbsDistance
from vlm3r.qa.tasks.object_counting import ObjectCounting
from vlm3r.qa.tasks.object_rel_direction import (ObjectRelDirectionEasy, ObjectRelDirectionHard,
                                                 ObjectRelDirectionMedium)
from vlm3r.qa.tasks.object_rel_distance import ObjectRelDistance, ObjectRelDistanceV2, ObjectRelDistanceV3
from vlm3r.qa.tasks.object_size_estimation import ObjectSizeEstimation
from vlm3r.qa.tasks.room_size_estimation import RoomSizeEstimation
from vlm3r.qa.tasks.route_planning import RoutePlanning

TASKS: tuple[QATask, ...] = (
    ObjectCounting(), ObjectAbsDistance(), ObjectSizeEstimation(), RoomSizeEstimation(),
    ObjectRelDistance(), ObjectRelDistanceV2(), ObjectRelDistanceV3(),
    ObjectRelDirectionEasy(), ObjectRelDirectionMedium(), ObjectRelDirectionHard(),
    RoutePlanning(), ObjAppearanceOrder(),
    CameraObjAbsDist(), CameraObjRelDistV1(), CameraObjRelDistV2(), CameraObjRelDistV3(),
    ObjObjRelativePosNF(), ObjObjRelativePosLR(), ObjObjRelativePosUD(),
    CameraDisplacement(), CameraMovementDirection(), CameraMovementDirectionV2(), CameraMovementDirectionV3(),
    CameraObjDistChange(),
)
BY_NAME: dict[str, QATask] = {task.name: task for task in TASKS}
#: A question type's first task (variants that share a type share its benchmark and answer kind).
BY_QUESTION_TYPE: dict[str, QATask] = {task.question_type: task for task in reversed(TASKS)}
#: Variant names the reference writes that no task here produces, with their answer kind.
REFERENCE_MCA_PREFIXES = ("object_rel_direction", "object_rel_distance", "camera_obj_rel_dist")

if len(BY_NAME) != len(TASKS):
    raise RuntimeError("two tasks share a name")  # a programming error in the table above
if any(task.in_benchmark and task.question_type not in BENCHMARKS[task.bench].question_types for task in TASKS):
    raise RuntimeError("a benchmark task's question type is not in its benchmark's columns")  # the same


def select_tasks(bench: str = "all", names: list[str] | None = None) -> list[QATask]:
    """Tasks by name (any task) or by benchmark (its benchmark tasks; a name or short name of
    ``vlm3r.qa.benchmarks``, or ``all``), in table order."""
    if names:
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise InputError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
        return [BY_NAME[n] for n in names]
    if bench == "all":
        return [t for t in TASKS if t.in_benchmark]
    if bench not in SPELLINGS:
        raise InputError(f"bench must be {', '.join(SPELLINGS)} or all, got {bench!r}")
    return [t for t in TASKS if t.in_benchmark and t.bench == get_benchmark(bench).name]


def answer_kind(question_type: str) -> str:
    """'mca' or 'na' for a question type (the tasks' types and the reference's variant names)."""
    task = BY_QUESTION_TYPE.get(question_type)
    if task is not None:
        return task.kind
    if question_type.startswith(REFERENCE_MCA_PREFIXES):
        return "mca"
    raise InputError(f"unknown question type {question_type!r}")
