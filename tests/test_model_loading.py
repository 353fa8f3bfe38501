"""Released-layout checkpoints: a tiny model written as LLaVA-Video base shards + non_lora_trainables.bin + a peft
0.4-style LoRA adapter + a CUT3R .pth loads back with identical logits; broken files are named."""

import argparse
import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from test_model import frames, qwen_tokenizer
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.loading import Vlm3rCheckpointError, load_vlm3r
from vlm3r.model.modeling_vlm3r import Vlm3rModel

TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj")
R, ALPHA = 4, 8


def write_release(tmp_path, original: Vlm3rModel):
    """Write ``original`` in the released layouts. Adapted weights: the base shard holds W0, the adapter A and B,
    and ``original`` is updated to W0 + (alpha / r) * B @ A, computed as the loader merges."""
    tokenizer_dir = qwen_tokenizer().name_or_path
    base, release = tmp_path / "LLaVA-Video-7B-Qwen2", tmp_path / "vlm-3r-lora"
    base.mkdir()
    release.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        shutil.copy(f"{tokenizer_dir}/{name}", base / name)
    state = original.state_dict()
    merged = {}
    torch.manual_seed(5)
    shards, adapter = [{}, {}], {}
    for key, value in state.items():
        if key.startswith("llm."):
            out_key = key[len("llm."):]
            module = key[len("llm."):].rsplit(".", 1)[0]
            if key.endswith(".weight") and module.endswith(TARGETS):
                lora_a, lora_b = torch.randn(R, value.shape[1]) * 0.1, torch.randn(value.shape[0], R) * 0.1
                merged[key] = value + (ALPHA / R) * (lora_b @ lora_a)
                adapter[f"base_model.model.{module}.lora_A.weight"] = lora_a
                adapter[f"base_model.model.{module}.lora_B.weight"] = lora_b
        elif key.startswith("vision_tower."):
            out_key = "model.vision_tower.vision_tower.vision_model." + key[len("vision_tower."):]
        elif key.startswith("mm_projector."):
            out_key = "model." + key
            value = torch.randn_like(value)  # the base projector, overridden by non_lora_trainables.bin
        elif key == "image_newline":
            out_key = "model.image_newline"
        else:
            continue  # fusion block and CUT3R are not in the base checkpoint
        shards[len(out_key) % 2][out_key] = value.contiguous()
    for k, shard in enumerate(shards):
        save_file(shard, str(base / f"model-0000{k + 1}-of-00002.safetensors"))
    weight_map = {key: f"model-0000{k + 1}-of-00002.safetensors" for k, shard in enumerate(shards) for key in shard}
    (base / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    non_lora = {f"base_model.model.model.{k}": v for k, v in state.items() if k.startswith(("fusion_block.",
                                                                                               "mm_projector."))}
    torch.save(non_lora, release / "non_lora_trainables.bin")
    torch.save(adapter, release / "adapter_model.bin")
    (release / "adapter_config.json").write_text(json.dumps({"r": R, "lora_alpha": ALPHA, "peft_type": "LORA",
                                                             "target_modules": [t.split(".")[1] for t in TARGETS]}))
    vlm3r_section = {k: v for k, v in dataclasses.asdict(original.config).items()}
    (release / "config.json").write_text(json.dumps({"model_type": "llava_qwen", "vlm3r": vlm3r_section}))
    cut3r_state = {k[len("spatial_tower."):]: v for k, v in state.items() if k.startswith("spatial_tower.")}
    torch.save({"args": argparse.Namespace(model="ARCroco3DStereo(ARCroco3DStereoConfig(state_size=12))"),
                "model": {f"module.{k}": v for k, v in cut3r_state.items()}}, tmp_path / "cut3r.pth")
    original.load_state_dict({**state, **merged})
    return base, release, tmp_path / "cut3r.pth"


@pytest.fixture()
def original():
    torch.manual_seed(3)
    model = Vlm3rModel(Vlm3rConfig.tiny()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # make every tensor distinctive, biases and norms included
    return model


def logits(model, pixel_values, ids):
    with torch.no_grad():
        visual = model.visual_embeddings(pixel_values)
        return model([ids], [visual]).logits


def test_released_layout_round_trip(tmp_path, original):
    base, release, cut3r = write_release(tmp_path, original)
    loaded, tokenizer = load_vlm3r(release, cut3r_path=cut3r, base_path=base)
    ids = [151644, 872, 198, -200, 198, 3838, 374, 279, 1379, 151645, 198, 151644]
    px = frames(7)
    expected = logits(original, px, ids)
    got = logits(loaded, px, ids)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645


def test_loader_names_what_is_missing(tmp_path, original):
    base, release, cut3r = write_release(tmp_path, original)
    with pytest.raises(Vlm3rCheckpointError, match="needs CUT3R weights"):
        load_vlm3r(release, base_path=base)
    with pytest.raises(Vlm3rCheckpointError, match="needs its base model"):
        load_vlm3r(release, cut3r_path=cut3r)
    with pytest.raises(Vlm3rCheckpointError, match="no config.json. Download"):
        load_vlm3r(tmp_path / "nowhere", cut3r_path=cut3r, base_path=base)
    (release / "non_lora_trainables.bin").unlink()
    with pytest.raises(Vlm3rCheckpointError, match=r"missing: fusion_block\."):
        load_vlm3r(release, cut3r_path=cut3r, base_path=base)
    torch.save({"base_model.model.model.fusion_block.bogus": torch.zeros(1)}, release / "non_lora_trainables.bin")
    with pytest.raises(Vlm3rCheckpointError, match=r"unexpected: fusion_block\.bogus"):
        load_vlm3r(release, cut3r_path=cut3r, base_path=base)


def test_pipeline_cache_and_ask_command(tmp_path, original):
    import os

    import numpy as np
    from typer.testing import CliRunner

    from test_cut3r import write_video
    from vlm3r.cli.main import app
    from vlm3r.model.pipeline import Vlm3rPipeline

    base, release, cut3r = write_release(tmp_path, original)
    rng = np.random.default_rng(0)
    videos = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for video in videos:
        write_video(video, rng.integers(0, 255, (10, 64, 96, 3), dtype=np.uint8))
    pipeline = Vlm3rPipeline.from_pretrained(release, cut3r, base)
    first = pipeline.ask(videos[0], "How far is the sofa from the tv?", max_new_tokens=4)
    second = pipeline.ask(videos[0], "How many chairs are there?", max_new_tokens=4)
    assert pipeline.encodings == 1  # two questions, one encoding
    assert isinstance(first, str) and isinstance(second, str)
    together = pipeline.ask_many(videos, ["How far is the sofa from the tv?"] * 2, max_new_tokens=4)
    assert together[0] == first and pipeline.encodings == 2
    assert together[1] == pipeline.ask(videos[1], "How far is the sofa from the tv?", max_new_tokens=4)
    stat = videos[0].stat()
    os.utime(videos[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed: encode again
    pipeline.ask(videos[0], "Anything?", max_new_tokens=1)
    assert pipeline.encodings == 3
    result = CliRunner().invoke(app, ["ask", "--model", str(release), "--base", str(base), "--cut3r", str(cut3r),
                                      "--dtype", "fp32", "--max-new-tokens", "4", "--frames", "4", str(videos[0]),
                                      "How far is the sofa from the tv?"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == first
    result = CliRunner().invoke(app, ["ask", "--model", str(tmp_path / "none"), str(videos[0]), "q"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "Download the VLM-3R weights" in result.output
