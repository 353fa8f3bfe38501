"""Writing VLM-3R in the released layouts, the inverse of ``loading``: what ``vlm3r train`` saves is what
``load_vlm3r`` (and the reference's loader) reads.

- ``save_base``: a LLaVA-Video-style base folder (safetensors weights under the LlavaQwenForCausalLM names,
  config.json, tokenizer files); used for the tiny recipe, whose base is generated rather than downloaded;
- ``save_cut3r``: a CUT3R ``.pth`` with ``args`` and ``model``;
- ``save_finetuned``: config.json, the peft LoRA adapter and ``non_lora_trainables.bin`` (every trained
  parameter that is not LoRA, under ``base_model.model.`` + its LlavaQwenForCausalLM name).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.cut3r import Cut3r
from vlm3r.model.loading import NON_LORA, VISION_PREFIX
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.utils.fileio import atomic_path, atomic_write_text

PEFT_INNER = "base_model.model."


def released_key(key: str) -> str | None:
    """Our state-dict key -> the LlavaQwenForCausalLM key of the released checkpoints (None: CUT3R, which is a
    separate file). Keys inside a peft-wrapped LLM lose peft's ``base_model.model.``."""
    if key.startswith("spatial_tower."):
        return None
    if key.startswith("vision_tower."):
        return VISION_PREFIX + key[len("vision_tower."):]
    if key.startswith(("fusion_block.", "mm_projector.")) or key == "image_newline":
        return "model." + key
    if key.startswith("llm."):
        key = key[len("llm."):]
        key = key[len(PEFT_INNER):] if key.startswith(PEFT_INNER) else key
        return key.replace(".base_layer.", ".")
    raise KeyError(f"no released name for {key}")


def released_config(config: Vlm3rConfig, **extra) -> dict:
    """config.json: the LLaVA/Qwen2 fields the reference writes (reference-model.md §4.1) and a ``vlm3r``
    section with our whole config, which vlm3r reads first."""
    select = config.spatial_tower_select_feature
    fields = {
        "model_type": "llava_qwen", "architectures": ["LlavaQwenForCausalLM"], **config.llm,
        "mm_hidden_size": config.vision["hidden_size"], "mm_projector_type": "mlp2x_gelu",
        "mm_vision_tower": "google/siglip-so400m-patch14-384", "mm_spatial_pool_mode": config.pool_mode,
        "mm_spatial_pool_stride": 2, "mm_newline_position": "grid", "mm_patch_merge_type": "spatial_unpad",
        "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
    }
    if config.fusion:
        fields.update({"spatial_tower": "cut3r", "mm_spatial_tower": "cut3r", "spatial_tower_select_feature": select,
                       "spatial_feature_dim": config.cut3r.dec_embed_dim, "fusion_block": "cross_attention"})
    return {**fields, "vlm3r": dataclasses.asdict(config), **extra}


def save_base(model: Vlm3rModel, tokenizer, folder: Path | str) -> Path:
    """The model's LLM, SigLIP, projector and newline as a base checkpoint folder (as LLaVA-Video-7B-Qwen2)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in model.state_dict().items():
        name = released_key(key)
        if name is not None and not key.startswith("fusion_block."):
            tensors[name] = value.detach().contiguous()
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))
    tokenizer.save_pretrained(str(folder))
    atomic_write_text(folder / "config.json", json.dumps(released_config(model.config), indent=2))
    return folder


def save_cut3r(cut3r: Cut3r, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"args": argparse.Namespace(model=cut3r.config.constructor_string()),
                    "model": {k: v.detach() for k, v in cut3r.state_dict().items()}}, str(tmp))
    return path


def trained_non_lora(model: Vlm3rModel) -> dict[str, torch.Tensor]:
    """Every trainable parameter outside LoRA, under its ``non_lora_trainables.bin`` name."""
    return {"base_model.model." + released_key(name): p.detach().cpu().clone()
            for name, p in model.named_parameters() if p.requires_grad and "lora_" not in name}


def save_finetuned(model: Vlm3rModel, folder: Path | str, **config_extra) -> Path:
    """config.json + adapter (peft format, ``adapter_model.bin`` as released) + non_lora_trainables.bin.
    ``config_extra`` (e.g. ``model_base``, ``cut3r_weights``) is written into config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model.llm, "peft_config"):
        model.llm.save_pretrained(str(folder), safe_serialization=False)
    with atomic_path(folder / NON_LORA) as tmp:
        torch.save(trained_non_lora(model), str(tmp))
    atomic_write_text(folder / "config.json", json.dumps(released_config(model.config, **config_extra), indent=2))
    return folder
