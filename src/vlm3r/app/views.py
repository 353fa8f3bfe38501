"""What each view of ``vlm3r app`` shows, as plain data (a GLB file for the 3D view, framed images, markdown),
computed without gradio so that tests check it directly; ``app.ui`` only wires it to the page."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from vlm3r.app.catalog import Catalog
from vlm3r.datasets.pointcloud import read_point_cloud
from vlm3r.errors import InputError
from vlm3r.eval.files import chance_rows
from vlm3r.eval.report import fmt, score_table
from vlm3r.eval.scoring import correct_letter, option_value, question_score, score
from vlm3r.qa.benchmarks import get_benchmark
from vlm3r.qa.evidence import Evidence
from vlm3r.qa.prompts import question_text
from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import BY_QUESTION_TYPE, TASKS, answer_kind
from vlm3r.utils.fileio import atomic_write_bytes
from vlm3r.viz.frame_boxes import framed_images
from vlm3r.viz.scene3d import POINT_BUDGET, ScenePayload, glb_bytes, scene_payload, with_evidence

ALL_TASKS = "all tasks"  # the task filter's first choice
QUESTION_LABEL_CHARS = 90  # a question's text is cut to this in the question list
# what each colour of scene3d.LINE_COLORS shows, in words, beside the 3D view
SCENE_LEGEND = "red: object boxes; grey: the room; green: the camera path; blue: each sampled frame's view"
EVIDENCE_LEGEND = ("orange: its objects; black: measured lengths; blue: directions; pink: the route; brown crosses: "
                   "points; purple: its frames' views; the other boxes turn grey")


@dataclass
class Shown:
    """One view's content: the GLB file of the 3D view (None: nothing to draw), the framed images with captions
    and the markdown beside them."""

    glb: Path | None = None
    frames: list[tuple[Image.Image, str]] = field(default_factory=list)
    text: str = ""


def write_glb(payload: ScenePayload, workdir: Path) -> Path:
    """The payload's GLB in ``workdir``, named by its content (the same view is one file, written once)."""
    data = glb_bytes(payload)
    path = Path(workdir) / f"{payload.scene_name}-{hashlib.sha256(data).hexdigest()[:16]}.glb"
    if not path.is_file():
        atomic_write_bytes(path, data)
    return path


def _scene_parts(catalog: Catalog, label: str, budget: int):
    if label not in catalog.scenes:
        raise InputError(f"no scene {label!r} among the --data folders' scenes")
    ref = catalog.scenes[label]
    meta, frames = catalog.metadata(ref)
    cloud = read_point_cloud(ref.layout.point_cloud_path(ref.name))
    return ref, meta, frames, scene_payload(meta, cloud.xyz, cloud.rgb, frames, budget)


def show_scene(catalog: Catalog, label: str, workdir: Path, budget: int = POINT_BUDGET) -> Shown:
    """A scene: its 3D view (points, room, labelled boxes, camera path and frustums), frames with their 2D boxes
    and a summary (objects by category, room size, frames)."""
    ref, meta, frames, payload = _scene_parts(catalog, label, budget)
    counts = ", ".join(f"{category} {len(boxes)}" for category, boxes in sorted(meta.objects.items()))
    text = (f"### {ref.name}\n{meta.dataset or ref.layout.dataset}, room {meta.room_size:.1f} m², "
            f"{meta.num_objects} objects, {len(frames.frames)} sampled frames, {len(payload.points):,} points "
            f"shown\n\n**Objects:** {counts}\n\n"
            f"*{SCENE_LEGEND}*")
    return Shown(write_glb(payload, workdir), framed_images(ref.layout, meta, frames), text)


def task_choices(catalog: Catalog) -> list[str]:
    """The task filter: every question type of the questions, in the task table's order, after ``ALL_TASKS``."""
    found = Counter(r.question_type for r in catalog.questions)
    order: dict[str, int] = {}
    for task in TASKS:
        order.setdefault(task.question_type, len(order))
    return [ALL_TASKS, *sorted(found, key=lambda t: (order.get(t, len(order)), t))]


def question_choices(catalog: Catalog, task: str = ALL_TASKS) -> list[tuple[str, int]]:
    """(label, position in ``catalog.questions``) of the questions of a task (every task for ``ALL_TASKS``)."""
    out = []
    for position, record in enumerate(catalog.questions):
        if task not in (ALL_TASKS, record.question_type):
            continue
        question = " ".join(record.question.split())
        if len(question) > QUESTION_LABEL_CHARS:
            question = question[: QUESTION_LABEL_CHARS - 3] + "..."
        out.append((f"#{record.id} {record.scene_name} · {question}", position))
    return out


def answer_line(record: QARecord) -> str:
    """The right answer as it is scored: the letter (with its option) for multiple choice, the value for a number."""
    if answer_kind(record.question_type) == "na":
        return str(record.ground_truth)
    letter = correct_letter(record)
    option = next((str(o) for o in record.options if str(o).startswith(f"{letter}. ")), None)
    return f"{letter} ({option_value(option)})" if option else letter


def show_question(catalog: Catalog, position: int, workdir: Path, budget: int = POINT_BUDGET) -> Shown:
    """A question: its scene with its evidence drawn over it (the objects highlighted, the measured segments, the
    arrows, the route, the frames it compares), those frames (else the scene's), the prompt, the right answer,
    what the evidence shows and, with an eval run, the model's answer and its score."""
    if not 0 <= position < len(catalog.questions):
        raise InputError(f"no question {position} (the --qa files hold {len(catalog.questions)})")
    record = catalog.questions[position]
    source = catalog.question_sources.get(position)
    where = f"{source}: id {record.id}: evidence"
    lines = [f"### #{record.id} · {record.question_type} · {record.scene_name}", "",
             *(f"> {line}  " for line in question_text(record).splitlines()), "",
             f"**Right answer:** {answer_line(record)}"]
    answered = catalog.answer(record, position)
    if answered is not None:
        run, row = answered
        prediction = str(row.get("prediction", ""))
        points = 100 * question_score(record, prediction)
        lines += ["", f"**Model's answer** ({run.run_dir.name}): `{prediction}` · score {fmt(points)}"
                  + (f" · error: {row['error']}" if row.get("error") else "")]
    label = catalog.scene_for(record)
    if label is None:
        lines += ["", f"*Scene {record.scene_name!r} is not in the --data folders: nothing to draw.*"]
        return Shown(None, [], "\n".join(lines))
    ref, meta, frames, payload = _scene_parts(catalog, label, budget)
    raw = record.extra.get("evidence")
    if raw is None:
        lines += ["", "*This question carries no evidence (the public benchmark files have none, nor do question "
                      "files written before `qa generate` wrote it): its scene is shown as it is.*"]
        return Shown(write_glb(payload, workdir), framed_images(ref.layout, meta, frames), "\n".join(lines))
    evidence = Evidence.from_dict(raw, where).to_dict()
    view = with_evidence(payload, meta, frames, evidence, where)
    lines += ["", f"**Evidence** ({EVIDENCE_LEGEND}):", ""]
    lines += [f"- {note}" for note in view.notes] or ["- (none: the whole room)"]
    highlight = {(category, index) for category, index in evidence.get("objects", [])}
    shown_frames = evidence.get("frames") or None
    return Shown(write_glb(view, workdir), framed_images(ref.layout, meta, frames, shown_frames, highlight),
                 "\n".join(lines))


def run_table(catalog: Catalog) -> str:
    """Per benchmark of the questions answered by the runs: the run's per-task scores beside the chance baselines
    (markdown); empty without a run."""
    out = []
    for run in catalog.runs:
        by_bench: dict[str, list[QARecord]] = {}
        for position, record in enumerate(catalog.questions):
            if (catalog.answer(record, position) or (None,))[0] is not run:
                continue
            task = BY_QUESTION_TYPE.get(record.question_type)
            if task is not None:
                by_bench.setdefault(task.bench, []).append(record)
        for bench, records in by_bench.items():
            benchmark = get_benchmark(bench)
            report = score(benchmark, records, {str(r.id): str(run.predictions[str(r.id)].get("prediction", ""))
                                                for r in records})
            out += [f"#### {run.run_dir.name}: {benchmark.name}, {len(records)} questions", "",
                    *score_table({"this run": report, **chance_rows(benchmark, records)}), ""]
    return "\n".join(out)
