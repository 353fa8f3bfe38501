"""The public benchmark files, recognised by what is known about them, so that a report shows the paper's VLM-3R
row only beside a run on the questions the paper scored (a synthetic file's scores say nothing against it).

The public files could not be downloaded where vlm3r is built, so no checksum of them is known: a file is taken
for the public release when its questions agree with every fact in ``PUBLIC_RELEASES`` (the question count, the
count of each question type or group of types, the source datasets, and for VSI-Bench the videos per dataset).
docs/evaluation.md lists the facts and their sources.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from vlm3r.eval.scoring import ScoreReport, paper_report
from vlm3r.qa.benchmarks import Benchmark
from vlm3r.qa.record import QARecord

#: The datasets the public questions are drawn from (VSI-Bench's ``dataset`` column; VLM-3R's generators read
#: no others).
REAL_DATASETS = frozenset({"arkitscenes", "scannet", "scannetpp"})


@dataclass(frozen=True)
class PublicRelease:
    """What is known about one public question file and where the paper's row of it is printed."""

    benchmark: str
    description: str  # the release, as a report names it
    questions: int
    #: question count per group of question types (a group of one type, or the paper's task groups)
    type_counts: tuple[tuple[tuple[str, ...], int], ...]
    datasets: frozenset[str]
    #: distinct (dataset, scene_name) videos per dataset; empty when not known
    videos: tuple[tuple[str, int], ...]
    row_label: str  # the paper's row as a report's table and plot name it
    paper_row: str  # the paper's row in full: paper, table, row name, model


#: VSI-Bench: 5,130 questions and 288 videos (its README and the VLM-3R repository's splits: 150 ARKitScenes, 88
#: ScanNet, 50 ScanNet++ scenes); the per-type counts are a third-party listing (they add up to 5,130).
#: VSTI-Bench: the VLM-3R paper's Table 6 (VSTI Test, 6,042 questions, per task group); videos per dataset unknown.
PUBLIC_RELEASES: dict[str, PublicRelease] = {
    "vsibench": PublicRelease(
        benchmark="vsibench",
        description="the public VSI-Bench test set (nyu-visionx/VSI-Bench, original release)",
        questions=5130,
        type_counts=(
            (("object_counting",), 565), (("object_abs_distance",), 834), (("object_size_estimation",), 953),
            (("room_size_estimation",), 288), (("object_rel_distance",), 710),
            (("object_rel_direction_easy",), 217), (("object_rel_direction_medium",), 378),
            (("object_rel_direction_hard",), 373), (("route_planning",), 194), (("obj_appearance_order",), 618)),
        datasets=REAL_DATASETS,
        videos=(("arkitscenes", 150), ("scannet", 88), ("scannetpp", 50)),
        row_label="paper: VLM-3R 7B, Table 3",
        paper_row="the VLM-3R paper (Fan et al., 2025), Table 3, row 'VLM-3R (Full)', the 7B model",
    ),
    "vstibench": PublicRelease(
        benchmark="vstibench",
        description="the public VSTI-Bench test split as first released (Journey9ni/vstibench, before the erratum)",
        questions=6042,
        type_counts=(
            (("camera_displacement",), 839), (("camera_movement_direction",), 913), (("camera_obj_abs_dist",), 905),
            (("camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3"), 1740),
            (("obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr", "obj_obj_relative_pos_ud"), 1645)),
        datasets=REAL_DATASETS,
        videos=(),
        row_label="paper: VLM-3R 7B, Table 2",
        paper_row="the VLM-3R paper (Fan et al., 2025), Table 2, row 'VLM-3R (7B)' (its 'Avg.' is over the "
                  "table's five columns)",
    ),
}


#: The reference's VSTI-Bench erratum (docs/evaluation.md, "The VSTI-Bench erratum"), said under every VSTI-Bench
#: table: the paper's numbers of these five question types were measured on labels computed with a wrong camera
#: centre, so they (and the paper's average) are not comparable with scores on correct labels.
VSTI_ERRATUM_TYPES = ("camera_displacement", "camera_obj_abs_dist", "camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2",
                      "camera_obj_rel_dist_v3")
VSTI_ERRATUM = (
    "VSTI-Bench erratum: the released labels of " + ", ".join(VSTI_ERRATUM_TYPES) + " were computed with a wrong "
    "camera centre (the translation of the world-to-camera pose, -R^T t, where the camera-to-world pose's own "
    "translation is the centre); the reference has since corrected them and removed the questions that became "
    "ambiguous (Journey9ni/vstibench, newer revisions). The paper's VSTI-Bench numbers of these types, its "
    "Cam-Obj Abs. Dist., Cam. Displace. and Cam-Obj Rel. Dist. columns and its average were measured on the old "
    "labels. vlm3r's generator takes the centre from the camera-to-world pose, as the correction does; the question "
    "file scored here is named by its SHA-256 below, which tells the releases apart.")


def mismatch(release: PublicRelease, questions: list[QARecord]) -> str | None:
    """The first known fact of ``release`` that ``questions`` (the benchmark's questions of one file) disagree
    with, in words; None when they agree with every one."""
    if len(questions) != release.questions:
        return f"it has {len(questions)} {release.benchmark} questions, the public release {release.questions}"
    types = Counter(q.question_type for q in questions)
    known = {t for group, _ in release.type_counts for t in group}
    others = sorted(set(types) - known)
    if others:
        return f"it has question types the public release does not: {', '.join(others)}"
    for group, count in release.type_counts:
        if sum(types[t] for t in group) != count:
            return (f"it has {sum(types[t] for t in group)} {'/'.join(group)} questions, the public release "
                    f"{count}")
    datasets = sorted({str(q.dataset) for q in questions} - release.datasets)
    if datasets:
        return f"its questions come from {', '.join(datasets)}, the public release's from " \
               f"{', '.join(sorted(release.datasets))} only"
    videos = Counter(dataset for dataset, _ in {(q.dataset, q.scene_name) for q in questions})
    if release.videos and dict(release.videos) != dict(videos):
        return (f"its videos per dataset are {dict(sorted(videos.items()))}, the public release's "
                f"{dict(release.videos)}")
    return None


def public_release(benchmark: Benchmark, questions: list[QARecord]) -> PublicRelease | None:
    """The public release that ``questions`` (the benchmark's questions of one file) agree with in every known
    fact, else None: the one place a file is recognised as the public benchmark."""
    release = PUBLIC_RELEASES.get(benchmark.name)
    return release if release is not None and mismatch(release, questions) is None else None


def paper_rows(benchmark: Benchmark, questions: list[QARecord]) -> tuple[dict[str, ScoreReport], str]:
    """The paper's VLM-3R row, labelled with its source, when ``questions`` (the benchmark's questions of the
    file a run read) are the public release, else none; and the report's line that says which and why."""
    release = PUBLIC_RELEASES[benchmark.name]
    reason = mismatch(release, questions)
    erratum = f"\n\n{VSTI_ERRATUM}" if benchmark.name == "vstibench" else ""
    if reason is not None:
        return {}, (f"The paper's VLM-3R row is not shown: this question file is not {release.description} "
                    f"({reason}), so the paper's scores are not comparable with this run's.{erratum}")
    return {release.row_label: paper_report(benchmark)}, (
        f"'{release.row_label}': {release.paper_row}, scored by the paper on all {release.questions} questions. "
        f"Shown because this question file agrees with every known fact of {release.description}: "
        f"{release.questions} questions, the count of each question type, the datasets"
        f"{' and the videos per dataset' if release.videos else ''} (its checksum is not known here).{erratum}")


__all__ = ["PUBLIC_RELEASES", "REAL_DATASETS", "VSTI_ERRATUM", "VSTI_ERRATUM_TYPES", "PublicRelease", "mismatch",
           "paper_rows", "public_release"]
