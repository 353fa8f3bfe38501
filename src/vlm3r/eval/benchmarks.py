"""Benchmark definitions as data: question types in the paper's column order, merges, aggregation rule."""

from __future__ import annotations

from dataclasses import dataclass

from vlm3r.errors import InputError


@dataclass(frozen=True)
class Column:
    """One column of the benchmark's table: its label and the question types averaged into it; ``in_paper``:
    the paper's table has it (its "Avg." is over those columns)."""

    label: str
    question_types: tuple[str, ...]
    in_paper: bool = True


@dataclass(frozen=True)
class Benchmark:
    name: str
    columns: tuple[Column, ...]
    #: Question types merged (unweighted mean) into one key before the overall mean, as the benchmark reports.
    merged: dict[str, tuple[str, ...]]


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
        Column("Cam-Obj Dist. Change", ("camera_obj_dist_change",), in_paper=False),
        Column("Cam. Mov. Dir.", ("camera_movement_direction",)),
        Column("Obj-Obj Rel. Pos.", ("obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr", "obj_obj_relative_pos_ud")),
        Column("Cam-Obj Rel. Dist.", ("camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3")),
    ),
    merged={},
)

BENCHMARKS = {b.name: b for b in (VSIBENCH, VSTIBENCH)}

#: The paper's VLM-3R (7B) rows (Table 3 for VSI-Bench, with its two decimals; Table 2 for VSTI-Bench, whose
#: "Avg." is the mean of the five columns it shows, as every other row of Table 2 checks: it has no Cam-Obj Dist.
#: Change column and is not the code's mean over question types. VLM-3R's five give 58.94; the table says 58.8).
PAPER_VLM3R: dict[str, dict[str, float]] = {
    "vsibench": {"overall": 60.90, "Obj. Count": 70.16, "Abs. Dist.": 49.38, "Obj. Size": 69.15,
                 "Room Size": 67.12, "Rel. Dist.": 65.35, "Rel. Dir.": 80.52, "Route Plan": 45.36,
                 "Appr. Order": 40.13},
    "vstibench": {"overall": 58.8, "Cam-Obj Abs. Dist.": 39.4, "Cam. Displace.": 39.6, "Cam. Mov. Dir.": 60.6,
                  "Obj-Obj Rel. Pos.": 86.5, "Cam-Obj Rel. Dist.": 68.6},
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]
