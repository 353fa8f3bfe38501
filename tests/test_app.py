"""``vlm3r app`` without a browser: what it reads (and the problems it reports instead of failing), what each view
shows for a scene and a question, an eval run's answers and scores, the Ask tab's answers against ``vlm3r ask``."""

import asyncio
import json
import re
import shutil

import numpy as np
import pytest
from helpers import read_glb

from vlm3r.app.catalog import load_catalog
from vlm3r.app.views import ALL_TASKS, question_choices, run_table, show_question, show_scene, task_choices
from vlm3r.errors import InputError, Vlm3rError
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.record import write_qa_jsonl
from vlm3r.qa.tasks import select_tasks


@pytest.fixture(scope="module")
def questions(small_synthetic, tmp_path_factory):
    """Every VSI-Bench task's questions about the small synthetic scenes, one per scene and task."""
    records, _ = generate(load_scenes(small_synthetic), select_tasks("vsi"), seed=0, per_scene=1)
    path = tmp_path_factory.mktemp("app_qa") / "qa.jsonl"
    write_qa_jsonl(path, records)
    return path


def test_bad_folders_and_files_are_reported_not_fatal(small_synthetic, questions, tmp_path):
    bad_qa = tmp_path / "bad.jsonl"
    bad_qa.write_text('{"id": 0, "question": "?"}\n')
    catalog = load_catalog([small_synthetic, tmp_path / "nowhere", tmp_path],
                           [questions, bad_qa, tmp_path / "missing.jsonl"], [tmp_path / "no_run"])
    assert len(catalog.scenes) == 3 and len(catalog.questions) == len(questions.read_text().splitlines())
    assert catalog.problems[0] == f"--data {tmp_path / 'nowhere'}: not a folder"
    assert catalog.problems[1].startswith(f"--data {tmp_path}: no scene metadata")
    assert catalog.problems[2] == f"{bad_qa}: line 1: missing field(s) question_type, ground_truth"
    assert catalog.problems[3:] == [f"--qa {tmp_path / 'missing.jsonl'}: no such file",
                                    f"--run {tmp_path / 'no_run'}: not a folder"]
    # every video under the dataset folder, named relative to it
    assert sorted(catalog.videos) == [f"{small_synthetic.name}/videos/train/{name}.mp4" for name in catalog.scenes]


def test_a_scene_view_draws_its_files(small_synthetic, tmp_path):
    from vlm3r.datasets.layout import ProcessedLayout
    from vlm3r.scene import read_scene_metadata

    catalog = load_catalog([small_synthetic], [], [])
    name = list(catalog.scenes)[1]
    shown = show_scene(catalog, name, tmp_path)
    meta = read_scene_metadata(ProcessedLayout(small_synthetic, "synthetic", "train").scene_metadata_path
                               ).scenes[name]
    gltf, accessor = read_glb(shown.glb.read_bytes())
    boxes = gltf["meshes"][0]["primitives"][2]  # points, room, then the boxes
    assert len(accessor(boxes["attributes"]["POSITION"])) == 24 * meta.num_objects  # 12 edges of 2 ends each
    assert len(shown.frames) == 8 and [c for _, c in shown.frames][:2] == ["frame 0", "frame 6"]
    assert f"{meta.num_objects} objects" in shown.text
    with pytest.raises(InputError, match="no scene 'synth9' among the --data folders' scenes"):
        show_scene(catalog, "synth9", tmp_path)
    assert show_scene(catalog, name, tmp_path).glb == shown.glb  # the same view: one file


def test_a_question_shows_its_evidence_and_a_runs_answer(small_synthetic, questions, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = [json.loads(line) for line in questions.read_text().splitlines()]
    distance = next(r for r in records if r["question_type"] == "object_abs_distance")
    counting = next(r for r in records if r["question_type"] == "object_counting")
    wrong = "A" if counting["mc_answer"] != "A" else "B"
    # the distance answered 27 % too long: a relative error under 1 - t for t = 0.50 ... 0.70, 5 of the 10 thresholds
    answers = [{"id": distance["id"], "prediction": str(round(distance["ground_truth"] * 1.27, 6))},
               {"id": counting["id"], "prediction": wrong}]
    (run / "predictions.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    catalog = load_catalog([small_synthetic], [questions], [run])
    position = next(p for p, r in enumerate(catalog.questions) if r.id == distance["id"])
    shown = show_question(catalog, position, tmp_path)
    assert f"**Right answer:** {distance['ground_truth']}" in shown.text
    assert f"`{round(distance['ground_truth'] * 1.27, 6)}` · score 50.0" in shown.text
    segment = distance["evidence"]["segments"][0]
    assert f"- length: {segment['label']}" in shown.text
    gltf, accessor = read_glb(shown.glb.read_bytes())
    drawn = [accessor(p["attributes"]["POSITION"]) for p in gltf["meshes"][0]["primitives"]]
    # the segment, drawn bold: its own two ends first, then six copies a few millimetres off
    assert any(np.allclose(lines[:2], [segment["from"], segment["to"]], atol=1e-6) and len(lines) == 14
               for lines in drawn)
    counted = show_question(catalog, next(p for p, r in enumerate(catalog.questions) if r.id == counting["id"]),
                            tmp_path)
    assert f"`{wrong}` · score 0.0" in counted.text
    table = run_table(catalog)
    assert "| this run |" in table and "| random |" in table and "| frequency |" in table
    assert "run: vsibench, 2 questions" in table


def test_the_question_list_filters_by_task(small_synthetic, questions):
    catalog = load_catalog([small_synthetic], [questions], [])
    tasks = task_choices(catalog)
    assert tasks[0] == ALL_TASKS and tasks[1:3] == ["object_counting", "object_abs_distance"]  # benchmark order
    counting = question_choices(catalog, "object_counting")
    assert [catalog.questions[p].question_type for _, p in counting] == ["object_counting"] * len(counting)
    assert len(question_choices(catalog)) == len(catalog.questions)


def test_a_question_about_a_missing_point_cloud_says_which_file(small_synthetic, questions, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(small_synthetic, copy)
    catalog = load_catalog([copy], [questions], [])
    name = list(catalog.scenes)[0]
    ply = catalog.scenes[name].layout.point_cloud_path(name)
    ply.unlink()
    with pytest.raises(Vlm3rError, match=re.escape(str(ply))):
        show_scene(catalog, name, tmp_path)


def test_the_ask_tab_streams_what_vlm3r_ask_answers(tiny_model, qa_synthetic):
    from vlm3r.app.ask import AskSession
    from vlm3r.model.pipeline import AskRequest, Vlm3rPipeline

    video = sorted((qa_synthetic / "videos").rglob("*.mp4"))[0]
    question = "How many chairs are in this room?"
    pipeline = Vlm3rPipeline.from_options(tiny_model, dtype="fp32", device="cpu")
    # what `vlm3r ask --model M --dtype fp32 VIDEO QUESTION` prints, by its own code path (the CLI's is one call)
    asked = AskRequest.from_arguments([str(video), question]).answer(pipeline)
    session = AskSession(pipeline)

    async def collect():
        return [text async for text in session.stream(video, question)]

    try:
        pieces = asyncio.run(collect())
        assert pieces[-1] == asked and len(pieces) > 1
        assert all(later.startswith(earlier) for earlier, later in zip(pieces, pieces[1:]))  # it grows
        with pytest.raises(InputError, match="question: ask something"):
            asyncio.run(session.stream(video, "  ").__anext__())
        with pytest.raises(InputError, match="start the app with --cut3r"):
            asyncio.run(session.reconstruct(video, "v"))
    finally:
        session.close()


def test_a_reconstruction_stands_upright_in_the_view():
    from vlm3r.model.cut3r.reconstruction import Reconstruction
    from vlm3r.viz.reconstruction import reconstruction_payload

    # the first camera at the origin, the second 1 m to its right and 2 m ahead; a point 1 m above the first camera
    # (OpenCV y points down) and 3 m ahead of it
    poses = np.stack([np.eye(4), np.eye(4)]).astype(np.float32)
    poses[1, :3, 3] = [1.0, 0.0, 2.0]
    result = Reconstruction(np.array([[0.0, -1.0, 3.0]], np.float32), np.array([[10, 20, 30]], np.uint8), poses,
                            np.array([0, 5]), 0)
    view = reconstruction_payload(result, "room")
    # by hand, z up: right stays x, ahead is y, up is z
    assert np.allclose(view.points, [[0, 3, 1]]) and np.array_equal(view.colors, [[10, 20, 30]])
    assert np.allclose(view.camera_path, [[0, 0, 0], [1, 2, 0]])


def test_the_ask_tab_reconstructs_as_vlm3r_cut3r_reconstruct(tiny_model, tmp_path):
    """The Ask tab's reconstruction is `vlm3r cut3r reconstruct`'s (the same CUT3R, frames and share of points kept),
    turned z up."""
    from helpers import write_tiny_cut3r_with_heads, write_video

    from vlm3r.app.ask import RECONSTRUCTION_KEEP, AskSession
    from vlm3r.geometry.camera import OPENCV_TO_Z_UP
    from vlm3r.model.pipeline import Vlm3rPipeline
    from vlm3r.viz.reconstruction import reconstruct_to_files
    from vlm3r.viz.scene3d import POINT_BUDGET, downsample

    weights, config = write_tiny_cut3r_with_heads(tmp_path)
    video = tmp_path / "room.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8))
    pipeline = Vlm3rPipeline.from_options(tiny_model, dtype="fp32", device="cpu", frames=3)
    session = AskSession(pipeline, weights, config)
    try:
        view = asyncio.run(session.reconstruct(video, "room"))
    finally:
        session.close()
    expected = reconstruct_to_files(video, weights, tmp_path / "room.ply", config, frames=3, keep=RECONSTRUCTION_KEEP)
    assert np.allclose(view.camera_path, expected.camera_to_world[:, :3, 3] @ OPENCV_TO_Z_UP.T, atol=1e-6)
    # 3 frames of 432 x 432 points, half kept, is over the view's budget: the view's fixed subset of them
    kept, kept_colors = downsample(expected.points, expected.colors)
    assert len(expected.points) == 3 * 432 * 432 // 2 and len(kept) == POINT_BUDGET
    assert np.allclose(view.points, kept @ OPENCV_TO_Z_UP.T, atol=1e-5)
    assert np.array_equal(view.colors, kept_colors)


def test_a_run_brings_its_own_question_file_and_says_when_it_cannot(small_synthetic, questions, tmp_path):
    """run.json names the question file the run read (as given on its command line): its questions come along
    when found, and the page says so when not; answers match the questions of the run's own file only."""
    record = json.loads(questions.read_text().splitlines()[0])
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.jsonl").write_text(json.dumps({"id": record["id"], "prediction": "A"}) + "\n")
    (run / "run.json").write_text(json.dumps({"qa": str(questions)}))
    catalog = load_catalog([small_synthetic], [], [run])
    assert catalog.problems == [] and len(catalog.questions) == len(questions.read_text().splitlines())
    assert catalog.answer(catalog.questions[0], 0)[1]["prediction"] == "A"
    copy = tmp_path / "copy.jsonl"  # the same questions from another file: not what the run answered
    shutil.copy(questions, copy)
    both = load_catalog([small_synthetic], [copy], [run])
    assert both.answer(both.questions[0], 0) is None
    assert both.answer(both.questions[len(catalog.questions)], len(catalog.questions)) is not None
    (run / "run.json").write_text(json.dumps({"qa": "elsewhere/qa.jsonl"}))
    lost = load_catalog([small_synthetic], [questions], [run])
    assert lost.problems == [f"{run / 'run.json'}: field qa: elsewhere/qa.jsonl is not found from here (it is taken "
                             f"as the run wrote it); give the run's question file with --qa"]
    assert lost.answer(lost.questions[0], 0)[1]["prediction"] == "A"  # then matched by id to --qa's questions


def test_the_command_with_nothing_to_show_says_what_to_give():
    from typer.testing import CliRunner

    from vlm3r.cli.main import app

    result = CliRunner().invoke(app, ["app"])
    assert result.exit_code == 1
    assert "nothing to show: give --data (a processed dataset), --qa" in " ".join(result.output.split())
