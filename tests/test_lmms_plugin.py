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
from vlm3r.qa.tasks import select_tasks

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
               "--tasks", "vlm3r_vsibench", "--include_path", str(tasks), "--limit", "3", "--batch_size", "2",
               "--output_path", str(out), "--log_samples"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in out.rglob("*results.json")]
    assert results, f"no results file under {out}: {sorted(str(p) for p in out.rglob('*'))}"
    score = results[0]["results"]["vlm3r_vsibench"]
    value = next(v for k, v in score.items() if k.startswith("vlm3r_overall"))
    samples = [p for p in out.rglob("*vlm3r_vsibench*.jsonl")]
    assert samples
    logged = [json.loads(line) for line in samples[0].read_text().splitlines()]
    docs = [json.loads(line) for line in (tasks / "vlm3r_vsibench_docs.jsonl").read_text().splitlines()]
    assert sorted(s["doc_id"] for s in logged) == [0, 1, 2]
    # the answers are those of vlm3r's own pipeline, each prompt prefilled whole (lmms-eval batched 2 per video)
    import torch

    from vlm3r.qa.benchmarks import VSIBENCH
    from vlm3r.eval.scoring import score as score_predictions
    from vlm3r.model.pipeline import Vlm3rPipeline
    from vlm3r.qa.record import QARecord

    pipeline = Vlm3rPipeline.from_pretrained(release, cut3r, base, torch.float32, num_frames=4)
    for sample in logged:
        doc = docs[sample["doc_id"]]
        assert sample["filtered_resps"] == pipeline.ask(doc["video_path"], sample["input"])
    # and lmms-eval's aggregate is vlm3r's score of the same answers
    questions = [QARecord.from_dict(docs[s["doc_id"]]) for s in logged]
    expected = score_predictions(VSIBENCH, questions, {str(docs[s["doc_id"]]["id"]): s["filtered_resps"]
                                                       for s in logged})
    assert value == pytest.approx(expected.overall, abs=1e-9)


def test_lmms_model_takes_its_rank_from_the_launcher(tmp_path, monkeypatch):
    """lmms-eval deals documents to processes by the model's rank and world size: read from the launcher's
    environment (torchrun / accelerate launch set RANK, WORLD_SIZE, LOCAL_RANK)."""
    from helpers import distinctive_model, odd_config, write_release

    from vlm3r.eval.lmms.model import Vlm3rLmms

    files = write_release(tmp_path, distinctive_model(odd_config()))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    model = Vlm3rLmms(str(files.model), str(files.cut3r), str(files.base), dtype="fp32", batch_size=3,
                      max_frames_num=4)
    assert (model.rank, model.world_size, model.batch_size, str(model.device)) == (1, 2, 3, "cpu")
    with pytest.raises(ValueError, match="batch_size: at least 1"):
        Vlm3rLmms(str(files.model), str(files.cut3r), str(files.base), dtype="fp32", batch_size=0)


def test_lmms_model_refuses_arguments_it_does_not_take():
    """A misspelt --model_args key is an error naming it, as lmms-eval's own models refuse one, before any loading."""
    from vlm3r.errors import InputError
    from vlm3r.eval.lmms.model import Vlm3rLmms

    with pytest.raises(InputError, match=r"--model_args: vlm3r takes no max_frames, temprature \(it takes pretrained, "
                                         r"cut3r, base, device, dtype, max_frames_num, batch_size, vision_tower\)"):
        Vlm3rLmms("no-such-model", max_frames=8, temprature=0)
