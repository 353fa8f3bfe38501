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


# ---------------------------------------------------------------------------------------------- ScanQA, SQA3D
SCANQA_VAL = [
    {"answers": ["brown armchair", "brown"], "question": "What color is the chair?", "question_id": "val-0",
     "scene_id": "scene0011_00"},
    {"answers": ["left of bed"], "question": "Where is the lamp placed?", "question_id": "val-1",
     "scene_id": "scene0015_00"},
    {"answers": ["2", "two chairs"], "question": "How many chairs are there?", "question_id": "val-2",
     "scene_id": "scene0011_00"},
]
SQA3D_LEAD = ("The video captures 3D spatial information of a scene. Please focus on the spatial relationships in the "
              "video and answer the following questions.")


@pytest.fixture(scope="module")
def scannet(qa_synthetic, tmp_path_factory):
    """Two synthetic videos under ScanNet scene names (``<scene_id>.mp4``), ScanQA's val file, SQA3D's pair."""
    import shutil

    root = tmp_path_factory.mktemp("scannet")
    (root / "videos").mkdir()
    for scene, source in zip(("scene0011_00", "scene0015_00"), sorted((qa_synthetic / "videos").rglob("*.mp4"))):
        shutil.copy(source, root / "videos" / f"{scene}.mp4")
    (root / "ScanQA_v1.0_val.json").write_text(json.dumps(SCANQA_VAL))
    (root / "v1_balanced_questions_val_scannetv2.json").write_text(json.dumps({"questions": [
        {"question": "Is the door open?", "question_id": 7, "scene_id": "scene0015_00", "situation": "I stand."}]}))
    (root / "v1_balanced_sqa_annotations_val_scannetv2.json").write_text(json.dumps({"annotations": [
        {"answers": [{"answer": "yes"}], "question_id": 7, "scene_id": "scene0015_00"}]}))
    return root


def lmms_tasks(*args):
    return CliRunner().invoke(app, ["eval", "lmms-tasks", *map(str, args)], env={"COLUMNS": "300"})


def docs_of(tasks, task):
    return [json.loads(line) for line in (tasks / f"{task}_docs.jsonl").read_text().splitlines()]


def test_scanqa_task_asks_the_reference_question_with_its_answer_length_and_prompt(scannet, tmp_path):
    tasks = tmp_path / "tasks"
    result = lmms_tasks("--bench", "scanqa", "--qa", scannet / "ScanQA_v1.0_val.json", "--video-root",
                        scannet / "videos", "--out", tasks)
    assert result.exit_code == 0, result.output
    assert "wrote task vlm3r_scanqa to" in result.output
    yaml = (tasks / "vlm3r_scanqa.yaml").read_text()
    assert ("doc_to_text: !function vlm3r_scanqa_utils.qa3d_doc_to_text\ndoc_to_target: answers\n"
            "generation_kwargs:\n  max_new_tokens: 512\n  temperature: 0\n  top_p: 1.0\n  num_beams: 1\n"
            "  do_sample: false\n  vlm3r_prompt: \"scanqa/preload\"\n"
            "process_results: !function vlm3r_scanqa_utils.qa3d_process_results\nmetric_list:\n") in yaml
    metrics = ["EM1", "EM1_refined", "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"]
    assert yaml.count("aggregation: !function vlm3r_scanqa_utils.qa3d_aggregate") == 9
    assert [line.split(": ")[1] for line in yaml.splitlines() if line.startswith("  - metric:")] == metrics
    videos = (scannet / "videos").resolve()
    assert docs_of(tasks, "vlm3r_scanqa") == [
        {"benchmark": "scanqa", "id": "val-0", "scene_id": "scene0011_00", "text": "What color is the chair?",
         "answers": ["brown armchair", "brown"], "question_type": "Color",
         "video_path": str(videos / "scene0011_00.mp4")},
        {"benchmark": "scanqa", "id": "val-1", "scene_id": "scene0015_00", "text": "Where is the lamp placed?",
         "answers": ["left of bed"], "question_type": "Place", "video_path": str(videos / "scene0015_00.mp4")},
        {"benchmark": "scanqa", "id": "val-2", "scene_id": "scene0011_00", "text": "How many chairs are there?",
         "answers": ["2", "two chairs"], "question_type": "Number", "video_path": str(videos / "scene0011_00.mp4")}]


def test_sqa3d_task_from_either_layout_with_its_videos_in_a_scannet_folder(scannet, tmp_path):
    import shutil

    nested = tmp_path / "videos"
    shutil.copytree(scannet / "videos", nested / "scannet")  # vlm3r's layout, as eval run finds it
    llava = tmp_path / "sqa3d_val_llava.json"
    llava.write_text(json.dumps([{"id": 7, "video": "scannet/scene0015_00", "metadata": {"question_type": "is"},
                                  "conversations": [{"from": "human", "value": "<image> I stand. Is the door open? "
                                                     "Answer the question using a single word or phrase."},
                                                    {"from": "gpt", "value": "yes"}]}]))
    expected = [{"benchmark": "sqa3d", "id": "7", "scene_id": "scene0015_00",
                 "text": " I stand. Is the door open? Answer the question using a single word or phrase.",
                 "answers": ["yes"], "question_type": "is",
                 "video_path": str(nested.resolve() / "scannet" / "scene0015_00.mp4")}]
    for k, qa in enumerate((scannet / "v1_balanced_sqa_annotations_val_scannetv2.json", llava)):
        result = lmms_tasks("--bench", "sqa3d", "--qa", qa, "--video-root", nested, "--out", tmp_path / f"t{k}",
                            "--prompt", "plain")
        assert result.exit_code == 0, result.output
        assert docs_of(tmp_path / f"t{k}", "vlm3r_sqa3d") == expected
        yaml = (tmp_path / f"t{k}" / "vlm3r_sqa3d.yaml").read_text()
        assert "  max_new_tokens: 512\n" in yaml and '  vlm3r_prompt: "sqa3d/plain"\n' in yaml
        assert [line for line in yaml.splitlines() if line.startswith("  - metric:")] == ["  - metric: EM1"]


def test_lmms_tasks_refuses_what_it_cannot_score_or_ask(scannet, tmp_path):
    test = tmp_path / "ScanQA_v1.0_test_wo_obj.json"
    test.write_text(json.dumps([{k: v for k, v in q.items() if k != "answers"} for q in SCANQA_VAL]))
    refused = lmms_tasks("--bench", "scanqa", "--qa", test, "--video-root", scannet, "--out", tmp_path / "a")
    assert refused.exit_code == 1
    assert (f"{test}: these scanqa questions have no answers (ScanQA's test answers are not public), and an "
            "lmms-eval task scores its answers; vlm3r eval run answers such a split without scoring it") in \
        " ".join(refused.stderr.split())
    wrong = lmms_tasks("--bench", "scanqa", "--qa", scannet / "ScanQA_v1.0_val.json", "--video-root", scannet,
                       "--out", tmp_path / "b", "--prompt", "fancy")
    assert wrong.exit_code == 1 and "--prompt: scanqa has no prompt 'fancy'" in wrong.stderr
    vsi = lmms_tasks("--bench", "vsibench", "--qa", scannet / "ScanQA_v1.0_val.json", "--video-root", scannet,
                     "--out", tmp_path / "c", "--prompt", "plain")
    assert vsi.exit_code == 1 and "--prompt: vsibench has one prompt" in vsi.stderr
    assert not any((tmp_path / name).exists() for name in "abc")


CAPTIONING = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


def counting_scorer(calls: list):
    """A stand-in for ``qa3d_report.score_answers`` without Java: the exact matches of the real one, and each
    captioning metric (its position + 1) times the number of answers it is given, so a score of the whole set (3
    answers: 3, 6, ...) tells itself from a mean of per-question scores (1, 2, ...); ``calls`` records each
    scoring (each would start the captioning scorer): benchmark, questions (id, type, answers) and answers."""
    from dataclasses import replace

    from vlm3r.eval.qa3d_report import score_answers

    def score(bench, questions, predictions, source, spice=False, prompt=None):
        calls.append((bench.name, [(q.id, q.question_type, q.answers) for q in questions], list(predictions)))
        report = score_answers(replace(bench, metrics=("EM1", "EM1_refined")), questions, predictions, source)
        report.overall.update({metric: (k + 1.0) * len(predictions) for k, metric in enumerate(CAPTIONING)})
        return report

    return score


def scanqa_task_with_counting_scorer(scannet, tmp_path, monkeypatch):
    """The ScanQA task of SCANQA_VAL written into ``tmp_path/tasks``, scored by ``counting_scorer``: (its calls, the
    folder)."""
    from vlm3r.eval.lmms import task_utils

    calls = []
    monkeypatch.setattr(task_utils, "score_answers", counting_scorer(calls))
    task_utils._qa3d_report.cache_clear()
    tasks = tmp_path / "tasks"
    assert lmms_tasks("--bench", "scanqa", "--qa", scannet / "ScanQA_v1.0_val.json", "--video-root",
                      scannet / "videos", "--out", tasks).exit_code == 0
    return calls, tasks


def test_scanqa_aggregation_scores_the_whole_set_once(scannet, tmp_path, monkeypatch):
    from vlm3r.eval.lmms import task_utils

    calls, tasks = scanqa_task_with_counting_scorer(scannet, tmp_path, monkeypatch)
    docs = docs_of(tasks, "vlm3r_scanqa")
    assert [task_utils.qa3d_doc_to_text(d) for d in docs] == [q["question"] for q in SCANQA_VAL]
    # EM@1: "Brown." cleans to "brown", an answer; "the bed" is none; "two" is "2" cleaned. Refined: "the bed"
    # cleans to "bed", inside "leftofbed".
    per_doc = [task_utils.qa3d_process_results(d, [a]) for d, a in zip(docs, ("Brown.", "the bed", "two"))]
    items = {metric: [row[metric] for row in per_doc] for metric in per_doc[0]}
    scores = {metric: task_utils.qa3d_aggregate(values) for metric, values in items.items()}
    assert scores == {"EM1": 2 / 3 * 100, "EM1_refined": 100.0, "Bleu_1": 3.0, "Bleu_2": 6.0, "Bleu_3": 9.0,
                      "Bleu_4": 12.0, "METEOR": 15.0, "ROUGE_L": 18.0, "CIDEr": 21.0}  # 3 captions: the set
    assert calls == [("scanqa", [("val-0", "Color", ("brown armchair", "brown")), ("val-1", "Place", ("left of bed",)),
                                 ("val-2", "Number", ("2", "two chairs"))],
                      [("val-0", "Brown."), ("val-1", "the bed"), ("val-2", "two")])]  # nine metrics, one scoring
    # another set is scored anew
    assert task_utils.qa3d_aggregate([{**item, "prediction": "brown"} for item in items["EM1"]]) == 1 / 3 * 100
    assert len(calls) == 2


def test_sqa3d_aggregation_is_exact_match_in_points():
    from vlm3r.eval.lmms import task_utils

    docs = [{"benchmark": "sqa3d", "id": str(k), "scene_id": "s", "text": "t", "answers": [answer],
             "question_type": kind, "video_path": "v.mp4"}
            for k, (answer, kind) in enumerate((("yes", "is"), ("two", "how"), ("table", "what"), ("no", "is")))]
    answers = ("Yes.", "2", "a chair", "yes")  # right, right ("2" is "two"), wrong, wrong
    items = [task_utils.qa3d_process_results(d, [a])["EM1"] for d, a in zip(docs, answers)]
    assert all(set(task_utils.qa3d_process_results(d, ["x"])) == {"EM1"} for d in docs)
    assert task_utils.qa3d_aggregate(items) == 50.0


def test_lmms_model_asks_a_request_in_the_prompt_it_names(tiny_model, scannet):
    """``vlm3r_prompt`` in a request's generation_kwargs: the model asks in that reference prompt (the token ids
    of the reference script's prompt string); without it, in the model's own; an unknown one is refused."""
    import numpy as np
    from test_qa3d_run import reference_prompt_ids

    from vlm3r.utils.video import count_frames, frame_rate
    from vlm3r.errors import InputError
    from vlm3r.eval.lmms.model import Vlm3rLmms
    from vlm3r.eval.lmms.tasks import request_template
    from vlm3r.eval.qa3d_bench import SCANQA, SQA3D

    model = Vlm3rLmms(str(tiny_model), dtype="fp32", max_frames_num=4)
    video = scannet / "videos" / "scene0011_00.mp4"
    template = request_template({"max_new_tokens": 512, "vlm3r_prompt": "sqa3d/preload"})
    assert template is SQA3D.prompt("preload") and request_template({"max_new_tokens": 16}) is None
    total, fps = count_frames(video), frame_rate(video)
    times = ",".join(f"{i / fps:.2f}s" for i in np.linspace(0, total - 1, 4, dtype=int))
    prompt = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>"
              f"{SQA3D_LEAD}\nThe video lasts for {total / fps:.2f} seconds, and 4 frames are uniformly sampled "
              f"from it. These frames are located at {times}.Please answer the following questions related to this "
              "video.\n I stand. Is it open?<|im_end|>\n<|im_start|>assistant\n")
    assert model.pipeline.prompt_ids(" I stand. Is it open?", video, template) == \
        reference_prompt_ids(model.pipeline.tokenizer, prompt)
    assert request_template({"vlm3r_prompt": "scanqa/plain"}) is SCANQA.prompt("plain")

    class Request:
        def __init__(self, text, gen_kwargs, doc_id):
            self.args = (text, gen_kwargs, lambda doc: [doc["video_path"]], doc_id, "t", "test")

    model.task_dict = {"t": {"test": [{"video_path": str(video)}]}}
    with pytest.raises(InputError) as refused:
        model.generate_until([Request("Where?", {"max_new_tokens": 4}, 0),
                              Request("Where?", {"max_new_tokens": 4, "vlm3r_prompt": "scanqa/fancy"}, 0)])
    assert str(refused.value) == ("generation_kwargs.vlm3r_prompt: 'scanqa/fancy' is not a reference prompt (one of "
                                  "scanqa/preload, scanqa/plain, sqa3d/preload, sqa3d/plain; without the key, the "
                                  "model's own prompt)")
    assert model.pipeline.encodings == 0  # refused before any model work


def test_lmms_eval_runs_scanqa_in_the_reference_prompt_and_scores_it_with_vlm3r(tiny_model, scannet, tmp_path,
                                                                                 monkeypatch):
    """lmms-eval's own loop, in this process, on the written ScanQA task (answers 8 tokens long, as
    ``--gen_kwargs max_new_tokens=8`` sets them; the captioning metrics stood in for, no Java): every answer is the
    pipeline's in the reference prompt, and every metric is vlm3r's score of those answers, scored once."""
    import torch
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from vlm3r.eval.lmms.model import Vlm3rLmms
    from vlm3r.eval.qa3d import clean_answer
    from vlm3r.eval.qa3d_bench import SCANQA
    from vlm3r.model.pipeline import Vlm3rPipeline

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "datasets_cache"))
    calls, tasks = scanqa_task_with_counting_scorer(scannet, tmp_path, monkeypatch)
    model = Vlm3rLmms(str(tiny_model), dtype="fp32", max_frames_num=4, batch_size=2)
    out = simple_evaluate(model=model, tasks=["vlm3r_scanqa"], gen_kwargs="max_new_tokens=8", bootstrap_iters=0,
                          task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
                          log_samples=True, process_docs_parallel=1)
    samples = sorted(out["samples"]["vlm3r_scanqa"], key=lambda s: s["doc_id"])
    assert [s["arguments"][0] for s in samples] == [q["question"] for q in SCANQA_VAL]  # the context: the text
    # the request's generation_kwargs: the YAML's, max_new_tokens replaced by --gen_kwargs, the prompt's key kept
    assert {(s["arguments"][1]["max_new_tokens"], s["arguments"][1]["vlm3r_prompt"]) for s in samples} == \
        {(8, "scanqa/preload")}
    answers = [s["filtered_resps"][0] for s in samples]
    pipeline = Vlm3rPipeline.from_pretrained(tiny_model, dtype=torch.float32, num_frames=4)
    videos = scannet / "videos"
    first = pipeline.ask_video(videos / "scene0011_00.mp4", [SCANQA_VAL[0]["question"], SCANQA_VAL[2]["question"]],
                               8, template=SCANQA.prompt(None))
    second = pipeline.ask_video(videos / "scene0015_00.mp4", [SCANQA_VAL[1]["question"]], 8,
                                template=SCANQA.prompt(None))
    assert answers == [first[0], second[0], first[1]]
    # EM@1 and refined EM of those answers, worked here; each captioning metric: (position + 1) x 3 captions
    cleaned = [(clean_answer(a), [clean_answer(r) for r in q["answers"]]) for a, q in zip(answers, SCANQA_VAL)]
    em = sum(a in refs for a, refs in cleaned)
    refined = sum(a in refs or any("".join(a.split()) in "".join(r.split()) or "".join(r.split()) in
                                   "".join(a.split()) for r in refs) for a, refs in cleaned)
    scores = {k.split(",")[0]: v for k, v in out["results"]["vlm3r_scanqa"].items()
              if k.endswith(",none") and "stderr" not in k}
    assert scores == {"EM1": em / 3 * 100, "EM1_refined": refined / 3 * 100, "Bleu_1": 3.0, "Bleu_2": 6.0,
                      "Bleu_3": 9.0, "Bleu_4": 12.0, "METEOR": 15.0, "ROUGE_L": 18.0, "CIDEr": 21.0}
    assert len(calls) == 1 and calls[0][2] == [(q["question_id"], a) for q, a in zip(SCANQA_VAL, answers)]
