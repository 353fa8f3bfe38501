"""Loading VLM-3R from the released layouts, as the official loader reads them: every size from the files (Qwen2
from config.json, SigLIP from the vision tower's own config, CUT3R from the .pth's args.model), LoRA merged in
fp32 and cast once, broken files named. The releases are written by ``helpers.write_release``, which spells
the released names out independently of ``vlm3r.model.keys``."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from helpers import (LORA_ALPHA, LORA_R, PROMPT_IDS, REFERENCE, TINY_CUT3R_ARGS, TOWER_CONFIG, assert_parity,
                     distinctive_model, frames, logits, needs_reference, odd_config, qwen_tokenizer,
                     replace_keeping_size_and_mtime, write_hf_cache, write_release, write_tower_folder, write_video)

from vlm3r.errors import InputError
from vlm3r.model.config import SO400M_ID, ConfigError, Vlm3rConfig, VisionConfig
from vlm3r.model.cut3r import Cut3rCheckpointError, Cut3rConfig
from vlm3r.model.loading import Vlm3rCheckpointError, load_tokenizer, resolve_vision_config
from vlm3r.model.modeling_vlm3r import Vlm3rModel


@pytest.fixture()
def original():
    return distinctive_model(odd_config())


def test_release_at_other_sizes_loads_with_the_files_sizes(tmp_path, original):
    """SigLIP 72 wide with 3 layers (config in a local folder), the reference vectors' tiny CUT3R, a 40-wide
    Qwen2: the loaded model has those sizes and the logits of the model the files were written from."""
    files = write_release(tmp_path, original)
    loaded = Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base)
    assert loaded.config.vision == original.config.vision and loaded.config.vision_layers == 2
    assert loaded.config.cut3r == original.config.cut3r and loaded.config.llm == original.config.llm
    assert loaded.config.fusion_heads == 18 and loaded.config.cut3r_image_size == 432
    assert loaded.config == original.config
    px = frames(7)
    torch.testing.assert_close(logits(loaded, px, PROMPT_IDS), logits(original, px, PROMPT_IDS), rtol=0, atol=0)
    assert not any(p.requires_grad for p in loaded.spatial_tower.parameters())  # frozen, as the official loader


@needs_reference
def test_release_with_the_reference_cut3r_gives_the_official_tokens(tmp_path):
    """The official tiny CUT3R's weights (with its heads and ray-map branch, as every official .pth) in a release:
    the loaded spatial tower is that architecture (from args.model) and gives the official code's tokens."""
    import argparse

    from safetensors.torch import load_file

    original = distinctive_model(odd_config())
    reference = load_file(str(REFERENCE / "state_dict.safetensors"))
    files = write_release(tmp_path, original)
    torch.save({"args": argparse.Namespace(model=TINY_CUT3R_ARGS),
                "model": {f"module.{k}": v for k, v in reference.items()}}, files.cut3r)
    loaded = Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base)
    assert loaded.config.cut3r == original.config.cut3r
    pixels = load_file(str(REFERENCE / "A_inputs.safetensors"))["pixel_values"][0]
    expected = load_file(str(REFERENCE / "A_outputs.safetensors"))
    with torch.inference_mode():
        camera, patch = loaded.spatial_tower.encode_video(pixels)
    assert_parity(camera, expected["camera_tokens"][0])
    assert_parity(patch, expected["patch_tokens"][0])


def test_vision_tower_config_from_the_local_hugging_face_cache(tmp_path, original, monkeypatch):
    files = write_release(tmp_path, original, tower="cache")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base)
    assert loaded.config.vision == original.config.vision
    px = frames(8)
    torch.testing.assert_close(logits(loaded, px, PROMPT_IDS), logits(original, px, PROMPT_IDS), rtol=0, atol=0)


@pytest.mark.parametrize("env", [{"XDG_CACHE_HOME": "{tmp}/xdg"}, {"HF_HOME": "~/hf-home"},
                                 {"HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HOME": "{tmp}/home"},
                                 {"HF_HUB_CACHE": "{tmp}/new", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy"}, {}])
def test_hugging_face_cache_is_found_where_huggingface_hub_looks(tmp_path, monkeypatch, env):
    """The same folder as huggingface_hub's own constant, computed in a fresh process with the same variables."""
    import os
    import subprocess
    import sys

    from vlm3r.model.loading import hf_cache_dir

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    official = subprocess.run([sys.executable, "-c", "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"],
                              capture_output=True, text=True, env=dict(os.environ), check=True).stdout.strip()
    assert hf_cache_dir() == Path(official)


def test_unknown_vision_tower_names_what_the_weights_fix(tmp_path, original, monkeypatch):
    files = write_release(tmp_path, original, tower="unknown")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(Vlm3rCheckpointError) as info:
        Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base)
    message = str(info.value)
    assert str(files.model / "config.json") in message and "mm_vision_tower 'acme/not-anywhere'" in message
    # patch embedding [72, 3, 14, 14], position embedding [16, 72] (4 x 4), fc1 [100, 72], layers 0, 1 and the
    # dropped 2 in the base
    for fixed in ("hidden_size=72", "num_channels=3", "patch_size=14", "grid=4", "intermediate_size=100",
                  "layers_in_checkpoint=3", "not num_attention_heads", "--vision-tower"):
        assert fixed in message
    tower = write_tower_folder(tmp_path / "tower", TOWER_CONFIG)
    loaded = Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base, vision_tower=tower)
    assert loaded.config.vision == original.config.vision


def test_vision_config_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert resolve_vision_config(SO400M_ID, {}, "c.json") == VisionConfig()  # built in, not cached
    assert VisionConfig() == VisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                          num_attention_heads=16, image_size=384, patch_size=14)
    # a cached copy of the id wins over the built-in one; fields it omits take the so400m values, as the
    # official SigLipVisionConfig's defaults
    write_hf_cache(tmp_path / "cache", SO400M_ID, {"vision_config": {"num_hidden_layers": 5}})
    assert resolve_vision_config(SO400M_ID, {}, "c.json") == VisionConfig(num_hidden_layers=5)
    # a folder relative to the model folder, and a standalone SiglipVisionModel config
    write_tower_folder(tmp_path / "model" / "tower", {"model_type": "siglip_vision_model", "hidden_size": 64,
                                                      "num_attention_heads": 4})
    got = resolve_vision_config("tower", {}, "c.json", search=(tmp_path / "model",))
    assert got == VisionConfig(hidden_size=64, num_attention_heads=4)
    write_tower_folder(tmp_path / "bad", {"vision_config": {"hidden_size": 70, "num_attention_heads": 16}})
    with pytest.raises(ConfigError, match=r"bad/config.json: vision.num_attention_heads: 16 does not divide 70"):
        resolve_vision_config(str(tmp_path / "bad"), {}, "c.json")


def test_bf16_base_merges_lora_in_fp32_and_casts_once(tmp_path, original):
    files = write_release(tmp_path, original, base_dtype=torch.bfloat16)
    from safetensors import safe_open

    base = {}
    for shard in files.base.glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            base.update({k: f.get_tensor(k) for k in f.keys()})
    adapter = torch.load(files.model / "adapter_model.bin", weights_only=True)
    name = "model.layers.1.self_attn.k_proj"
    lora_a = adapter[f"base_model.model.{name}.lora_A.weight"]
    lora_b = adapter[f"base_model.model.{name}.lora_B.weight"]
    assert base[f"{name}.weight"].dtype == torch.bfloat16 and lora_b.abs().sum() > 0
    expected = base[f"{name}.weight"].float() + (lora_b.float() @ lora_a.float()) * (LORA_ALPHA / LORA_R)

    fp32 = Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base, dtype=torch.float32)
    assert torch.equal(fp32.state_dict()[f"llm.{name}.weight"], expected)
    assert torch.equal(fp32.state_dict()["llm.model.norm.weight"], base["model.norm.weight"].float())
    px = frames(9)
    torch.testing.assert_close(logits(fp32, px, PROMPT_IDS), logits(original, px, PROMPT_IDS), rtol=0, atol=0)
    bf16 = Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base, dtype=torch.bfloat16)
    assert torch.equal(bf16.state_dict()[f"llm.{name}.weight"], expected.to(torch.bfloat16))


def test_loader_names_what_is_missing(tmp_path, original):
    files = write_release(tmp_path, original)
    load = lambda **kw: Vlm3rModel.from_pretrained(files.model, **{"cut3r": files.cut3r, "base": files.base, **kw})  # noqa
    with pytest.raises(Vlm3rCheckpointError, match="needs CUT3R weights"):
        load(cut3r=None)
    with pytest.raises(Vlm3rCheckpointError, match="needs its base model"):
        Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r)
    with pytest.raises(Vlm3rCheckpointError, match="no config.json. Download"):
        Vlm3rModel.from_pretrained(tmp_path / "nowhere", cut3r=files.cut3r, base=files.base)
    config = json.loads((files.model / "config.json").read_text())
    for field, value, message in (("mm_hidden_size", 64, "mm_hidden_size 64 but the vision tower is 72 wide"),
                                  ("spatial_feature_dim", 768, "spatial_feature_dim 768 but CUT3R's decoder is 32"),
                                  ("hidden_size", None, "no hidden_size: the LLM's sizes are read from config.json"),
                                  ("fusion_block", "transformer", "fusion_block 'transformer' is not supported")):
        broken = {k: v for k, v in config.items() if k != field}
        if value is not None:
            broken[field] = value
        (files.model / "config.json").write_text(json.dumps(broken))
        with pytest.raises(Vlm3rCheckpointError, match=f"{files.model / 'config.json'}: {message}"):
            load()
    (files.model / "config.json").write_text(json.dumps(config))
    (files.model / "non_lora_trainables.bin").unlink()
    with pytest.raises(Vlm3rCheckpointError, match=r"missing: fusion_block\."):
        load()
    torch.save({"base_model.model.model.fusion_block.bogus": torch.zeros(1)}, files.model / "non_lora_trainables.bin")
    with pytest.raises(Vlm3rCheckpointError, match=r"unexpected: fusion_block\.bogus"):
        load()


def test_cut3r_size_comes_from_its_args(tmp_path, original):
    """A .pth whose args.model describes another CUT3R than its weights fails naming the mis-shaped keys (the
    size is read, not assumed); one without args.model says so."""
    files = write_release(tmp_path, original, cut3r_args=TINY_ARGS_WIDER)
    load = lambda: Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base)  # noqa: E731
    with pytest.raises(Vlm3rCheckpointError, match="spatial_feature_dim 32 but CUT3R's decoder is 48 wide"):
        load()
    config = json.loads((files.model / "config.json").read_text())
    del config["spatial_feature_dim"]  # optional in the official code (default 768)
    (files.model / "config.json").write_text(json.dumps(config))
    with pytest.raises(Vlm3rCheckpointError, match=r"305 wrong shape: .*spatial_tower\.dec_blocks\.0\.attn\.proj\."
                                                   r"bias: checkpoint \(32,\), model \(48,\)"):
        load()
    checkpoint = torch.load(files.cut3r, weights_only=False)
    torch.save(checkpoint["model"], files.cut3r)
    with pytest.raises(Cut3rCheckpointError, match=rf"{files.cut3r}: carries no model configuration \(args.model\)"):
        load()


TINY_ARGS_WIDER = ("ARCroco3DStereo(ARCroco3DStereoConfig(state_size=30, local_mem_size=16, state_dec_num_heads=4, "
                   "pos_embed='RoPE100', enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=48, "
                   "dec_depth=4, dec_num_heads=2))")


def test_lora_adapter_files_are_checked(tmp_path, original):
    files = write_release(tmp_path, original)
    load = lambda: Vlm3rModel.from_pretrained(files.model, cut3r=files.cut3r, base=files.base)  # noqa: E731
    adapter = torch.load(files.model / "adapter_model.bin", weights_only=True)
    key = "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"
    torch.save({**adapter, key: adapter[key][:, :-1]}, files.model / "adapter_model.bin")
    with pytest.raises(Vlm3rCheckpointError, match=r"adapter_model.bin: .*up_proj.lora_A.weight \(4, 39\) and "
                                                   r"lora_B \(72, 4\) do not fit .*up_proj.weight \(72, 40\)"):
        load()
    torch.save({k: v for k, v in adapter.items() if ".lora_A." not in k}, files.model / "adapter_model.bin")
    with pytest.raises(Vlm3rCheckpointError, match="no lora_A tensors"):
        load()
    torch.save(adapter, files.model / "adapter_model.bin")
    (files.model / "adapter_config.json").unlink()
    with pytest.raises(Vlm3rCheckpointError, match="adapter weights but no adapter_config.json"):
        load()


def test_save_pretrained_is_read_as_the_official_code_reads_it(tmp_path, original):
    """``save_pretrained`` then ``from_pretrained`` gives the same logits; so does reading the folder through its
    LLaVA fields alone (the vlm3r section removed), which is all the official loader has: the Qwen2 sizes, and
    ``mm_vision_tower`` naming a folder with the tower's config.json and SigLIP weights."""
    tokenizer = qwen_tokenizer()
    folder = original.save_pretrained(tmp_path / "saved", tokenizer)
    px = frames(4)
    expected = logits(original, px, PROMPT_IDS)
    again = Vlm3rModel.from_pretrained(folder)  # CUT3R: the folder's cut3r.pth, named in config.json
    assert again.config == original.config
    torch.testing.assert_close(logits(again, px, PROMPT_IDS), expected, rtol=0, atol=0)

    saved = json.loads((folder / "config.json").read_text())
    tower = saved["mm_vision_tower"]
    tower_config = json.loads((tmp_path / "saved" / "siglip_vision_tower" / "config.json").read_text())
    assert tower == "siglip_vision_tower"  # relative to the folder: it can be moved
    assert {k: tower_config[k] for k in TOWER_CONFIG["vision_config"] if k != "model_type"} == \
        {k: v for k, v in TOWER_CONFIG["vision_config"].items() if k != "model_type"}
    assert (saved["hidden_size"], saved["num_key_value_heads"], saved["mm_hidden_size"],
            saved["spatial_feature_dim"]) == (40, 1, 72, 32)
    from safetensors import safe_open

    with safe_open(str(folder / "siglip_vision_tower" / "model.safetensors"), framework="pt") as f:
        assert "vision_model.encoder.layers.1.mlp.fc1.weight" in f.keys()
    del saved["vlm3r"]
    (folder / "config.json").write_text(json.dumps(saved))
    official = Vlm3rModel.from_pretrained(folder)
    assert official.config == original.config
    torch.testing.assert_close(logits(official, px, PROMPT_IDS), expected, rtol=0, atol=0)

    # a caller's references cannot point the folder away from the weights just written into it
    other = original.save_pretrained(tmp_path / "other", cut3r_weights="/elsewhere/cut3r.pth")
    assert json.loads((other / "config.json").read_text())["cut3r_weights"] == "cut3r.pth"
    with pytest.raises(InputError, match="no model_base"):
        original.save_pretrained(tmp_path / "third", model_base=str(tmp_path / "base"))

def test_config_round_trip_and_errors():
    config = odd_config()
    assert Vlm3rConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    tiny = Vlm3rConfig.tiny()
    legacy = {**tiny.to_dict(), "vision_layers": 2}  # files written before the vision config was typed
    assert Vlm3rConfig.from_dict(legacy) == tiny
    with pytest.raises(ConfigError, match=r"run/config.json: vlm3r: vision_layers 5 disagrees"):
        Vlm3rConfig.from_dict({**legacy, "vision_layers": 5}, "run/config.json: vlm3r")
    with pytest.raises(ConfigError, match=r"x.json: llm: unknown field\(s\) hidden"):
        Vlm3rConfig.from_dict({**tiny.to_dict(), "llm": {"hidden": 3}}, "x.json")
    with pytest.raises(ConfigError, match=r"fusion_heads \(of vision.hidden_size\): 18 does not divide 32"):
        dataclasses.replace(tiny, fusion_heads=18)
    with pytest.raises(ConfigError, match="vision: expected a VisionConfig, got dict"):
        Vlm3rConfig(vision={"hidden_size": 3})
    assert isinstance(Vlm3rConfig.from_dict(tiny.to_dict()).cut3r, Cut3rConfig)


def test_new_modules_are_initialized_by_their_own_rule(tmp_path, original):
    """Training starts from a base without fusion block: from_pretrained builds it with the block's
    reset_parameters (LayerNorm (1, 0), zero biases), and only where it is named as new."""
    tokenizer = qwen_tokenizer()
    base = original.save_pretrained(tmp_path / "base", tokenizer, base_only=True)
    cut3r = original.save_pretrained(tmp_path / "full") / "cut3r.pth"
    with pytest.raises(Vlm3rCheckpointError, match=r"missing: fusion_block\."):
        Vlm3rModel.from_pretrained(base, cut3r=cut3r, fusion=True)
    model = Vlm3rModel.from_pretrained(base, cut3r=cut3r, fusion=True, new_modules=("fusion_block",))
    block = model.fusion_block
    assert torch.equal(block.clip_norm.weight, torch.ones(72)) and torch.equal(block.out_norm.bias, torch.zeros(72))
    assert torch.equal(block.clip_query_proj.bias, torch.zeros(72))
    assert torch.equal(block.cross_attention.in_proj_bias, torch.zeros(3 * 72))
    assert torch.equal(model.mm_projector[0].weight, original.mm_projector[0].weight)
    assert len(load_tokenizer(base)) == len(tokenizer)


def test_pipeline_cache_and_ask_command(tmp_path, original):
    import os

    import numpy as np
    from typer.testing import CliRunner

    from vlm3r.cli.main import app
    from vlm3r.model.pipeline import Vlm3rPipeline

    files = write_release(tmp_path, original)
    rng = np.random.default_rng(0)
    videos = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for video in videos:
        write_video(video, rng.integers(0, 255, (10, 64, 96, 3), dtype=np.uint8))
    pipeline = Vlm3rPipeline.from_pretrained(files.model, files.cut3r, files.base, num_frames=4)
    assert pipeline.model.llm.get_input_embeddings().num_embeddings == len(pipeline.tokenizer) == 151_669
    first = pipeline.ask(videos[0], "How far is the sofa from the tv?", max_new_tokens=4)
    second = pipeline.ask(videos[0], "How many chairs are there?", max_new_tokens=4)
    assert pipeline.encodings == 1  # two questions, one encoding
    assert isinstance(first, str) and isinstance(second, str)
    together = pipeline.ask_many(videos, ["How far is the sofa from the tv?"] * 2, max_new_tokens=4)
    assert together[0] == first and pipeline.encodings == 2
    assert together[1] == pipeline.ask(videos[1], "How far is the sofa from the tv?", max_new_tokens=4)
    stat = videos[0].stat()
    os.utime(videos[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes: same video
    pipeline.ask(videos[0], "Anything?", max_new_tokens=1)
    assert pipeline.encodings == 2
    # replaced by another video of the same size and modification time: a new video, answered as such
    stale = pipeline.video_embeddings(videos[0])
    replacement = tmp_path / "c.mp4"
    write_video(replacement, rng.integers(0, 255, (10, 64, 96, 3), dtype=np.uint8))
    replace_keeping_size_and_mtime(videos[0], replacement)
    fresh = Vlm3rPipeline.from_pretrained(files.model, files.cut3r, files.base, num_frames=4)
    question = "How far is the sofa from the tv?"
    assert pipeline.ask(videos[0], question, max_new_tokens=4) == fresh.ask(replacement, question, max_new_tokens=4)
    assert pipeline.encodings == 3
    assert torch.equal(pipeline.video_embeddings(videos[0]), fresh.video_embeddings(replacement))
    assert not torch.equal(stale, fresh.video_embeddings(replacement))
    result = CliRunner().invoke(app, ["ask", "--model", str(files.model), "--base", str(files.base), "--cut3r",
                                      str(files.cut3r), "--dtype", "fp32", "--max-new-tokens", "4", "--frames", "4",
                                      str(videos[1]), "How far is the sofa from the tv?"])
    assert result.exit_code == 0, result.output
    assert together[1] and result.stdout == f"{together[1]}\n"  # what ran goes to stderr
    assert result.stderr == "running on cpu (chosen: --device auto) in fp32\n"
    result = CliRunner().invoke(app, ["ask", "--model", str(tmp_path / "none"), str(videos[0]), "q"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "Download the VLM-3R weights" in result.output
