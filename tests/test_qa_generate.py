"""Question generation end to end: coverage of every task, metadata-only scenes, determinism, bad metadata,
brute-force answer checks, exports and the command line."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.synthetic.generate import box_surface_points
from vlm3r.eval.baselines import frequency_baseline
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH
from vlm3r.qa.export import to_llava, write_parquet
from vlm3r.qa.generate import SceneInput, generate, load_scenes
from vlm3r.qa.record import QAFileError, QARecord, read_qa_jsonl, write_qa_jsonl
from vlm3r.qa.tasks import select_tasks
from vlm3r.scene import MetadataError, OrientedBox, SceneMeta, read_scene_metadata
from vlm3r.viz.scene_view import render_scene_overview


@pytest.fixture(scope="module")
def generated(qa_synthetic):
    scenes = load_scenes(qa_synthetic)
    records, skips = generate(scenes, select_tasks("all"), seed=0)
    return scenes, records, skips


def test_every_benchmark_task_produces_questions_on_synthetic_scenes(generated):
    _, records, _ = generated
    produced = {r.question_type for r in records}
    expected = {t.question_type for t in select_tasks("all")}
    assert produced == expected
    assert [r.id for r in records] == list(range(len(records)))
    for r in records:
        if r.mc_answer is not None:
            option = r.options["ABCD".index(r.mc_answer)]
            assert str(r.ground_truth) in str(option)  # the letter points at the answer


def test_vsi_tasks_from_scene_metadata_alone(qa_synthetic, tmp_path):
    """The released VSI-Bench meta_info layout: no frames, no instance ids."""
    metadata = read_scene_metadata(next((qa_synthetic / "metadata").rglob("synthetic_metadata_*.json")))
    path = tmp_path / "meta_info_val.json"
    metadata.write(path, format="vsibench")
    records, skips = generate(load_scenes(path), select_tasks("vsi"), seed=0)
    expected = {t.question_type for t in select_tasks("vsi")} - {"obj_appearance_order"}
    assert {r.question_type for r in records} == expected
    assert {s.reason for s in skips if s.task == "obj_appearance_order"} == {"no frame metadata for this scene"}


def test_same_seed_same_file_whatever_the_workers(qa_synthetic, tmp_path):
    scenes = load_scenes(qa_synthetic)
    tasks = select_tasks("all")
    one = [r.to_dict() for r in generate(scenes, tasks, seed=7, workers=1)[0]]
    two = [r.to_dict() for r in generate(scenes, tasks, seed=7, workers=2)[0]]
    assert one == two
    other = [r.to_dict() for r in generate(scenes, tasks, seed=8, workers=1)[0]]
    assert other != one
    write_qa_jsonl(tmp_path / "a.jsonl", generate(scenes, tasks, seed=7)[0])
    write_qa_jsonl(tmp_path / "b.jsonl", generate(scenes, tasks, seed=7)[0])
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_per_scene_limit_applies_after_filtering(qa_synthetic):
    scenes = load_scenes(qa_synthetic)
    records, _ = generate(scenes, select_tasks(names=["object_rel_direction_hard"]), per_scene=2)
    counts = {}
    for r in records:
        counts[r.scene_name] = counts.get(r.scene_name, 0) + 1
    assert set(counts.values()) == {2}  # every scene with enough valid questions keeps exactly 2


def test_bad_metadata_gives_reasons_not_questions(generated):
    scenes, _, _ = generated
    good = scenes[0]
    empty = SceneMeta.from_objects("empty_scene", {}, 20.0, [0, 0, 0], dataset="synthetic")
    flat = SceneMeta.from_objects("flat_scene", {
        **good.scene.objects, "rug": [OrientedBox.from_geometry([1, 1, 0], [2.0, 0.0, 0.0], np.eye(3), 99)]},
        20.0, [0, 0, 0], dataset="synthetic")
    inputs = [SceneInput(empty, None), SceneInput(flat, good.frames), SceneInput(good.scene, None)]
    records, skips = generate(inputs, select_tasks("all"))
    assert {r.scene_name for r in records} == {good.scene.scene_name}
    reasons = {(s.scene, s.reason) for s in skips}
    assert ("empty_scene", "scene has no object boxes") in reasons
    assert any(scene == "flat_scene" and "degenerate box 'rug'[0]" in reason for scene, reason in reasons)
    vsti = {t.name for t in select_tasks("vsti")}
    missing = {s.task for s in skips if s.scene == good.scene.scene_name}
    assert vsti <= missing | {"camera_obj_dist_change"}
    assert all(s.reason == "no frame metadata for this scene" for s in skips
               if s.scene == good.scene.scene_name and s.task in vsti)


def surface(box: OrientedBox, spacing=0.02):
    return box_surface_points(box.centroid, box.axes_lengths, box.normalized_axes, spacing)


def test_distance_answers_match_brute_force(generated):
    scenes, records, _ = generated
    by_name = {s.scene.scene_name: s for s in scenes}
    checked = 0
    for r in records:
        scene = by_name[r.scene_name]
        if r.question_type == "object_abs_distance":
            a = surface(scene.scene.objects[r.extra["category, first object"]][0])
            b = surface(scene.scene.objects[r.extra["category, second object"]][0])
            brute = cKDTree(b).query(a)[0].min()
            # surface sampling every 2 cm over-estimates by at most 2 * sqrt(2) cm, then both are rounded to 0.1
            assert abs(r.ground_truth - brute) <= 0.05 + 0.03 + 1e-9, (r.question, brute)
            checked += 1
        elif r.question_type == "camera_obj_abs_dist":
            frame = next(f for f in scene.frames.frames if f.frame_id == r.frame_indices[0])
            name = r.question.split("nearest point of the ")[1].split(" in frame")[0]
            visible = {b.instance_id for b in frame.bboxes_2d}
            points = np.concatenate([surface(b) for b in scene.scene.objects[name] if b.instance_id in visible])
            brute = np.linalg.norm(points - frame.camera_to_world[:3, 3], axis=1).min()
            assert abs(r.ground_truth - brute) <= 0.05 + 0.02, (r.question, brute)
            checked += 1
    assert checked == 60  # the distance questions of the generated scenes, every one checked above


def test_llava_export_matches_the_reference_prompt():
    record = QARecord(0, "scannet", "scene0001_00", "scannet/videos/scene0001_00.mp4", "object_rel_direction_easy",
                      "If I am standing by the sofa and facing the tv, is the lamp to the left or the right of the tv?",
                      ["A. left", "B. right"], "right", "B")
    numeric = QARecord(1, "scannet", "scene0001_00", "v.mp4", "object_counting", "How many chair(s) are in this room?",
                       ["A. 2", "B. 3", "C. 4", "D. 5"], 3, "B")
    mca, na = to_llava([record, numeric], video_root="data")
    assert mca["conversations"][0]["value"] == (
        "<image>\nThese are frames of a video.\nIf I am standing by the sofa and facing the tv, is the lamp to the "
        "left or the right of the tv?\nOptions:\nA. left\nB. right\nAnswer with the option's letter from the given "
        "choices directly.")
    assert mca["conversations"][1] == {"from": "gpt", "value": "B"}
    assert mca["video"] == "data/scannet/videos/scene0001_00.mp4"
    assert na["conversations"][0]["value"] == ("<image>\nThese are frames of a video.\nHow many chair(s) are in this "
                                               "room?\nPlease answer the question using a single word or phrase.")
    assert na["conversations"][1]["value"] == "3"
    assert to_llava([record])[0]["id"] == to_llava([record])[0]["id"]  # deterministic ids


def test_parquet_export_layouts(generated, tmp_path):
    _, records, _ = generated
    with pytest.raises(ValueError, match="mix"):
        write_parquet(tmp_path / "x.parquet", records)
    write_parquet(tmp_path / "vsi.parquet", records, bench="vsi")
    vsi = pq.read_table(tmp_path / "vsi.parquet").to_pylist()
    vsi_records = [r for r in records if r.question_type in {t.question_type for t in select_tasks("vsi")}]
    assert len(vsi) == len(vsi_records)
    for row, r in zip(vsi, vsi_records):
        expected = r.mc_answer if r.question_type.startswith(("object_rel", "route", "obj_appearance")) \
            else str(r.ground_truth)
        assert row["ground_truth"] == expected and row["question"] == r.question and row["id"] == r.id
    write_parquet(tmp_path / "vsti.parquet", records, bench="vsti")
    vsti = pq.read_table(tmp_path / "vsti.parquet")
    assert {"frame_indices", "mc_answer", "video_path"} <= set(vsti.column_names)


runner = CliRunner()


def test_cli_generate_stats_export(qa_synthetic, tmp_path):
    out = tmp_path / "qa.jsonl"
    result = runner.invoke(app, ["qa", "generate", "--metadata", str(qa_synthetic), "--bench", "vsti", "--out",
                                 str(out), "--workers", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    records = read_qa_jsonl(out)
    assert records and all(r.frame_indices for r in records)
    assert (tmp_path / "qa.skipped.jsonl").exists()
    result = runner.invoke(app, ["qa", "stats", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "camera_displacement" in result.output and f"{len(records)} questions" in \
        result.output
    train = tmp_path / "train.json"
    result = runner.invoke(app, ["qa", "export", "--qa", str(out), "--format", "llava", "--out", str(train)])
    assert result.exit_code == 0 and len(json.loads(train.read_text())) == len(records)
    result = runner.invoke(app, ["qa", "export", "--qa", str(out), "--format", "csv", "--out", str(train)])
    assert result.exit_code != 0
    result = runner.invoke(app, ["qa", "generate", "--metadata", str(qa_synthetic), "--tasks", "no_such_task",
                                 "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "unknown task" in result.output


def test_malformed_qa_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 0}\n')
    with pytest.raises(QAFileError, match="line 1: missing field"):
        read_qa_jsonl(path)
    path.write_text("not json\n")
    with pytest.raises(QAFileError, match="line 1: not valid JSON"):
        read_qa_jsonl(path)


def test_a_folder_without_scene_metadata_is_named(tmp_path):
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(MetadataError, match=f"{tmp_path}: no scene metadata files"):
        load_scenes(tmp_path)


def test_demo_writes_every_stage(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--num-scenes", "1", "--seed", "2"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    records = read_qa_jsonl(tmp_path / "qa.jsonl")
    # exactly the questions the library generates from the scenes the demo wrote, with the demo's seed
    expected, _ = generate(load_scenes(tmp_path / "synthetic"), select_tasks("all"), seed=2)
    assert [r.to_dict() for r in records] == [r.to_dict() for r in expected]
    # the question types the one seeded scene gives: all but counting and appearance order
    assert sorted({r.question_type for r in records}) == [
        "camera_displacement", "camera_movement_direction", "camera_obj_abs_dist", "camera_obj_dist_change",
        "camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3", "obj_obj_relative_pos_lr",
        "obj_obj_relative_pos_nf", "obj_obj_relative_pos_ud", "object_abs_distance", "object_rel_direction_easy",
        "object_rel_direction_hard", "object_rel_direction_medium", "object_rel_distance", "object_size_estimation",
        "room_size_estimation", "route_planning"]
    assert len(json.loads((tmp_path / "train_llava.json").read_text())) == len(records)
    vsi = pq.read_table(tmp_path / "vsibench.parquet").num_rows
    vsti = pq.read_table(tmp_path / "vstibench.parquet").num_rows
    assert vsi + vsti == len(records)
    # the overview draws the scene the metadata describes; redrawn from the files it is the written image
    layout = ProcessedLayout(tmp_path / "synthetic", "synthetic", "train")
    scene = read_scene_metadata(layout.scene_metadata_path).scenes["synth2_0000"]
    again = render_scene_overview(layout, "synth2_0000", tmp_path / "again.png")
    assert again._suptitle.get_text() == (f"synth2_0000 (synthetic, {scene.room_size:.1f} m², {scene.num_objects} "
                                          "objects, 32 sampled frames)")
    with Image.open(tmp_path / "synth2_0000.png") as written, Image.open(tmp_path / "again.png") as redrawn:
        assert np.array_equal(np.asarray(written), np.asarray(redrawn))
    assert "closest distance" in result.output
    for benchmark in (VSIBENCH, VSTIBENCH):  # the frequency baseline of exactly the questions it wrote
        folder = tmp_path / "eval" / benchmark.name
        scores = json.loads((folder / "frequency_scores.json").read_text())
        assert scores == frequency_baseline(benchmark, records).to_json()
        assert scores["n"] == {"vsibench": vsi, "vstibench": vsti}[benchmark.name]  # the parquet's questions
        assert (folder / "report.md").exists()
    assert "frequency baseline" in result.output
    # one scene cannot be split into training and held-out scenes: the demo says so, printed and in its reports
    not_split = ("Not split by scene: the demo has one scene (synth2_0000), so the training conversations and the "
                 "benchmark files come from the same scene and the same questions")
    assert not_split in " ".join(result.output.split())
    assert not_split in (tmp_path / "eval" / "vsibench" / "report.md").read_text()
