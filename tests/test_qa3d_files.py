"""ScanQA and SQA3D files read in their public layouts (written here, small), answer files in the three formats,
and the prompts equal to the strings the reference's scripts build (spec reference-3dqa.md §1.1, §2.2)."""

import json

import numpy as np
import pytest

from vlm3r.eval.qa3d_bench import (SCANQA, SQA3D, Qa3dFileError, Qa3dQuestion, load_qa3d_questions, qa3d_video,
                                   read_qa3d_predictions)
from vlm3r.model.prompt import chat_prompt, render

# Items as ScanQA_v1.0_val.json holds them (one with three answers, as 26 of the val questions have).
SCANQA_VAL = [
    {"answers": ["brown armchair", "brown"], "object_ids": [8], "object_names": ["armchair"],
     "question": "What color is the chair in the kitchen?", "question_id": "val-scene0011-0",
     "scene_id": "scene0011_00"},
    {"answers": ["on left", "left of bed", "beside bed"], "object_ids": [2, 5], "object_names": ["lamp", "lamp"],
     "question": "Where is the lamp placed?", "question_id": "val-scene0011-1", "scene_id": "scene0011_00"},
    {"answers": ["2"], "object_ids": [3], "object_names": ["chair"],
     "question": "How many chairs are at the table?", "question_id": "val-scene0015-7", "scene_id": "scene0015_00"},
]


def write(path, value):
    path.write_text(json.dumps(value))
    return path


def test_scanqa_val_and_test_files(tmp_path):
    questions = load_qa3d_questions(SCANQA, write(tmp_path / "ScanQA_v1.0_val.json", SCANQA_VAL))
    assert questions == [
        Qa3dQuestion("val-scene0011-0", "scene0011_00", "What color is the chair in the kitchen?",
                     ("brown armchair", "brown"), "Color"),
        Qa3dQuestion("val-scene0011-1", "scene0011_00", "Where is the lamp placed?",
                     ("on left", "left of bed", "beside bed"), "Place"),
        Qa3dQuestion("val-scene0015-7", "scene0015_00", "How many chairs are at the table?", ("2",), "Number")]
    test = [{k: v for k, v in item.items() if k != "answers"} for item in SCANQA_VAL]  # the test splits' layout
    unanswered = load_qa3d_questions(SCANQA, write(tmp_path / "ScanQA_v1.0_test_w_obj.json", test))
    assert [q.answers for q in unanswered] == [(), (), ()]


@pytest.mark.parametrize("items, message", [
    ([{**SCANQA_VAL[0]}, {k: v for k, v in SCANQA_VAL[1].items() if k != "answers"}],
     r"1 of 2 questions have no 'answers' \(e.g. val-scene0011-1\)"),
    ([{k: v for k, v in SCANQA_VAL[0].items() if k != "scene_id"}], r"item 0: no 'scene_id' field"),
    ([{**SCANQA_VAL[0], "answers": []}], r"item 0: 'answers' must be a non-empty list of strings"),
    ([{**SCANQA_VAL[0], "question": 7}], r"item 0: 'question' has the wrong type \(int: 7\)"),
    ([SCANQA_VAL[0], SCANQA_VAL[0]], r"question ids repeat: val-scene0011-0"),
    ([{"id": 1, "conversations": []}], r"item 0: a llava-style item; ScanQA is read from its own files"),
])
def test_scanqa_file_errors_name_the_item_and_field(tmp_path, items, message):
    path = write(tmp_path / "ScanQA_v1.0_val.json", items)
    with pytest.raises(Qa3dFileError, match=rf"^{path}: {message}"):
        load_qa3d_questions(SCANQA, path)


# SQA3D's own pair (balanced/v1_balanced_*_test_scannetv2.json), and the same items as the reference's converter
# (Video-3D-LLM's process_sqa3d.py) writes them in the llava-style file, written out by hand.
SQA3D_QUESTIONS = {"questions": [
    {"question": "What is in front of me?", "question_id": 220602000000, "scene_id": "scene0050_00",
     "situation": "I am sitting on the bed.", "alternative_situation": ["I sit on the bed facing the desk."]},
    {"question": "Isn't the door to my left?", "question_id": 220602000001, "scene_id": "scene0050_00",
     "situation": "I stand by the window.", "alternative_situation": []},
    {"question": "  how many chairs can I see?", "question_id": 220602000002, "scene_id": "scene0064_00",
     "situation": "I face the table.", "alternative_situation": []},
]}
SQA3D_ANNOTATIONS = {"annotations": [  # the annotations' order (not the questions') is the items' order
    {"answers": [{"answer": "two", "answer_confidence": "yes", "answer_id": 1}], "question_id": 220602000002,
     "scene_id": "scene0064_00", "position": {}, "rotation": {}},
    {"answers": [{"answer": "desk", "answer_confidence": "yes", "answer_id": 1}], "question_id": 220602000000,
     "scene_id": "scene0050_00", "position": {}, "rotation": {}},
    {"answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": 1}], "question_id": 220602000001,
     "scene_id": "scene0050_00", "position": {}, "rotation": {}},
]}
SUFFIX = "Answer the question using a single word or phrase."
SQA3D_LLAVA = [
    {"id": 220602000002, "video": "scannet/scene0064_00",
     "conversations": [{"from": "human", "value": f"<image> I face the table.   how many chairs can I see? {SUFFIX}"},
                       {"from": "gpt", "value": "two"}], "metadata": {"dataset": "sqa3d", "question_type": "how"}},
    {"id": 220602000000, "video": "scannet/scene0050_00",
     "conversations": [{"from": "human", "value": f"<image> I am sitting on the bed. What is in front of me? {SUFFIX}"},
                       {"from": "gpt", "value": "desk"}], "metadata": {"dataset": "sqa3d", "question_type": "what"}},
    {"id": 220602000001, "video": "scannet/scene0050_00",
     "conversations": [{"from": "human",
                        "value": f"<image> I stand by the window. Isn't the door to my left? {SUFFIX}"},
                       {"from": "gpt", "value": "yes"}], "metadata": {"dataset": "sqa3d", "question_type": "is"}},
]


def test_sqa3d_llava_style_and_its_own_pair_give_the_same_items(tmp_path):
    llava = load_qa3d_questions(SQA3D, write(tmp_path / "sqa3d_test_llava_style.json", SQA3D_LLAVA))
    assert llava[1] == Qa3dQuestion("220602000000", "scene0050_00",
                                    f" I am sitting on the bed. What is in front of me? {SUFFIX}", ("desk",), "what")
    write(tmp_path / "v1_balanced_questions_test_scannetv2.json", SQA3D_QUESTIONS)
    annotations = write(tmp_path / "v1_balanced_sqa_annotations_test_scannetv2.json", SQA3D_ANNOTATIONS)
    assert load_qa3d_questions(SQA3D, tmp_path / "v1_balanced_questions_test_scannetv2.json") == llava
    assert load_qa3d_questions(SQA3D, annotations) == llava  # either file of the pair


def test_sqa3d_file_errors(tmp_path):
    wrong_type = [{**SQA3D_LLAVA[0], "metadata": {"dataset": "sqa3d", "question_type": "where"}}]
    path = write(tmp_path / "a.json", wrong_type)
    with pytest.raises(Qa3dFileError, match=rf"^{path}: item 0: metadata.question_type 'where' is not one of"):
        load_qa3d_questions(SQA3D, path)
    write(tmp_path / "v1_balanced_questions_val_scannetv2.json", SQA3D_QUESTIONS)
    with pytest.raises(Qa3dFileError, match=r"v1_balanced_sqa_annotations_val_scannetv2.json: no such file"):
        load_qa3d_questions(SQA3D, tmp_path / "v1_balanced_questions_val_scannetv2.json")
    two = {"annotations": [{**SQA3D_ANNOTATIONS["annotations"][0], "answers": [{"answer": "a"}, {"answer": "b"}]}]}
    path = write(tmp_path / "v1_balanced_sqa_annotations_val_scannetv2.json", two)
    with pytest.raises(Qa3dFileError, match=rf"^{path}: annotations\[0\]: 'answers' must hold one answer"):
        load_qa3d_questions(SQA3D, path)
    path = write(tmp_path / "other.json", {"questions": []})
    with pytest.raises(Qa3dFileError, match=rf"^{path}: an SQA3D file is a JSON list \(llava-style\) or one of"):
        load_qa3d_questions(SQA3D, path)


def test_answer_files_in_every_format(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text('{"id": "val-scene0011-0", "prediction": "brown"}\n'  # vlm3r
                    '{"question_id": "val-scene0011-1", "prompt": "...", "text": "left", "answer_id": "x", '
                    '"model_id": "llava_qwen_lora", "metadata": {}}\n'  # model_scanqa_preload.py
                    '{"dataset": "sqa3d", "sample_id": 220602000000, "prompt": "...", "pred_response": "desk", '
                    '"gt_response": "desk", "model_id": "m", "question_type": "what"}\n')  # model_sqa3d_preload.py
    assert read_qa3d_predictions(path) == [("val-scene0011-0", "brown"), ("val-scene0011-1", "left"),
                                           ("220602000000", "desk")]
    path.write_text('{"id": 1, "answer": "x"}\n')
    with pytest.raises(Qa3dFileError, match=rf'^{path}: line 1: expected one of {{"id", "prediction"}}'):
        read_qa3d_predictions(path)


def test_videos_are_found_flat_or_in_a_scannet_folder(tmp_path):
    question = Qa3dQuestion("1", "scene0050_00", "q", ("a",), "what")
    assert qa3d_video(question, tmp_path) == tmp_path / "scene0050_00.mp4"  # neither: the reference's, for errors
    (tmp_path / "scannet").mkdir()
    (tmp_path / "scannet" / "scene0050_00.mp4").write_bytes(b"")
    assert qa3d_video(question, tmp_path) == tmp_path / "scannet" / "scene0050_00.mp4"
    (tmp_path / "scene0050_00.mp4").write_bytes(b"")
    assert qa3d_video(question, tmp_path) == tmp_path / "scene0050_00.mp4"


def reference_time_instruction(total: int, fps: float, frames: int) -> str:
    """The reference scripts' load_video with force_sample, then their time instruction, written out."""
    indices = np.linspace(0, total - 1, frames, dtype=int)
    frame_time = ",".join(f"{i / fps:.2f}s" for i in indices)
    return (f"The video lasts for {total / fps:.2f} seconds, and {frames} frames are uniformly sampled from it. "
            f"These frames are located at {frame_time}.Please answer the following questions related to this "
            "video.")


HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
TAIL = "<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("total, fps, frames", [(1571, 30.0, 32), (900, 24.0, 16)])
def test_prompts_equal_the_reference_scripts(total, fps, frames):
    indices = np.linspace(0, total - 1, frames, dtype=int)  # what vlm3r samples from a video this long
    ti = reference_time_instruction(total, fps, frames)
    question = "What color is the chair in the kitchen?"
    # model_scanqa_preload.py (the default) and model_scanqa.py: <image> then the time instruction, no newline
    assert render(chat_prompt(*SCANQA.prompt(None).user_turn(question, (indices, fps)))) == \
        f"{HEAD}<image>{ti}\n{question}\nAnswer the question simply.{TAIL}"
    assert render(chat_prompt(*SCANQA.prompt("plain").user_turn(question, (indices, fps)))) == \
        f"{HEAD}<image>{ti}\n{question}{TAIL}"
    text = f" I am sitting on the bed. What is in front of me? {SUFFIX}"  # the human turn without <image>
    lead = ("The video captures 3D spatial information of a scene. Please focus on the spatial relationships in the "
            "video and answer the following questions.")
    # model_sqa3d_preload.py (the default: its --extra-prompt) and model_sqa3d.py (which never uses it)
    assert render(chat_prompt(*SQA3D.prompt(None).user_turn(text, (indices, fps)))) == \
        f"{HEAD}<image>{lead}\n{ti}\n{text}{TAIL}"
    assert render(chat_prompt(*SQA3D.prompt("plain").user_turn(text, (indices, fps)))) == \
        f"{HEAD}<image>{ti}\n{text}{TAIL}"


def test_an_unknown_prompt_is_refused():
    with pytest.raises(ValueError, match=r"--prompt: sqa3d has no prompt 'extra' \(it has preload "):
        SQA3D.prompt("extra")
