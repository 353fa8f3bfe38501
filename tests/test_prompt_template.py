"""The prompt a model is asked in: the template its run was trained with (recorded in config.json), the reference's
evaluation prompt for a released model, and the device and dtype chosen by ``auto``."""

import json

import numpy as np
import pytest
import torch
from helpers import write_video
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.checks import ConfigError
from vlm3r.model.pipeline import EMPTY_ANSWER, Vlm3rPipeline
from vlm3r.model.prompt import PromptTemplate, eos_id, newline_id, text_ids
from vlm3r.qa.export import to_llava
from vlm3r.qa.prompts import MCA_POST_PROMPT, NA_POST_PROMPT, PRE_PROMPT, question_text
from vlm3r.qa.record import QARecord
from vlm3r.training.data import ConversationDataset, DataOptions, trained_template
from vlm3r.utils import devices
from vlm3r.utils.devices import Placement, placement

QUESTION = "How many chairs are in this room?"
FPS = 15


@pytest.fixture(scope="module")
def pipeline(tiny_model):
    return Vlm3rPipeline.from_pretrained(tiny_model, num_frames=4)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """30 frames at 15 frames/s: 4 sampled at 0, 9, 19, 29 (0.00 s, 0.60 s, 1.27 s, 1.93 s of a 2.00 s video)."""
    path = tmp_path_factory.mktemp("video") / "room.mp4"
    write_video(path, np.random.default_rng(0).integers(0, 255, (30, 64, 96, 3), dtype=np.uint8), fps=FPS)
    return path


def record(question_type: str, options=(), ground_truth=3, mc_answer=None) -> QARecord:
    return QARecord(id=7, dataset="synthetic", scene_name="s", video_path="s.mp4", question_type=question_type,
                    question=QUESTION, options=list(options), ground_truth=ground_truth, mc_answer=mc_answer)


def test_inference_prompt_is_the_training_prompt_of_a_run_with_the_time_instruction(pipeline, video, monkeypatch):
    """What the trainer tokenizes for a sample (its time instruction from the decoded frames) is, up to the answer,
    what the pipeline asks a user's bare question in, when the run's template has the time instruction."""
    monkeypatch.setattr(pipeline, "template", PromptTemplate(True, PRE_PROMPT, NA_POST_PROMPT))
    sample = {"video": video.name, "conversations": [
        {"from": "human", "value": f"<image>\n{PRE_PROMPT}\n{QUESTION}\n{NA_POST_PROMPT}"},
        {"from": "gpt", "value": "3"}]}
    config = pipeline.model.config
    options = DataOptions(video.parent, 4, config.vision.image_size, add_time_instruction=True, masking="assistant")
    trained = ConversationDataset([sample], pipeline.tokenizer, options)[0]["input_ids"]
    tokenizer = pipeline.tokenizer
    asked = pipeline.prompt_ids(QUESTION, video)
    assert list(trained) == asked + text_ids(tokenizer, "3") + [eos_id(tokenizer), newline_id(tokenizer)]
    assert pipeline.suffix_ids(QUESTION, video) == asked[asked.index(config.image_token_index) + 1:]
    text = tokenizer.decode(pipeline.suffix_ids(QUESTION, video))
    assert text == (f"\nThe video lasts for 2.00 seconds, and 4 frames are uniformly sampled from it. These frames are "
                    f"located at 0.00s,0.60s,1.27s,1.93s.Please answer the following questions related to this video."
                    f"\n\n{PRE_PROMPT}\n{QUESTION}\n{NA_POST_PROMPT}<|im_end|>\n<|im_start|>assistant\n")


def test_a_released_model_is_asked_as_the_reference_evaluates(pipeline, video):
    """No template recorded: the official evaluation's prompt, the question as given after ``<image>\\n`` (the
    reference's string, split at ``<image>`` and tokenized with the special tokens recognised)."""
    assert pipeline.template == PromptTemplate()
    prompt = (f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n{QUESTION}"
              "<|im_end|>\n<|im_start|>assistant\n")
    before, after = prompt.split("<image>")
    ids = pipeline.tokenizer(before)["input_ids"] + [-200] + pipeline.tokenizer(after)["input_ids"]
    assert pipeline.prompt_ids(QUESTION, video) == ids


def test_a_question_already_in_the_benchmark_form_is_not_wrapped_again():
    template = PromptTemplate(False, PRE_PROMPT, NA_POST_PROMPT)
    assert template.wrapped(QUESTION) == ("These are frames of a video.\nHow many chairs are in this room?\n"
                                          "Please answer the question using a single word or phrase.")
    numeric = record("object_counting", ground_truth=3)
    choice = record("object_rel_direction_easy", options=["A. left", "B. right"], ground_truth="left", mc_answer="A")
    for r in (numeric, choice):
        assert template.wrapped(question_text(r)) == question_text(r)
    post_only = PromptTemplate(False, "", NA_POST_PROMPT)
    assert post_only.wrapped(QUESTION) == f"{QUESTION}\n{NA_POST_PROMPT}"
    assert post_only.wrapped(f"{QUESTION}\n{NA_POST_PROMPT}") == f"{QUESTION}\n{NA_POST_PROMPT}"


def test_the_template_a_run_records_is_the_one_its_data_teaches():
    numeric = record("object_counting", ground_truth=3)
    choice = record("object_rel_direction_easy", options=["A. left", "B. right"], ground_truth="left", mc_answer="A")
    assert trained_template(to_llava([numeric, choice]), True) == PromptTemplate(True, PRE_PROMPT, NA_POST_PROMPT)
    assert trained_template(to_llava([choice]), False) == PromptTemplate(False, PRE_PROMPT, "")
    assert to_llava([choice])[0]["conversations"][0]["value"].endswith(MCA_POST_PROMPT)
    own = [{"video": "v.mp4", "conversations": [{"from": "human", "value": "<image>\nWhere is the lamp?"},
                                                {"from": "gpt", "value": "left"}]}]
    assert trained_template(own + to_llava([numeric]), False) == PromptTemplate(False, "", NA_POST_PROMPT)


def test_the_template_is_part_of_the_config_and_checked():
    template = PromptTemplate(True, PRE_PROMPT, NA_POST_PROMPT)
    values = json.loads(json.dumps(Vlm3rConfig.tiny(prompt=template).to_dict()))
    assert values["prompt"] == {"time_instruction": True, "pre_prompt": PRE_PROMPT, "post_prompt": NA_POST_PROMPT}
    assert Vlm3rConfig.from_dict(values).prompt == template
    values["prompt"]["time_instruction"] = "yes"
    with pytest.raises(ConfigError, match=r"^config: prompt: time_instruction: expected true or false, got 'yes'$"):
        Vlm3rConfig.from_dict(values)


def test_ask_reports_an_empty_answer_and_what_it_ran_on(tiny_model, video, monkeypatch):
    args = ["ask", "--model", str(tiny_model), "--frames", "4", str(video), QUESTION]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = Vlm3rPipeline.from_pretrained(tiny_model, num_frames=4).ask(video, QUESTION)
    assert expected and result.stdout == f"{expected}\n"
    assert result.stderr == "running on cpu (chosen: --device auto) in fp32 (chosen: --dtype auto)\n"
    monkeypatch.setattr(Vlm3rPipeline, "ask", lambda self, *args, **kwargs: "")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.splitlines()[1] == f"warning: {EMPTY_ANSWER}"


def test_auto_picks_the_best_device_and_a_dtype_that_suits_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert placement("auto", "auto") == Placement("cpu", "fp32", True, True)
    assert placement("cpu", "bf16") == Placement("cpu", "bf16", False, False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported, dtype in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert placement("auto", "auto") == Placement("cuda", dtype, True, True)
        assert devices.best_dtype("cuda:1") == dtype
    assert str(Placement("cuda", "bf16", True, False)) == "running on cuda (chosen: --device auto) in bf16"
    with pytest.raises(devices.InputError, match=r"^--dtype 'half': expected auto, fp32, bf16 or fp16$"):
        placement("auto", "half")


def test_ask_about_a_folder_says_it_is_a_folder(tiny_model, tmp_path):
    result = CliRunner().invoke(app, ["ask", "--model", str(tiny_model), str(tmp_path), QUESTION],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"error: {tmp_path}: a folder, not a video file (name one video in it)"
