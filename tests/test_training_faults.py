"""Training faults found by trying bad inputs (issue 22), each reproduced with real files and processes: saved
models that name absolute (and vanished) paths, non-finite settings and losses, and config errors that named the
wrong origin or ended in a traceback."""

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PROMPT_IDS, TOWER_CONFIG, distinctive_model, frames, logits, write_tower_folder, write_video
from safetensors.torch import load_file
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.saving import VISION_TOWER_DIR, plain_state
from vlm3r.training.config import TrainConfigError, load_train_config
from vlm3r.training.trainer import LOG_FILE, NonFiniteError, Trainer, latest_checkpoint, train

VLM3R = Path(sys.executable).with_name("vlm3r")  # the installed command, run as users run it
WIDE = {"COLUMNS": "1000"}  # one error per line (rich wraps at the terminal's width)


@pytest.fixture(scope="module")
def one_sample(tmp_path_factory) -> Path:
    """train.json with one question about one tiny 8-frame video (beside it): one optimizer step per epoch."""
    root = tmp_path_factory.mktemp("faults")
    write_video(root / "room.mp4", np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8))
    sample = {"id": "q0", "video": "room.mp4",
              "conversations": [{"from": "human", "value": "<image>\nHow many chairs?"}, {"from": "gpt", "value": "3"}]}
    (root / "train.json").write_text(json.dumps([sample]))
    return root / "train.json"


def settings(data: Path, out: Path, *extra) -> list[str]:
    """The tiny recipe on ``data``, the smallest run: no time instruction, no dropout, no warm-up, and neither
    CUT3R (no fusion: most of a step's time on a CPU) nor the 7M-parameter output head (its gradient, Adam state
    and copies in every checkpoint) in the loop; LoRA and the projector train."""
    return [f"data.train={data}", f"data.video_folder={data.parent}", f"run.output_dir={out}",
            "data.add_time_instruction=false", "lora.dropout=0", "optim.warmup_ratio=0", "model.fusion=false",
            "run.extra_trainable=[]", *extra]


def tiny(data: Path, out: Path, *extra):
    return load_train_config("tiny", settings(data, out, *extra))


def absolute_strings(value) -> list[str]:
    """Every string in a JSON value that is an absolute path."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in absolute_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in absolute_strings(v)]
    return [value] if isinstance(value, str) and Path(value).is_absolute() else []


# ---------------------------------------------------------------------------------------------- paths in saved models
OFFICIAL_READ = """
import json, sys
from safetensors.torch import save_file
from transformers import SiglipVisionModel
config = json.load(open("config.json"))
tower = SiglipVisionModel.from_pretrained(config["mm_vision_tower"], local_files_only=True)
save_file({k: v.contiguous() for k, v in tower.state_dict().items()}, sys.argv[1])
"""


def test_a_moved_checkpoint_loads_as_the_official_code_reads_it(one_sample, tmp_path, monkeypatch):
    """Every config.json of a run (checkpoint, finished run, generated base) names its files relative to itself;
    after the run folder moved, the official reading (``SiglipVisionModel.from_pretrained(mm_vision_tower)``,
    run in the checkpoint folder) gives vlm3r's vision tower weights, and vlm3r reads the moved checkpoint through
    its LLaVA fields alone (the vlm3r section removed) from another working directory, to the same logits. The
    run trains without fusion: the tiny model's 2 fusion heads and 96-px CUT3R input are not expressible in the
    official fields (docs/model.md)."""
    run = tmp_path / "run"
    train(tiny(one_sample, run, "optim.epochs=1", "run.save_every=1"))
    saved = {name: json.loads((run / name / "config.json").read_text()) for name in (".", "checkpoint-1", "base")}
    assert {name: absolute_strings(config) for name, config in saved.items()} == {".": [], "checkpoint-1": [],
                                                                                   "base": []}
    assert {name: (c["mm_vision_tower"], c.get("model_base"), c.get("cut3r_weights")) for name, c in saved.items()} \
        == {".": (VISION_TOWER_DIR, "base", None), "checkpoint-1": (VISION_TOWER_DIR, "../base", None),
            "base": (VISION_TOWER_DIR, None, None)}
    px = frames(0, n=2, size=84)
    before = Vlm3rModel.from_pretrained(run / "checkpoint-1")
    expected = logits(before, px, PROMPT_IDS)

    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    run.rename(moved)
    checkpoint = moved / "checkpoint-1"
    official_weights = tmp_path / "official.safetensors"
    result = subprocess.run([sys.executable, "-c", OFFICIAL_READ, str(official_weights)], cwd=checkpoint,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    official = load_file(str(official_weights))
    ours = before.vision_tower.state_dict()
    assert set(ours) <= set(official)  # the official tower also has the last layer, which VLM-3R drops
    for key, value in ours.items():
        assert torch.equal(official[key], value), key

    raw = json.loads((checkpoint / "config.json").read_text())
    del raw["vlm3r"]
    (checkpoint / "config.json").write_text(json.dumps(raw))
    # another working directory, holding a tower folder of that name with other sizes: the model's own is used
    elsewhere = write_tower_folder(tmp_path / "cwd" / VISION_TOWER_DIR, TOWER_CONFIG).parent
    monkeypatch.chdir(elsewhere)
    official_fields = Vlm3rModel.from_pretrained(moved / "checkpoint-1")
    assert official_fields.config.vision == before.config.vision and not official_fields.config.fusion
    torch.testing.assert_close(logits(official_fields, px, PROMPT_IDS), expected, rtol=0, atol=0)


def test_save_pretrained_names_its_files_relative_to_itself(tmp_path):
    """``save_pretrained`` (every weight in one folder) names the tower folder and CUT3R relative to the folder."""
    folder = distinctive_model(Vlm3rConfig.tiny()).save_pretrained(tmp_path / "saved")
    saved = json.loads((folder / "config.json").read_text())
    assert (saved["mm_vision_tower"], saved["cut3r_weights"], absolute_strings(saved)) == \
        (VISION_TOWER_DIR, "cut3r.pth", [])
    assert sorted(p.name for p in (folder / VISION_TOWER_DIR).iterdir()) == ["config.json", "model.safetensors"]


# ---------------------------------------------------------------------------------------------- non-finite
def test_non_finite_settings_are_refused_naming_the_field(tmp_path):
    runner, run = CliRunner(), tmp_path / "runs"
    cases = {("optim.lr=inf",): "--set optim.lr=inf: optim.lr: must be a finite number, got inf",
             ("optim.adam_eps=.nan",): "--set optim.adam_eps=.nan: optim.adam_eps: must be a finite number, got nan",
             ("optim.adam_betas=[0.9, .inf]",): "--set optim.adam_betas=[0.9, .inf]: optim.adam_betas: must be "
                                                "finite numbers, got (0.9, inf)",
             ("optim.max_grad_norm=.inf",): "--set optim.max_grad_norm=.inf: optim.max_grad_norm: must be a "
                                            "finite number, got inf"}
    for extra, message in cases.items():
        command = ["train", "--config", "tiny", "--set", "data.train=x.json", "--set", f"run.output_dir={run}"]
        for item in extra:
            command += ["--set", item]
        result = runner.invoke(app, command, env=WIDE)
        assert (result.exit_code, result.stderr) == (1, f"error: {message}\n"), extra
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: {tiny: true}\ndata: {train: x.json}\noptim: {weight_decay: .inf}\n")
    with pytest.raises(TrainConfigError) as caught:
        load_train_config(recipe)
    assert str(caught.value) == f"{recipe}: optim.weight_decay: must be a finite number, got inf"
    assert not run.exists()  # refused before anything was written


def test_a_run_whose_loss_turns_nan_stops_at_that_step(one_sample, tmp_path):
    """NaN logits injected at step 3 (a forward hook on the output head): the run stops with an error naming step
    3 before its backward pass, writes nothing of that step, and its latest checkpoint is step 2's weights, which
    load."""
    run = tmp_path / "run"
    trainer = Trainer(tiny(one_sample, run, "optim.epochs=4", "run.save_every=1", "run.save_total_limit=4")).setup()
    bad_step = 3
    head = trainer.unwrapped.llm.get_output_embeddings()
    head.register_forward_hook(
        lambda module, args, out: out * float("nan") if trainer.state.global_step == bad_step - 1 else None)
    with pytest.raises(NonFiniteError) as caught:
        trainer.train()
    assert str(caught.value) == (
        f"{run}: step 3 of 4 (epoch 2): the training loss is not finite (nan); this step did not change the weights. "
        f"The run stopped; the last good checkpoint is {run / 'checkpoint-2'} (step 2). Look for what drives it "
        "there (optim.lr 0.005, the samples of that step) before running again")
    assert sorted(p.name for p in run.iterdir()) == ["base", "checkpoint-1", "checkpoint-2", LOG_FILE]
    assert [json.loads(line)["step"] for line in (run / LOG_FILE).read_text().splitlines()] == [1, 2]
    last = latest_checkpoint(run)
    assert last == run / "checkpoint-2"
    kept = load_file(str(last / "state" / "trainable.safetensors"))
    trained = {n: p for n, p in trainer.unwrapped.named_parameters() if p.requires_grad}
    assert sorted(kept) == sorted(trained)
    for name, value in trained.items():  # the weights in memory are still step 2's: step 3 changed nothing
        assert torch.equal(kept[name], value.detach()), name
    loaded = Vlm3rModel.from_pretrained(last)
    assert all(bool(torch.isfinite(p).all()) for p in loaded.parameters())
    state, memory = loaded.state_dict(), plain_state(trainer.unwrapped.state_dict())
    for name in ("mm_projector.0.weight", "mm_projector.2.bias"):  # trained, and not LoRA-merged
        assert torch.equal(state[name], memory[name]), name


def test_an_overflowing_update_is_not_saved(one_sample, tmp_path):
    """A finite loss whose update leaves an infinite weight (put there by an optimizer hook after step 2): the
    checkpoint of step 2 is refused, naming the tensor; step 1's stays the latest."""
    run = tmp_path / "run"
    trainer = Trainer(tiny(one_sample, run, "optim.epochs=4", "run.save_every=1", "run.save_total_limit=4")).setup()
    projector = trainer.unwrapped.mm_projector[0].weight

    def overflow(optimizer, args, kwargs):
        if trainer.state.global_step == 1:
            with torch.no_grad():
                projector[0, 0] = float("inf")

    trainer.optimizer.optimizer.register_step_post_hook(overflow)
    with pytest.raises(NonFiniteError) as caught:
        trainer.train()
    assert str(caught.value) == (
        f"{run}: step 2 of 4 (epoch 1): trained weights are not finite after the optimizer step "
        f"(mm_projector.0.weight); they are not saved. The run stopped; the last good checkpoint is "
        f"{run / 'checkpoint-1'} (step 1). Look for what drives it there (optim.lr 0.005, the samples of that "
        "step) before running again")
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1"]


def test_a_learning_rate_that_blows_up_exits_through_the_command(one_sample, tmp_path):
    """For real, in the installed command: lr 1e30 takes the weights to ~1e30 at step 1 (finite), and step 2's
    attention overflows to a NaN loss. The command exits 1 naming step 2; checkpoint-1 is the run's latest."""
    run = tmp_path / "run"
    command = [str(VLM3R), "train", "--config", "tiny"]
    for item in settings(one_sample, run, "optim.epochs=3", "run.save_every=1", "optim.lr=1e30"):
        command += ["--set", item]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **WIDE, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error == [f"error: {run}: step 2 of 3 (epoch 1): the training loss is not finite (nan); this step did not "
                     f"change the weights. The run stopped; the last good checkpoint is {run / 'checkpoint-1'} "
                     "(step 1). Look for what drives it there (optim.lr 1e+30, the samples of that step) before "
                     "running again"]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (run / "adapter_model.bin").exists()


# ---------------------------------------------------------------------------------------------- config errors
def test_a_recipe_that_is_a_list_is_named(tmp_path):
    """The installed command, a YAML recipe whose top level is a list: one error line naming the file."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("- model\n- data\n")
    result = subprocess.run([str(VLM3R), "train", "--config", str(recipe), "--set", "optim.lr=1"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, **WIDE})
    assert (result.returncode, result.stderr) == (1, f"error: {recipe}: expected a mapping of sections (model, data, "
                                                     "lora, optim, run) at the top level, got a list\n")


def test_config_errors_name_where_the_value_came_from(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("model: {tiny: true}\ndata: {train: x.json}\nrun: 3\n")
    runner = CliRunner()

    def error(*items, config=str(recipe)):
        command = ["train", "--config", config]
        for item in items:
            command += ["--set", item]
        result = runner.invoke(app, command, env=WIDE)
        assert result.exit_code == 1, result.output
        return result.stderr

    builtin = str(resources.files("vlm3r") / "data" / "configs" / "train" / "tiny.yaml")
    assert error("optim.lr=abc", config="tiny") == \
        "error: --set optim.lr=abc: optim.lr: expected float, got 'abc'\n"
    assert error("data.train=x.json", "optim.lr=-1", config="tiny") == \
        "error: --set optim.lr=-1: optim.lr: must be positive, got -1.0\n"
    assert error("data.train=x.json", "optim.learning_rate=1", config="tiny") == \
        ("error: --set optim.learning_rate=1: optim.learning_rate: unknown field (known: lr, epochs, max_steps, "
         "batch_size, grad_accum, warmup_ratio, weight_decay, max_grad_norm, adam_betas, adam_eps)\n")
    assert error("data.train=x.json", "optimizer.lr=1", config="tiny") == \
        "error: --set optimizer.lr=1: optimizer: unknown section (known: model, data, lora, optim, run)\n"
    assert error("data.train=x.json", "optim.lr=[1", config="tiny").startswith(
        "error: --set optim.lr=[1: optim.lr: not a valid YAML value (while parsing a flow sequence")
    assert error("data.train=x.json", "optim.lr", config="tiny") == \
        "error: --set optim.lr: expected section.field=value\n"
    assert error("optim.epochs=2", config="tiny") == (
        f"error: {builtin}: data.train: required: the LLaVA conversation JSON from `vlm3r qa export` (or a YAML "
        "list)\n")
    # the recipe's own bad values are named by the file, values given by --set by the option
    assert error() == f"error: {recipe}: run: expected a mapping of fields, got a number\n"
    recipe.write_text("model: {tiny: true}\ndata: {train: x.json}\noptim: {lr: fast}\n")
    assert error() == f"error: {recipe}: optim.lr: expected float, got 'fast'\n"
    assert error("optim.epochs=0", "optim.lr=0.1") == "error: --set optim.epochs=0: optim.epochs: must be at least " \
        "1, got 0\n"
