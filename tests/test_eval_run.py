"""``vlm3r eval run`` on the tiny model and synthetic videos: prefix-cached answers equal full prompts and ``vlm3r
ask``, kills resume without losing or repeating an answer, 2 processes write what 1 writes, the public layouts
read, bad videos and ids are named, and run.json says what ran."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import eval_args, start_held_run
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.errors import EvalRunError
from vlm3r.eval.predictions import read_predictions
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.qa.prompts import question_text
from vlm3r.qa.record import read_qa_jsonl


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_prefix_cached_answers_equal_full_prompts_and_ask(plain_eval_run, tiny_model, vsi_questions, qa_synthetic,
                                                          tmp_path):
    records = read_qa_jsonl(vsi_questions)
    predictions = [json.loads(x) for x in (plain_eval_run / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [r.id for r in records]  # every question once, in file order
    pipeline = Vlm3rPipeline.from_pretrained(tiny_model, dtype=torch.float32)
    full = {r.id: pipeline.ask(qa_synthetic / r.video_path, question_text(r)) for r in records}
    assert {p["id"]: p["prediction"] for p in predictions} == full
    assert pipeline.encodings == 3  # ask encodes each video once too (the embedding cache)
    batched = tmp_path / "batched"
    assert run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, batched, "--batch-size", 3)).exit_code == 0
    assert (batched / "predictions.jsonl").read_bytes() == (plain_eval_run / "predictions.jsonl").read_bytes()
    one = records[0]
    asked = run_cli("ask", "--model", tiny_model, "--dtype", "fp32", qa_synthetic / one.video_path,
                    question_text(one))
    assert asked.exit_code == 0 and asked.stdout_bytes.decode().strip() == full[one.id]  # bytes: click's text
    # output turns \r\n into \n


def test_report_run_json_and_reruns(plain_eval_run, tiny_model, vsi_questions, qa_synthetic):
    report = (plain_eval_run / "report.md").read_text()
    # synthetic questions: no paper row (test_reports_and_demo.py checks the public file gets it)
    assert "| this run |" in report and "| paper" not in report
    scores = json.loads((plain_eval_run / "scores.json").read_text())
    assert scores["n"] == len(read_qa_jsonl(vsi_questions))
    run = json.loads((plain_eval_run / "run.json").read_text())
    safetensors = tiny_model / "model.safetensors"
    assert run["model_files"]["model"]["files"]["model.safetensors"]["sha256"] == \
        hashlib.sha256(safetensors.read_bytes()).hexdigest()
    assert run["config"]["spatial_tower_select_feature"] == "all" and run["frames"] == 4
    assert run["dtype"] == "fp32" and run["versions"]["torch"] == torch.__version__
    assert run["qa_sha256"] == hashlib.sha256(vsi_questions.read_bytes()).hexdigest()
    before = (plain_eval_run / "predictions.jsonl").read_bytes()
    again = run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, plain_eval_run))  # complete: nothing to answer
    assert again.exit_code == 0 and (plain_eval_run / "predictions.jsonl").read_bytes() == before
    other = run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, plain_eval_run, "--frames", 2))
    assert other.exit_code == 1 and "holds predictions made with other settings (frames differ)" in other.stderr


def test_a_killed_run_resumes_without_losing_or_repeating(plain_eval_run, tiny_model, vsi_questions, qa_synthetic,
                                                          tmp_path):
    """A run held after its first video is killed there: the folder holds exactly that video's answers, and the
    rerun adds the others, each once, to the uninterrupted run's file (Ctrl-C: tests/test_qa3d_run.py, on ScanQA)."""
    sig = signal.SIGKILL
    out = tmp_path / "killed"
    args = eval_args(tiny_model, vsi_questions, qa_synthetic, out)
    process = start_held_run(args, out)
    try:
        process.send_signal(sig)
        process.wait(timeout=30)
    finally:
        process.kill()  # a run that outlived its signal must not outlive the test
    first_video = read_qa_jsonl(vsi_questions)[0].video_path
    plain = (plain_eval_run / "predictions.jsonl").read_bytes().splitlines(keepends=True)
    firsts = sum(1 for r in read_qa_jsonl(vsi_questions) if r.video_path == first_video)
    assert (out / "predictions.jsonl").read_bytes() == b"".join(plain[:firsts])
    resumed = run_cli(*args)
    assert resumed.exit_code == 0, resumed.output
    assert (out / "predictions.jsonl").read_bytes() == b"".join(plain)


def test_two_processes_write_what_one_writes(plain_eval_run, tiny_model, vsi_questions, qa_synthetic, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               "-m", "vlm3r", *map(str, eval_args(tiny_model, vsi_questions, qa_synthetic, out))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "predictions.jsonl").read_bytes() == (plain_eval_run / "predictions.jsonl").read_bytes()
    assert not list(out.glob("predictions.rank*.jsonl"))
    assert json.loads((out / "run.json").read_text())["processes"] == 2


def test_public_layouts(plain_eval_run, tiny_model, vsi_questions, qa_synthetic, tmp_path):
    """VSI-Bench's test.jsonl and parquet (videos at ROOT/<dataset>/<scene_name>.mp4, the letter as ground truth,
    no video_path) and VSTI-style records (video_path relative to ROOT) give the same predictions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = read_qa_jsonl(vsi_questions)
    root = tmp_path / "VSI-Bench"
    rows = []
    for r in records:
        video = root / r.dataset / f"{r.scene_name}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(qa_synthetic / r.video_path, video)
        mca = bool(r.options) and r.mc_answer is not None and r.question_type not in (
            "object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation")
        rows.append({"id": r.id, "dataset": r.dataset, "scene_name": r.scene_name, "question_type": r.question_type,
                     "question": r.question, "options": r.options if mca else None,
                     "ground_truth": r.mc_answer if mca else str(r.ground_truth)})
    (root / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    pq.write_table(pa.Table.from_pylist(rows), root / "test-00000-of-00001.parquet")
    expected = (plain_eval_run / "predictions.jsonl").read_bytes()
    for name in ("test.jsonl", "test-00000-of-00001.parquet"):
        out = tmp_path / name
        result = run_cli(*eval_args(tiny_model, root / name, root, out))
        assert result.exit_code == 0, result.output
        assert (out / "predictions.jsonl").read_bytes() == expected
        assert json.loads((out / "scores.json").read_text()) == json.loads((plain_eval_run / "scores.json").read_text())


def test_bad_videos_and_ids_are_named_before_any_model_work(tiny_model, vsi_questions, qa_synthetic, tmp_path):
    records = read_qa_jsonl(vsi_questions)
    root = tmp_path / "videos"
    shutil.copytree(qa_synthetic / "videos", root / "videos")
    gone = root / records[0].video_path
    gone.unlink()
    broken = next(root / r.video_path for r in records if root / r.video_path != gone)
    broken.write_bytes(b"\x00" * 100)
    out = tmp_path / "run"
    result = run_cli(*eval_args(tiny_model, vsi_questions, root, out))
    message = " ".join(result.stderr.split())
    assert result.exit_code == 1 and "2 of 3 videos cannot be read" in message
    assert f"{gone}: no such file" in message and f"{broken}: not a readable video" in message
    assert not (out / "run.json").exists()  # refused before the model was loaded
    duplicate = tmp_path / "dup.jsonl"
    lines = vsi_questions.read_text().splitlines()
    duplicate.write_text("\n".join(lines + lines[:1]) + "\n")
    result = run_cli(*eval_args(tiny_model, duplicate, qa_synthetic, tmp_path / "dup"))
    assert result.exit_code == 1 and "question ids repeat" in result.stderr


def test_a_video_that_fails_mid_decoding_is_reported_not_silent(tiny_model, vsi_questions, qa_synthetic, tmp_path,
                                                                monkeypatch):
    """A video whose header reads but whose frames do not decode: its questions are answered '' with the error,
    scored as wrong and listed in the report and on stderr."""
    from vlm3r.model import pipeline as pipeline_module
    from vlm3r.utils.video import VideoError

    records = read_qa_jsonl(vsi_questions)
    bad = (qa_synthetic / records[0].video_path).resolve()
    original = pipeline_module.read_video_frames

    def failing(path, num_frames, upright=True):
        if Path(path) == bad:
            raise VideoError(f"{path}: frame 3 cannot be decoded")
        return original(path, num_frames, upright)

    monkeypatch.setattr(pipeline_module, "read_video_frames", failing)
    out = tmp_path / "run"
    result = run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, out))
    assert result.exit_code == 0, result.output
    failed = [r.id for r in records if (qa_synthetic / r.video_path).resolve() == bad]
    rows = read_predictions(out / "predictions.jsonl")
    assert all(rows[str(i)]["prediction"] == "" and "frame 3 cannot be decoded" in rows[str(i)]["error"]
               for i in failed)
    assert f"## {len(failed)} questions without an answer (scored as wrong)" in (out / "report.md").read_text()
    assert f"no answer question {failed[0]}: " in " ".join(result.stderr.split())


def test_predictions_file_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "prediction": "A"}\n{"id": 1, "prediction": "B"}\n')
    with pytest.raises(EvalRunError, match=r"p.jsonl: line 2: id 1 appears twice"):
        read_predictions(path)
    path.write_text('{"id": 1, "prediction": "A"}\n{"id": 2, "predi')  # cut off by a kill
    assert list(read_predictions(path, repair=True)) == ["1"]
    assert path.read_text() == '{"id": 1, "prediction": "A"}\n'
