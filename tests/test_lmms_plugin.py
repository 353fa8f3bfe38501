"""The lmms-eval plugin, run by lmms-eval itself (installed as an optional extra) on the tiny VLM-3R."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.record import write_qa_jsonl
from vlm3r.qa.task import select_tasks

pytest.importorskip("lmms_eval", reason="lmms-eval is an optional extra (make test installs it)")


def test_lmms_eval_runs_vlm3r_on_a_few_documents(tmp_path, qa_synthetic):
    from helpers import distinctive_model, odd_config, write_release

    files = write_release(tmp_path, distinctive_model(odd_config()))
    base, release, cut3r = files.base, files.model, files.cut3r
    records, _ = generate(load_scenes(qa_synthetic), select_tasks("vsi"), seed=0, per_scene=1)
    qa = tmp_path / "qa.jsonl"
    write_qa_jsonl(qa, records)
    tasks = tmp_path / "lmms_tasks"
    result = CliRunner().invoke(app, ["eval", "lmms-tasks", "--qa", str(qa), "--video-root", str(qa_synthetic),
                                      "--out", str(tasks)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "lmms_out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "lmms_eval", "--model", "vlm3r", "--model_args",
               f"pretrained={release},cut3r={cut3r},base={base},dtype=fp32,max_frames_num=4",
               "--tasks", "vlm3r_vsibench", "--include_path", str(tasks), "--limit", "3", "--batch_size", "1",
               "--output_path", str(out), "--log_samples"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in out.rglob("*results.json")]
    assert results, f"no results file under {out}: {sorted(str(p) for p in out.rglob('*'))}"
    score = results[0]["results"]["vlm3r_vsibench"]
    value = next(v for k, v in score.items() if k.startswith("vlm3r_overall"))
    assert 0.0 <= value <= 100.0
    samples = [p for p in out.rglob("*vlm3r_vsibench*.jsonl")]
    assert samples and len(samples[0].read_text().splitlines()) == 3
