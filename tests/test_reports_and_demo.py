"""What the reports, pictures and the demo show a new user: the paper's row only beside the public benchmark,
empty answers counted, plots that draw every value and hide none, scene labels that do not overlap, the valid
scene names when one is wrong, and a demo whose benchmark files come from scenes its training data does not."""

import hashlib
import itertools
import json
import shutil

import pyarrow.parquet as pq
from helpers import eval_args
from typer.testing import CliRunner

from conftest import FULL_LENGTH_TINY, NUM_SCENES, SEED
from vlm3r.cli.main import app
from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.synthetic.generate import scene_name
from vlm3r.eval import report as report_module
from vlm3r.eval.files import write_results
from vlm3r.eval.metrics import MRA_THRESHOLDS
from vlm3r.eval.predictions import empty_answers
from vlm3r.eval.public import mismatch, PUBLIC_RELEASES
from vlm3r.eval.scoring import aggregate, paper_report
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.record import QARecord, read_qa_jsonl, write_qa_jsonl
from vlm3r.qa.tasks import answer_kind, select_tasks

runner = CliRunner()


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def flat(text: str) -> str:
    """Printed text with rich's line wrapping undone."""
    return " ".join(text.split())


# ------------------------------------------------------------------------------------ the paper's row
# The public files' facts as the spec gives them (reference-data.md §9.1 and §10; the paper's Table 6), written
# out here again: the tests' expectation, not read from vlm3r.eval.public.
VSI_COUNTS = {"object_counting": 565, "object_abs_distance": 834, "object_size_estimation": 953,
              "room_size_estimation": 288, "object_rel_distance": 710, "object_rel_direction_easy": 217,
              "object_rel_direction_medium": 378, "object_rel_direction_hard": 373, "route_planning": 194,
              "obj_appearance_order": 618}
VSI_VIDEOS = {"arkitscenes": 150, "scannet": 88, "scannetpp": 50}
VSTI_COUNTS = {"camera_displacement": 839, "camera_movement_direction": 913, "camera_obj_abs_dist": 905,
               "camera_obj_rel_dist_v1": 580, "camera_obj_rel_dist_v2": 580, "camera_obj_rel_dist_v3": 580,
               "obj_obj_relative_pos_nf": 549, "obj_obj_relative_pos_lr": 548, "obj_obj_relative_pos_ud": 548}


def records_like(counts: dict[str, int], videos: dict[str, int]) -> list[QARecord]:
    """Questions with the given count per type, dealt in turn over the given videos per dataset; multiple choice
    answered by "A", numbers by 2."""
    scenes = [(dataset, f"{dataset}_{i:03d}") for dataset, n in videos.items() for i in range(n)]
    records = []
    for question_type, count in counts.items():
        mca = answer_kind(question_type) == "mca"
        for _ in range(count):
            dataset, scene = scenes[len(records) % len(scenes)]
            records.append(QARecord(len(records), dataset, scene, "", question_type, "q?",
                                    ["A. x", "B. y"] if mca else [], "A" if mca else "2", None))
    return records


def right_answers(records: list[QARecord]) -> dict[str, dict]:
    return {str(r.id): {"id": r.id, "prediction": str(r.ground_truth)} for r in records}


def table_rows(report: str) -> list[str]:
    """The first table's row names."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| |"))
    return [line.split(" | ")[0][2:] for line in itertools.takewhile(lambda x: x.startswith("|"), lines[start + 2:])]


def test_the_public_vsibench_file_gets_the_paper_row_labelled(tmp_path):
    records = records_like(VSI_COUNTS, VSI_VIDEOS)
    assert len(records) == 5130
    write_results(tmp_path, VSIBENCH, records, right_answers(records), "t")
    report = (tmp_path / "report.md").read_text()
    assert table_rows(report) == ["this run", "paper: VLM-3R 7B, Table 3", "random", "frequency"]
    # Table 3, "VLM-3R (Full)": 60.90 70.16 49.38 69.15 67.12 65.35 80.52 45.36 40.13, one decimal
    assert "| paper: VLM-3R 7B, Table 3 | 60.9 | 70.2 | 49.4 | 69.2 | 67.1 | 65.3 | 80.5 | 45.4 | 40.1 |" in report
    assert ("'paper: VLM-3R 7B, Table 3': the VLM-3R paper (Fan et al., 2025), Table 3, row 'VLM-3R (Full)', the 7B "
            "model, scored by the paper on all 5130 questions.") in report
    assert "(its checksum is not known here)" in report
    # a run of the file's first 10 questions (--limit) read the public file: the row stays, labelled the same
    write_results(tmp_path / "limited", VSIBENCH, records[:10], right_answers(records), "t", file_questions=records)
    assert "paper: VLM-3R 7B, Table 3" in table_rows((tmp_path / "limited" / "report.md").read_text())
    # without the file's questions, those 10 are all the run knows of: not the public file
    write_results(tmp_path / "ten", VSIBENCH, records[:10], right_answers(records), "t")
    assert table_rows((tmp_path / "ten" / "report.md").read_text()) == ["this run", "random", "frequency"]


def test_one_fact_off_and_the_file_is_not_the_public_one():
    release = PUBLIC_RELEASES["vsibench"]
    records = records_like(VSI_COUNTS, VSI_VIDEOS)
    assert mismatch(release, records) is None
    assert mismatch(release, records[:-1]) == "it has 5129 vsibench questions, the public release 5130"
    first = records[0]  # an object_counting question
    swapped = [QARecord(**{**vars(first), "question_type": "object_abs_distance"}), *records[1:]]
    assert mismatch(release, swapped) == "it has 564 object_counting questions, the public release 565"
    synthetic = [QARecord(**{**vars(first), "dataset": "synthetic"}), *records[1:]]
    assert mismatch(release, synthetic) == ("its questions come from synthetic, the public release's from "
                                            "arkitscenes, scannet, scannetpp only")
    moved = [QARecord(**{**vars(first), "dataset": "scannet", "scene_name": "scene_new"}), *records[1:]]
    assert mismatch(release, moved) == (
        "its videos per dataset are {'arkitscenes': 150, 'scannet': 89, 'scannetpp': 50}, the public release's "
        "{'arkitscenes': 150, 'scannet': 88, 'scannetpp': 50}")


def test_the_public_vstibench_file_gets_table_2(tmp_path):
    records = records_like(VSTI_COUNTS, {"scannet": 50})
    assert len(records) == 6042
    write_results(tmp_path, VSTIBENCH, records, right_answers(records), "t")
    report = (tmp_path / "report.md").read_text()
    # Table 2, VLM-3R (7B): Avg. 58.8 over its five columns 39.4 39.6 60.6 86.5 68.6 (no overall of its own)
    assert "| paper: VLM-3R 7B, Table 2 | - | 58.8 | 39.4 | 39.6 | 60.6 | 86.5 | 68.6 |" in report
    extra = records + records_like({"camera_obj_dist_change": 1}, {"scannet": 1})[:1]
    assert mismatch(PUBLIC_RELEASES["vstibench"], extra) == "it has 6043 vstibench questions, the public release 6042"
    extra = records[1:] + [QARecord(**{**vars(records[0]), "question_type": "camera_obj_dist_change"})]
    assert mismatch(PUBLIC_RELEASES["vstibench"], extra) == \
        "it has question types the public release does not: camera_obj_dist_change"


def test_vstibench_reports_carry_the_erratum_and_the_files_checksum(tmp_path):
    """Every VSTI-Bench report says that the paper's numbers of the five camera types were measured on labels with a
    wrong camera centre, beside the public first release (its paper row) and beside any other file; every report
    names the question file scored by its SHA-256, which tells the releases apart. VSI-Bench has no erratum."""
    public = records_like(VSTI_COUNTS, {"scannet": 50})
    small = public[:: 500]
    for name, records in (("public", public), ("small", small)):
        qa = tmp_path / f"{name}.jsonl"
        write_qa_jsonl(qa, records)
        pred = tmp_path / f"{name}_pred.jsonl"
        pred.write_text("".join(json.dumps(row) + "\n" for row in right_answers(records).values()))
        out = tmp_path / name
        result = CliRunner().invoke(app, ["eval", "score", "--bench", "vstibench", "--qa", str(qa), "--pred", str(pred),
                                          "--out", str(out)])
        assert result.exit_code == 0, result.output
        report = " ".join((out / "report.md").read_text().split())
        assert ("VSTI-Bench erratum: the released labels of camera_displacement, camera_obj_abs_dist, "
                "camera_obj_rel_dist_v1, camera_obj_rel_dist_v2, camera_obj_rel_dist_v3 were computed with a wrong "
                "camera centre") in report
        assert f"Question file: {qa} (SHA-256 {hashlib.sha256(qa.read_bytes()).hexdigest()})." in report
        assert ("paper: VLM-3R 7B, Table 2" in table_rows((out / "report.md").read_text())) == (name == "public")
    vsi = records_like({"object_counting": 3}, {"scannet": 1})
    write_results(tmp_path / "vsi", VSIBENCH, vsi, right_answers(vsi), "t")
    assert "erratum" not in (tmp_path / "vsi" / "report.md").read_text()


def test_a_synthetic_run_has_no_paper_row_and_counts_its_empty_answers(plain_eval_run, vsi_questions):
    report = (plain_eval_run / "report.md").read_text()
    count = len(read_qa_jsonl(vsi_questions))
    assert table_rows(report) == ["this run", "random", "frequency"]
    assert "paper" not in "".join(line for line in report.splitlines() if line.startswith("|"))
    assert (f"The paper's VLM-3R row is not shown: this question file is not the public VSI-Bench test set "
            f"(nyu-visionx/VSI-Bench, original release) (it has {count} vsibench questions, the public release "
            "5130)") in report
    predictions = [json.loads(line) for line in (plain_eval_run / "predictions.jsonl").read_text().splitlines()]
    assert all(p["prediction"].strip() for p in predictions)  # the tiny model always says something
    assert f"\nEmpty answers: none of the {count}.\n" in report


# ------------------------------------------------------------------------------------ empty answers
def test_empty_answers(tmp_path):
    rows = {"1": {"prediction": ""}, "2": {"prediction": " \n"}, "3": {"prediction": "A"},
            "4": {"prediction": "", "error": "video failed"}}
    assert empty_answers(rows) == ["1", "2"]  # a failed video is listed with its reason instead
    assert report_module.empty_answers_note([], 4) == "Empty answers: none of the 4."
    assert report_module.empty_answers_note(["1", "2"], 4) == (
        "Empty answers: 2 of the 4 answers are empty text (the model generated nothing; each is scored as wrong): "
        "questions 1, 2.")


def test_a_model_that_says_nothing_is_reported(tiny_model, vsi_questions, qa_synthetic, tmp_path, monkeypatch):
    from vlm3r.model.pipeline import Vlm3rPipeline

    monkeypatch.setattr(Vlm3rPipeline, "ask_video", lambda self, video, questions, *a, **k: [""] * len(questions))
    out = tmp_path / "silent"
    result = run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, out))
    assert result.exit_code == 0, result.output
    ids = [str(r.id) for r in read_qa_jsonl(vsi_questions)]
    expected = (f"Empty answers: {len(ids)} of the {len(ids)} answers are empty text (the model generated nothing; "
                f"each is scored as wrong): questions {', '.join(ids)}.")
    assert expected in flat(result.output)
    assert f"\n**{expected}**\n" in (out / "report.md").read_text()


def test_eval_score_report_counts_empty_answers(vsi_questions, tmp_path):
    records = read_qa_jsonl(vsi_questions)
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"id": r.id, "prediction": "" if i < 2 else "A"}) + "\n"
                            for i, r in enumerate(records)))
    assert run_cli("eval", "score", "--bench", "vsibench", "--qa", vsi_questions, "--pred", pred,
                   "--out", tmp_path / "out").exit_code == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert (f"Empty answers: 2 of the {len(records)} answers are empty text (the model generated nothing; each is "
            f"scored as wrong): questions {records[0].id}, {records[1].id}.") in report


# ------------------------------------------------------------------------------------ plots
def overlap(a, b) -> bool:
    """Whether two display boxes share any area."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def within(inner, outer) -> bool:
    return outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0 and inner.y1 <= outer.y1


def test_bars_label_every_value_and_the_legend_covers_none(tmp_path):
    per_type = {t: 0.0 for t in VSIBENCH.question_types}
    per_type["route_planning"] = 100.0
    run = aggregate(VSIBENCH, per_type, {t: 1 for t in per_type})
    chance = aggregate(VSIBENCH, {t: None if answer_kind(t) == "na" else 25.0 for t in per_type},
                       {t: 1 for t in per_type})
    rows = {"this run": run, "paper": paper_report(VSIBENCH), "random": chance}
    figure = report_module._plot_bars(tmp_path / "tasks.png", rows, list(run.columns))
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert not overlap(legend, ax.get_window_extent(renderer))  # beside the axes, so over no bar
    labels = {(round(t.xy[0], 6), round(t.xy[1], 6)): t.get_text() for t in ax.texts}  # at each bar's top centre
    drawn = [[labels[round(bar.get_x() + bar.get_width() / 2, 6), round(bar.get_height(), 6)] for bar in container]
             for container in ax.containers]
    assert len(ax.texts) == 3 * 8
    assert drawn == [["0.0"] * 6 + ["100.0", "0.0"],  # a score of 0 is drawn: its label
                     ["70.2", "49.4", "69.2", "67.1", "65.3", "80.5", "45.4", "40.1"],
                     ["-"] * 4 + ["25.0"] * 4]  # no score: "-" over the hatched stub
    frame = ax.get_window_extent(renderer)
    assert all(within(text.get_window_extent(renderer), frame) for text in ax.texts)  # room above 100


def test_equal_mra_curves_stay_distinguishable(tmp_path):
    flat_zero, falling = [0.0] * len(MRA_THRESHOLDS), [80.0 - 8 * i for i in range(len(MRA_THRESHOLDS))]
    curves = {"object_counting": flat_zero, "object_abs_distance": falling, "object_size_estimation": flat_zero,
              "room_size_estimation": list(falling)}
    report = aggregate(VSIBENCH, {t: 0.0 for t in curves}, {t: 1 for t in curves}, curves)
    figure = report_module._plot_mra(tmp_path / "mra.png", report)
    ax = figure.axes[0]
    lines = ax.get_lines()
    assert [list(line.get_ydata()) for line in lines] == list(curves.values())
    styles = [(line.get_marker(), line.get_linestyle(), line.get_markersize()) for line in lines]
    assert len(set(m for m, _, _ in styles)) == 4 and len(set(s for _, s, _ in styles)) == 4
    assert ax.get_title() == ("vsibench: numeric answers within each MRA threshold\n"
                              "equal, drawn on top of each other: object_counting = object_size_estimation\n"
                              "equal, drawn on top of each other: object_abs_distance = room_size_estimation")
    renderer = figure.canvas.get_renderer()
    assert not overlap(ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer))
    different = aggregate(VSIBENCH, {"object_counting": 0.0, "room_size_estimation": 0.0},
                          {"object_counting": 1, "room_size_estimation": 1},
                          {"object_counting": flat_zero, "room_size_estimation": [1.0] + flat_zero[1:]})
    assert report_module._plot_mra(tmp_path / "b.png", different).axes[0].get_title() == \
        "vsibench: numeric answers within each MRA threshold"


# ------------------------------------------------------------------------------------ scenes show
def crowded_copy(small_synthetic, tmp_path):
    """The first small scene with every box moved to within 0.2 m of the room's centre (labels would pile up)."""
    shutil.copytree(small_synthetic / "metadata", tmp_path / "metadata")
    shutil.copytree(small_synthetic / "color", tmp_path / "color")
    path = tmp_path / "metadata" / "train" / "synthetic_metadata_train.json"
    data = json.loads(path.read_text())
    scene = data[scene_name(SEED, 0)]
    centre = scene["room_center"]
    categories = []
    for k, (category, boxes) in enumerate(sorted(scene["object_bboxes"].items())):
        for j, box in enumerate(boxes):
            shift = [centre[0] + 0.05 * (k % 4) - box["centroid"][0], centre[1] + 0.05 * j - box["centroid"][1]]
            for key in ("centroid", "min", "max"):
                box[key] = [box[key][0] + shift[0], box[key][1] + shift[1], box[key][2]]
            categories.append(category)
    path.write_text(json.dumps(data))
    return ProcessedLayout(tmp_path, "synthetic", "train"), sorted(categories)


def test_object_labels_do_not_overlap(small_synthetic, tmp_path):
    from vlm3r.viz.scene_view import LABEL_GID, render_scene_overview

    layout, categories = crowded_copy(small_synthetic, tmp_path)
    assert len(categories) >= 8
    figure = render_scene_overview(layout, scene_name(SEED, 0), tmp_path / "crowded.png")
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_gid() == LABEL_GID]
    assert sorted(t.get_text() for t in labels) == categories  # every box labelled once
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not overlap(a, b)
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_a_wrong_scene_name_lists_the_valid_ones(small_synthetic, tmp_path):
    from vlm3r.viz.scene_view import SHOWN_SCENES

    result = run_cli("scenes", "show", small_synthetic / "no_such_scene", "--out", tmp_path / "x.png")
    names = ", ".join(scene_name(SEED, i) for i in range(NUM_SCENES))
    assert result.exit_code == 1 and f"the scenes there: {names}" in flat(result.output)
    shutil.copytree(small_synthetic / "metadata", tmp_path / "metadata")
    path = tmp_path / "metadata" / "train" / "synthetic_metadata_train.json"
    data = json.loads(path.read_text())
    many = {f"scene{i:02d}": {**data[scene_name(SEED, 0)], "scene_name": f"scene{i:02d}"} for i in range(25)}
    path.write_text(json.dumps(many))
    result = run_cli("scenes", "show", tmp_path / "nope", "--out", tmp_path / "x.png")
    shown = ", ".join(f"scene{i:02d}" for i in range(SHOWN_SCENES))
    assert result.exit_code == 1 and f"the scenes there: {shown}, ... (25 in all)" in flat(result.output)


# ------------------------------------------------------------------------------------ the demo
def test_demo_splits_by_scene(tmp_path, monkeypatch):
    """Three scenes: the first two give the training conversations, the last (a third, held out) the benchmark
    files and the baselines; each count from generating the questions of those scenes alone."""
    from vlm3r.cli import demo as demo_command

    monkeypatch.setattr(demo_command, "SynthConfig", lambda: FULL_LENGTH_TINY)  # the demo at a tiny size
    result = run_cli("demo", "--out", tmp_path, "--num-scenes", 3, "--seed", 1)
    assert result.exit_code == 0, result.output
    root = tmp_path / "synthetic"
    train, held = [scene_name(1, 0), scene_name(1, 1)], [scene_name(1, 2)]
    for name in train:
        assert (root / "videos" / "train" / f"{name}.mp4").is_file()
    assert (root / "videos" / "val" / f"{held[0]}.mp4").is_file()
    assert not (root / "videos" / "train" / f"{held[0]}.mp4").exists()
    tasks = select_tasks("all")
    trained, _ = generate(load_scenes(root / "metadata" / "train" / "synthetic_metadata_train.json"), tasks, seed=1)
    tested, _ = generate(load_scenes(root / "metadata" / "val" / "synthetic_metadata_val.json"), tasks, seed=1)
    assert {r.scene_name for r in trained} == set(train) and {r.scene_name for r in tested} == set(held)
    conversations = json.loads((tmp_path / "train_llava.json").read_text())
    assert len(conversations) == len(trained)
    assert {tuple(c["video"].split("/")[-2:]) for c in conversations} == {("train", f"{n}.mp4") for n in train}
    for benchmark in (VSIBENCH, VSTIBENCH):
        table = pq.read_table(tmp_path / f"{benchmark.name}.parquet").to_pylist()
        mine = [r for r in tested if r.question_type in benchmark.question_types]
        # the same questions (ids are numbered over every scene's questions, so they are not compared)
        assert [(row["scene_name"], row["question_type"], row["question"]) for row in table] == \
            [(r.scene_name, r.question_type, r.question) for r in mine]
        scores = json.loads((tmp_path / "eval" / benchmark.name / "frequency_scores.json").read_text())
        assert scores["n"] == len(mine)
        note = ("Split by scene: training conversations from synth1_0000, synth1_0001 (videos/train); benchmark "
                "files and baselines from synth1_0002 (videos/val), held out of the training data.")
        assert note in (tmp_path / "eval" / benchmark.name / "report.md").read_text()
    assert len(read_qa_jsonl(tmp_path / "qa.jsonl")) == len(trained) + len(tested)  # every scene's questions
    printed = flat(result.output)
    assert note in printed
    vsi = sum(1 for r in tested if r.question_type in VSIBENCH.question_types)
    assert (f"training data: {tmp_path / 'train_llava.json'} ({len(trained)} conversations: synth1_0000, "
            "synth1_0001)") in printed
    assert (f"benchmarks: {tmp_path / 'vsibench.parquet'}, {tmp_path / 'vstibench.parquet'} ({vsi} and "
            f"{len(tested) - vsi} questions: synth1_0002)") in printed
    assert f"videos: {root / 'videos' / 'train'}, {root / 'videos' / 'val'}" in printed


def test_held_out_count():
    from vlm3r.eval.demo import held_out_count

    # a third of the scenes, rounded, at least one, never all of them; one scene is not split
    assert [held_out_count(n) for n in (1, 2, 3, 4, 5, 6, 10)] == [0, 1, 1, 1, 2, 2, 3]
