"""Writing VLM-3R in the released layouts, the inverse of ``loading``; ``Vlm3rModel.save_pretrained`` calls these.
Every name comes from ``keys``.

- ``write_full``: one folder with every weight as a LlavaQwenForCausalLM checkpoint (``model.safetensors``),
  config.json, the tokenizer and CUT3R as ``cut3r.pth``; with ``base_only`` a LLaVA-Video-style base (no fusion
  block, no spatial tower), as the tiny recipe generates instead of downloading one;
- ``write_finetuned``: config.json, the peft LoRA adapter and ``non_lora_trainables.bin`` (every trained
  parameter that is not LoRA), as the official training writes them;
- ``write_cut3r``: a CUT3R ``.pth`` with ``args.model`` and ``model``;
- a vision tower that is not so400m gets a ``siglip_vision_tower/`` folder (its config.json and weights) that
  config.json's ``mm_vision_tower`` names, so that the official code builds SigLIP at the right size.

Every path a written config.json holds points inside the folder, relative to it (``mm_vision_tower``, and
``model_base`` / ``cut3r_weights`` given inside it): a folder stays whole when moved or copied. The official code
opens ``mm_vision_tower`` relative to its working directory (``SigLipVisionModel.from_pretrained(name)``), so it
reads a vlm3r folder when run from that folder; its builder takes a name with ``siglip`` in it for a SigLIP
tower, hence the folder's name. vlm3r resolves the names against the folder itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from vlm3r.errors import InputError
from vlm3r.model.config import SO400M_ID, Vlm3rConfig, VisionConfig
from vlm3r.model.cut3r import Cut3rConfig
from vlm3r.model.keys import (NON_LORA_FILE, SPATIAL_PREFIX, cut3r_file_key, strip_peft, to_non_lora, to_released,
                              to_vision_file)
from vlm3r.utils.fileio import atomic_save_safetensors, atomic_torch_save, atomic_write_text

VISION_TOWER_DIR = "siglip_vision_tower"  # "siglip" in it: the official builder picks its SigLIP class by name
PATH_FIELDS = ("model_base", "cut3r_weights")  # config.json fields that name files, besides mm_vision_tower
CUT3R_FILE = "cut3r.pth"


def write_vision_tower(folder: Path, config: Vlm3rConfig, state: dict[str, torch.Tensor]) -> str:
    """``mm_vision_tower`` for config.json: the hub id for so400m, otherwise the name of a ``siglip_vision_tower/``
    folder written here with the tower's config.json and its weights (the dropped last layer has none), relative
    to ``folder``."""
    if config.vision == VisionConfig():
        return SO400M_ID
    tower = folder / VISION_TOWER_DIR
    tower.mkdir(parents=True, exist_ok=True)
    atomic_write_text(tower / "config.json", json.dumps(config.vision.tower_config(), indent=2))
    atomic_save_safetensors({to_vision_file(k): v for k, v in state.items() if k.startswith("vision_tower.")},
                      tower / "model.safetensors")
    return VISION_TOWER_DIR


def write_config(folder: Path, config: Vlm3rConfig, vision_tower: str, **extra) -> None:
    """config.json: the LLaVA/Qwen2 fields the official loader reads and a ``vlm3r`` section with our whole config,
    which vlm3r reads first; ``extra`` (e.g. ``model_base``, ``cut3r_weights``) is added as given, except that a
    path inside ``folder`` is stored relative to it."""
    extra = {k: relative_inside(v, folder) if k in PATH_FIELDS else v for k, v in extra.items()}
    fields = {**config.released_fields(vision_tower), "vlm3r": config.to_dict(), **extra}
    atomic_write_text(folder / "config.json", json.dumps(fields, indent=2))


def relative_inside(value: str | Path | None, folder: Path) -> str | None:
    """``value`` relative to ``folder`` when it is an absolute path inside it; otherwise as given."""
    if value is None or not Path(value).is_absolute():
        return None if value is None else str(value)
    path, root = Path(value).resolve(), Path(folder).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(value)


def write_cut3r(config: Cut3rConfig, state: dict[str, torch.Tensor], path: Path | str) -> Path:
    """A CUT3R ``.pth`` as released (``args.model`` + ``model``); ``state`` in CUT3R's own names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"args": argparse.Namespace(model=config.constructor_string()),
                       "model": {k: v.detach() for k, v in state.items()}}, path)
    return path


def spatial_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {cut3r_file_key(k): v for k, v in state.items() if k.startswith(SPATIAL_PREFIX)}


def write_full(folder: Path | str, config: Vlm3rConfig, state: dict[str, torch.Tensor], tokenizer=None,
               base_only: bool = False, **config_extra) -> Path:
    """Every weight in one folder (see the module docstring); ``state`` in our names."""
    if "model_base" in config_extra:  # the loader would read that base's weights instead of the ones written here
        raise InputError("write_full: a folder with every weight has no model_base (that is the LoRA layout's)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    skip = (SPATIAL_PREFIX, "fusion_block.") if base_only else (SPATIAL_PREFIX,)
    atomic_save_safetensors({to_released(k): v for k, v in state.items() if not k.startswith(skip)},
                      folder / "model.safetensors")
    if base_only:
        config = dataclasses.replace(config, fusion=False)
    elif config.fusion:
        write_cut3r(config.cut3r, spatial_state(state), folder / CUT3R_FILE)
        config_extra = {**config_extra, "cut3r_weights": CUT3R_FILE}  # the file just written, whatever was passed
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    write_config(folder, config, write_vision_tower(folder, config, state), **config_extra)
    return folder


def write_finetuned(folder: Path | str, llm, config: Vlm3rConfig, trained: dict[str, torch.Tensor],
                    state: dict[str, torch.Tensor], **config_extra) -> Path:
    """The official fine-tuning layout. ``llm``: the peft-wrapped LLM (writes the adapter, ``adapter_model.bin``
    as released); ``trained``: every trained parameter outside LoRA, in our names; ``state``: all weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    llm.save_pretrained(str(folder), safe_serialization=False)
    atomic_torch_save({to_non_lora(k): v.detach().cpu().clone() for k, v in trained.items()}, folder / NON_LORA_FILE)
    write_config(folder, config, write_vision_tower(folder, config, state), **config_extra)
    return folder


def plain_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A model's state dict without peft's wrapper names or LoRA tensors (the base weights under our names)."""
    return {strip_peft(k): v for k, v in model_state.items() if "lora_" not in k}
