"""Benchmark definitions as data: question types in the paper's column order, merges, aggregation rule."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of the paper's table: its label and the question types averaged into it."""

    label: str
    question_types: tuple[str, ...]


@dataclass(frozen=True)
class Benchmark:
    name: str
    columns: tuple[Column, ...]
    #: Question types merged (unweighted mean) into one key before the overall mean, as the benchmark reports.
    merged: dict[str, tuple[str, ...]]

    def column_of(self, question_type: str) -> Column | None:
        return next((c for c in self.columns if question_type in c.question_types), None)


VSIBENCH = Benchmark(
    "vsibench",
    columns=(
        Column("Obj. Count", ("object_counting",)),
        Column("Abs. Dist.", ("object_abs_distance",)),
        Column("Obj. Size", ("object_size_estimation",)),
        Column("Room Size", ("room_size_estimation",)),
        Column("Rel. Dist.", ("object_rel_distance",)),
        Column("Rel. Dir.", ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard")),
        Column("Route Plan", ("route_planning",)),
        Column("Appr. Order", ("obj_appearance_order",)),
    ),
    merged={"object_rel_direction": ("object_rel_direction_easy", "object_rel_direction_medium",
                                     "object_rel_direction_hard")},
)

#: VSTI-Bench's code averages every question type present (no merges); the paper's table shows five columns.
VSTIBENCH = Benchmark(
    "vstibench",
    columns=(
        Column("Cam-Obj Abs. Dist.", ("camera_obj_abs_dist",)),
        Column("Cam. Displace.", ("camera_displacement",)),
        Column("Cam-Obj Dist. Change", ("camera_obj_dist_change",)),
        Column("Cam. Mov. Dir.", ("camera_movement_direction",)),
        Column("Obj-Obj Rel. Pos.", ("obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr", "obj_obj_relative_pos_ud")),
        Column("Cam-Obj Rel. Dist.", ("camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3")),
    ),
    merged={},
)

BENCHMARKS = {b.name: b for b in (VSIBENCH, VSTIBENCH)}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]
