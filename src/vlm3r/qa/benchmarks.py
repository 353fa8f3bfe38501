"""The benchmarks as data, one table that question generation, export and evaluation all read: each benchmark's
identifier, its question types in the paper's column order, merges and aggregation rule."""

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
    """One benchmark: ``name`` is its identifier everywhere (files, scores, reports, task definitions); ``short``
    is how ``vlm3r qa`` has spelled it on the command line (``--bench vsi``), still read there."""

    name: str
    short: str
    columns: tuple[Column, ...]
    #: Question types merged (unweighted mean) into one key before the overall mean, as the benchmark reports.
    merged: dict[str, tuple[str, ...]]

    @property
    def question_types(self) -> tuple[str, ...]:
        """Every question type the benchmark scores, in its columns' order."""
        return tuple(t for column in self.columns for t in column.question_types)


VSIBENCH = Benchmark(
    "vsibench", "vsi",
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
    "vstibench", "vsti",
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
#: Every spelling a benchmark is looked up by: its name, then its short name.
SPELLINGS = {**BENCHMARKS, **{b.short: b for b in BENCHMARKS.values()}}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``, or by its short name (``vsi``, ``vsti``)."""
    if name not in SPELLINGS:
        raise InputError(f"unknown benchmark {name!r}: {', '.join(BENCHMARKS)} (or "
                         f"{', '.join(b.short for b in BENCHMARKS.values())})")
    return SPELLINGS[name]
