"""``vlm3r eval run`` and ``eval score`` on ScanQA and SQA3D with the tiny model: the prompt the model reads is the
reference's (token for token), a killed run resumes to the same predictions, a split without public answers is
answered and not scored, and the scores are the reference's computation of the same answers."""

import json
import shutil
import signal

import numpy as np
import pytest
import torch
from helpers import start_held_run
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.eval.qa3d import clean_answer
from vlm3r.eval.qa3d_bench import SCANQA, SQA3D
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.utils.video import count_frames, frame_rate

SCENES = ("scene0011_00", "scene0015_00")
SCANQA_VAL = [
    {"answers": ["brown armchair", "brown"], "question": "What color is the chair?", "question_id": "val-scene0011-0",
     "scene_id": "scene0011_00", "object_ids": [1], "object_names": ["armchair"]},
    {"answers": ["left of bed"], "question": "Where is the lamp placed?", "question_id": "val-scene0015-0",
     "scene_id": "scene0015_00", "object_ids": [2], "object_names": ["lamp"]},
    {"answers": ["2", "two chairs"], "question": "How many chairs are there?", "question_id": "val-scene0011-1",
     "scene_id": "scene0011_00", "object_ids": [3], "object_names": ["chair"]},
]
SUFFIX = "Answer the question using a single word or phrase."
ANSWER_TOKENS = 24  # the tiny model's answers rarely end early: the default 512 is run once, on one question


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def scannet(qa_synthetic, tmp_path_factory):
    """Two synthetic videos under ScanNet scene names, flat (``<scene_id>.mp4``, the reference's layout), the
    ScanQA val file and SQA3D's own pair of files."""
    root = tmp_path_factory.mktemp("scannet")
    videos = root / "videos"
    videos.mkdir()
    for scene, source in zip(SCENES, sorted((qa_synthetic / "videos").rglob("*.mp4"))):
        shutil.copy(source, videos / f"{scene}.mp4")
    (root / "ScanQA_v1.0_val.json").write_text(json.dumps(SCANQA_VAL))
    (root / "v1_balanced_questions_val_scannetv2.json").write_text(json.dumps({"questions": [
        {"question": "What is in front of me?", "question_id": 1, "scene_id": SCENES[1], "situation": "I sit.",
         "alternative_situation": []},
        {"question": "Is the door open?", "question_id": 2, "scene_id": SCENES[0], "situation": "I stand.",
         "alternative_situation": []}]}))
    (root / "v1_balanced_sqa_annotations_val_scannetv2.json").write_text(json.dumps({"annotations": [
        {"answers": [{"answer": "table"}], "question_id": 1, "scene_id": SCENES[1]},
        {"answers": [{"answer": "yes"}], "question_id": 2, "scene_id": SCENES[0]}]}))
    return root


def scanqa_args(model, root, out, *extra):
    return ["eval", "run", "--model", model, "--bench", "scanqa", "--qa", root / "ScanQA_v1.0_val.json", "--videos",
            root / "videos", "--out", out, "--dtype", "fp32", *extra]


@pytest.fixture(scope="module")
def scanqa_run(tiny_model, scannet, tmp_path_factory):
    out = tmp_path_factory.mktemp("scanqa") / "run"
    result = run_cli(*scanqa_args(tiny_model, scannet, out, "--max-new-tokens", ANSWER_TOKENS))
    assert result.exit_code == 0, result.output
    return out


def reference_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The reference's tokenizer_image_token: the prompt split at <image>, each piece tokenized, -200 between."""
    pieces = [tokenizer(chunk, add_special_tokens=False).input_ids for chunk in prompt.split("<image>")]
    return pieces[0] + [-200] + pieces[1]


def test_the_run_asks_in_the_reference_prompt_and_answers_with_it(scanqa_run, tiny_model, scannet):
    pipeline = Vlm3rPipeline.from_pretrained(tiny_model, dtype=torch.float32)
    video = scannet / "videos" / f"{SCENES[0]}.mp4"
    total, fps, frames = count_frames(video), frame_rate(video), pipeline.num_frames
    times = ",".join(f"{i / fps:.2f}s" for i in np.linspace(0, total - 1, frames, dtype=int))
    prompt = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>The video lasts "
              f"for {total / fps:.2f} seconds, and {frames} frames are uniformly sampled from it. These frames are "
              f"located at {times}.Please answer the following questions related to this video.\nWhat color is the "
              "chair?\nAnswer the question simply.<|im_end|>\n<|im_start|>assistant\n")
    template = SCANQA.prompt(None)
    assert pipeline.prompt_ids("What color is the chair?", video, template) == \
        reference_prompt_ids(pipeline.tokenizer, prompt)
    rows = [json.loads(line) for line in (scanqa_run / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [q["question_id"] for q in SCANQA_VAL]  # the file's order
    first_video = [q["question"] for q in SCANQA_VAL if q["scene_id"] == SCENES[0]]
    assert [r["prediction"] for r in rows if r["id"].startswith("val-scene0011")] == \
        pipeline.ask_video(video, first_video, ANSWER_TOKENS, template=template)
    run = json.loads((scanqa_run / "run.json").read_text())
    assert (run["bench"], run["prompt"], run["max_new_tokens"]) == ("scanqa", "preload", ANSWER_TOKENS)


def reference_scanqa_scores(*answer_sets: list[dict]) -> list[dict]:
    """scanqa_evaluator.py's overall scores of each set of answers, in points: clean, EM@1, refined EM, then the
    captioning metrics by pycocoevalcap on items keyed by their position."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from vlm3r.eval.captions import find_java, java_on_path, shared_scorer

    answers = {q["question_id"]: q["answers"] for q in SCANQA_VAL}
    out = []
    with java_on_path(find_java()):
        tokenizer = PTBTokenizer()
        # METEOR: pycocoevalcap's Meteor object of vlm3r's shared scorer (a call's answer does not depend on
        # earlier calls), so that its paraphrase table is not loaded a second time
        scorers = ((Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), (shared_scorer()._meteor, ["METEOR"]),
                   (Rouge(), ["ROUGE_L"]), (Cider(), ["CIDEr"]))
        for rows in answer_sets:
            em = refined = 0
            res, gts = {}, {}
            for k, row in enumerate(rows):
                prediction, refs = clean_answer(row["prediction"]), [clean_answer(a) for a in answers[row["id"]]]
                em += prediction in refs
                bare = "".join(prediction.split())
                refined += prediction in refs or any(bare in "".join(r.split()) or "".join(r.split()) in bare
                                                     for r in refs)
                res[k] = [{"caption": prediction}]
                gts[k] = [{"caption": r.replace("\n", " ").strip()} for r in refs]
            scores = {"EM1": em / len(rows) * 100, "EM1_refined": refined / len(rows) * 100}
            res, gts = tokenizer.tokenize(res), tokenizer.tokenize(gts)
            for scorer, names in scorers:
                value, _ = scorer.compute_score(gts, res)
                scores.update({n: v * 100 for n, v in zip(names, value if isinstance(value, list) else [value])})
            out.append(scores)
    return out


def test_scores_are_the_reference_computation_and_eval_score_agrees(scanqa_run, scannet, tmp_path):
    rows = [json.loads(line) for line in (scanqa_run / "predictions.jsonl").read_text().splitlines()]
    # answers of our own, some right, in the reference script's answer format, scored by vlm3r eval score
    answers = tmp_path / "answers.jsonl"
    given = (("val-scene0015-0", "left of the bed"), ("val-scene0011-0", "Brown."), ("val-scene0011-1", "three chairs"))
    answers.write_text("".join(json.dumps({"question_id": q, "text": t, "answer_id": "x", "model_id": "m"}) + "\n"
                               for q, t in given))
    result = run_cli("eval", "score", "--bench", "scanqa", "--qa", scannet / "ScanQA_v1.0_val.json", "--pred", answers,
                     "--out", tmp_path / "scored")
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "scored" / "scores.json").read_text())
    mine = [{"id": q, "prediction": t} for q, t in given]
    # by hand: "left of bed" and "brown" exact; "three chairs" contains no reference and no reference contains it
    # in points as the reference computes them: the fraction, then x100 (2 / 3 * 100 is 66.66666666666666, one bit
    # below 200 / 3)
    assert (scored["overall"]["EM1"], scored["overall"]["EM1_refined"]) == (66.66666666666666, 66.66666666666666)
    expected_mine, expected_run = reference_scanqa_scores(mine, rows)
    assert scored["overall"] == expected_mine
    assert scored["absent"] == ["SPICE"] and scored["counts"] == {"Color": 1, "Place": 1, "Number": 1}
    assert json.loads((scanqa_run / "scores.json").read_text())["overall"] == expected_run
    report = (scanqa_run / "report.md").read_text()
    assert "| question type | questions | EM@1 | EM@1 refined | BLEU-1 |" in report
    assert (scanqa_run / "types.png").stat().st_size > 0


def test_an_interrupted_scanqa_run_resumes_to_the_same_predictions(scanqa_run, tiny_model, scannet, tmp_path):
    """Ctrl-C after the first video (a kill: tests/test_eval_run.py, on VSI-Bench): the folder holds that video's
    answers, and the rerun completes it to the uninterrupted run's file and scores."""
    out = tmp_path / "killed"
    args = scanqa_args(tiny_model, scannet, out, "--max-new-tokens", ANSWER_TOKENS)
    process = start_held_run(args, out)
    try:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        process.kill()  # a run that outlived its signal must not outlive the test
    plain = (scanqa_run / "predictions.jsonl").read_bytes().splitlines(keepends=True)
    assert (out / "predictions.jsonl").read_bytes() == plain[0] + plain[2]  # the first video's two answers
    resumed = run_cli(*args)
    assert resumed.exit_code == 0, resumed.output
    assert (out / "predictions.jsonl").read_bytes() == b"".join(plain)
    assert json.loads((out / "scores.json").read_text()) == json.loads((scanqa_run / "scores.json").read_text())


def test_sqa3d_runs_from_its_own_pair_with_videos_in_a_scannet_folder(tiny_model, scannet, tmp_path):
    nested = tmp_path / "videos" / "scannet"  # vlm3r's layout: a folder per dataset
    shutil.copytree(scannet / "videos", nested)
    out = tmp_path / "sqa3d"
    result = run_cli("eval", "run", "--model", tiny_model, "--bench", "sqa3d", "--qa",
                     scannet / "v1_balanced_questions_val_scannetv2.json", "--videos", tmp_path / "videos",
                     "--out", out, "--dtype", "fp32", "--prompt", "plain", "--max-new-tokens", 8)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2"]
    pipeline = Vlm3rPipeline.from_pretrained(tiny_model, dtype=torch.float32)
    text = f" I sit. What is in front of me? {SUFFIX}"
    assert rows[0]["prediction"] == pipeline.ask_video(nested / f"{SCENES[1]}.mp4", [text], 8,
                                                       template=SQA3D.prompt("plain"))[0]
    expected = [clean_answer(rows[0]["prediction"]) == "table", clean_answer(rows[1]["prediction"]) == "yes"]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["overall"] == {"EM1": sum(expected) / 2 * 100}
    assert scores["per_type"] == {"what": {"EM1": 100.0 * expected[0]}, "is": {"EM1": 100.0 * expected[1]}}
    assert scores["prompt"] == "plain" and json.loads((out / "run.json").read_text())["max_new_tokens"] == 8


def test_a_split_without_answers_is_answered_and_not_scored(tiny_model, scannet, tmp_path):
    test = tmp_path / "ScanQA_v1.0_test_wo_obj.json"
    test.write_text(json.dumps([{k: v for k, v in q.items() if k != "answers"} for q in SCANQA_VAL[:1]]))
    out = tmp_path / "test"
    result = run_cli("eval", "run", "--model", tiny_model, "--bench", "scanqa", "--qa", test, "--videos",
                     scannet / "videos", "--out", out, "--dtype", "fp32")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["max_new_tokens"] == 512  # the reference scripts' length
    assert "answered all 1 questions, scored none: the answers of this split are not public" in result.stdout
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 1 and not (out / "scores.json").exists()
    refused = run_cli("eval", "score", "--bench", "scanqa", "--qa", test, "--pred", out / "predictions.jsonl")
    assert refused.exit_code == 1 and "have no answers (ScanQA's test answers are not public" in refused.stderr
